import json
from pathlib import Path

import numpy as np
import pytest

from steer.cli import main
from steer.compare import compare, model_configs
from steer.evaluate.metrics import errors

TINY = {"common": {"epochs": 1, "batch_size": 4, "split": [0.5, 0.25, 0.25], "threads": 1},
        "models": {"pilotnet": {"stateful": False, "window": 1, "stride": 1},
                   "gru": {"model": "cnn-lstm", "model_args": {"cell": "gru", "hidden": 8}, "window": 4}}}


def test_compare_scores_every_model_on_the_same_frames_beside_the_baselines(tiny_cache, tmp_path, capsys):
    spec = {**TINY, "common": {**TINY["common"], "cache": str(tiny_cache.root)}}
    result = compare(model_configs(spec, tmp_path), tmp_path)
    assert set(result["models"]) == {"pilotnet", "gru"}
    runs = [json.loads((tmp_path / label / "run.json").read_text()) for label in result["models"]]
    assert runs[0]["split"] == runs[1]["split"] == result["split"]
    assert runs[1]["config"]["model_args"] == {"cell": "gru", "hidden": 8}
    assert json.loads((tmp_path / "compare.json").read_text()) == result
    assert result["data_hashes"] == tiny_cache.hashes() and result["versions"]["torch"]

    targets = result["targets"]
    meant = runs[0]["config"]["meant"]  # the labels learnt: the driver's meant steering
    truth = np.concatenate([d.labelled(meant).targets(targets) for d in tiny_cache.by_name(result["split"]["test"])])
    mean = np.concatenate([d.labelled(meant).targets(targets)
                           for d in tiny_cache.by_name(result["split"]["train"])]).mean(0)
    zero, train_mean = errors(truth, np.zeros_like(truth), targets), errors(truth, mean + 0 * truth, targets)
    for target in targets:
        for metric in ("rmse", "mae"):
            assert result["baselines"]["zero"][target][metric] == pytest.approx(zero[target][metric])
            assert result["baselines"]["mean"][target][metric] == pytest.approx(train_mean[target][metric], rel=1e-5)
    assert result["test"]["frames"] == len(truth)
    for entry in result["models"].values():
        assert entry["parameters"] > 0 and entry["frames_per_s"] > 0 and entry["epochs"] == 1

    # A second compare reuses the finished runs; other settings in the same folder are refused.
    trained = (tmp_path / "gru" / "best" / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    compare(model_configs(spec, tmp_path, ["gru"], {"threads": 2}), tmp_path)
    assert "reused" in capsys.readouterr().out
    assert (tmp_path / "gru" / "best" / "model.safetensors").stat().st_mtime_ns == trained
    with pytest.raises(ValueError, match=r"other settings \(lr differ\)"):
        compare(model_configs(spec, tmp_path, ["gru"], {"lr": 0.01}), tmp_path)


def test_cli_compare_reads_per_model_settings_and_prints_one_table(tiny_cache, tmp_path, capsys):
    config = tmp_path / "compare.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    main(["compare", "--cache", str(tiny_cache.root), "--out", str(out), "--config", str(config),
          "--models", "pilotnet,gru", "--seed", "3"])
    table = capsys.readouterr().out
    for row in ("pilotnet", "gru", "baseline: zero", "baseline: train mean", "train frames/s", "parameters"):
        assert row in table
    written = json.loads((out / "compare.json").read_text())
    assert written["models"]["gru"]["config"]["model"] == "cnn-lstm"
    assert written["models"]["gru"]["config"]["window"] == 4
    assert written["models"]["pilotnet"]["config"]["stateful"] is False
    assert {e["config"]["seed"] for e in written["models"].values()} == {3}  # flags reach every model


def test_compare_refuses_what_it_cannot_compare(tiny_cache, tmp_path):
    cache = str(tiny_cache.root)
    with pytest.raises(ValueError, match="every model must share seed"):
        model_configs({"common": {"cache": cache}, "models": {"a": {"model": "pilotnet"},
                                                              "b": {"model": "pilotnet", "seed": 1}}}, tmp_path)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        model_configs({"common": {"cache": cache}}, tmp_path, ["resnet"])
    with pytest.raises(ValueError, match="cannot set model or out"):
        model_configs({"common": {"cache": cache}}, tmp_path, ["pilotnet"], {"model": "cnn-lstm"})
    with pytest.raises(ValueError, match="unknown training option"):
        model_configs({"common": {"cache": cache, "epoch": 1}}, tmp_path, ["pilotnet"])
    with pytest.raises(ValueError, match="nothing to compare"):
        model_configs({}, tmp_path)


@pytest.mark.parametrize("example", ["synthetic.json", "real.json"])
def test_the_readme_example_specs_make_valid_configs(example, tmp_path):
    spec = json.loads((Path(__file__).resolve().parents[1] / "examples" / example).read_text())
    configs = model_configs(spec, tmp_path, overrides={"cache": "CACHE"})
    assert {c.model for c in configs.values()} == {"pilotnet", "cnn-lstm", "komanda", "features-lstm"}


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "examples").glob("*.json")),
                         ids=lambda p: p.name)
def test_every_example_config_is_taken_by_its_verb_and_refused_by_the_other(path, tmp_path, refuse, capfd):
    """examples/train.json is for `steer train --config`, the comparison specs for `steer compare --config`;
    each verb refuses the other's, naming the file and the verb to use."""
    from steer.train.config import TrainConfig

    spec = json.loads(path.read_text())
    if "models" in spec:
        assert model_configs(spec, tmp_path, overrides={"cache": "c"})
        refuse(["train", "--config", path, "--cache", "c", "--out", tmp_path / "run"], tmp_path, str(path),
               "steer compare")
    else:
        from steer.train.config import check_model

        config = TrainConfig.from_dict(spec)
        config.check()
        check_model(config)
        refuse(["compare", "--config", path, "--cache", "c", "--out", tmp_path / "cmp"], tmp_path, str(path),
               "steer train")


def test_compare_over_seeds_gives_each_seeds_figure_and_their_spread(tiny_cache, tmp_path, capsys):
    config = tmp_path / "compare.json"
    config.write_text(json.dumps({**TINY, "models": {"pilotnet": TINY["models"]["pilotnet"]}}))
    out = tmp_path / "out"
    main(["compare", "--cache", str(tiny_cache.root), "--out", str(out), "--config", str(config), "--seeds", "0,1",
          "--closed-loop", "1", "--closed-loop-seconds", "0.5"])
    result = json.loads((out / "seeds.json").read_text())
    per_seed = [json.loads((out / f"seed-{s}" / "compare.json").read_text())["models"]["pilotnet"] for s in (0, 1)]
    assert [p["config"]["seed"] for p in per_seed] == [0, 1]
    rmse = [p["metrics"]["model"]["steering"]["rmse"] for p in per_seed]
    steering = result["models"]["pilotnet"]["steering"]
    assert steering["per_seed"] == rmse and rmse[0] != rmse[1]
    assert steering["mean"] == pytest.approx(np.mean(rmse)) and steering["std"] == pytest.approx(np.std(rmse, ddof=1))
    autonomy = result["models"]["pilotnet"]["autonomy"]
    assert len(autonomy["per_seed"]) == 2 and set(result["references"]) == {"world driver (ceiling)",
                                                                            "zero steering (floor)"}
    assert (out / "open_vs_closed.png").stat().st_size > 0
    assert "+-" in capsys.readouterr().out


def test_compare_over_seeds_refuses_a_single_seed_or_seed_beside_seeds(tiny_cache, tmp_path, refuse):
    for flags, named in ((["--seeds", "0"], "--seeds"), (["--seeds", "0,1", "--seed", "3"], "--seed")):
        refuse(["compare", "--cache", tiny_cache.root, "--out", tmp_path / "out", "--models", "pilotnet", *flags],
               tmp_path, named)
