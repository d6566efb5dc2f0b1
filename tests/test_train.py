import json

import numpy as np
import pytest
import torch

from steer.models import create_model, load_model
from steer.models.sequence import predict_sequence
from steer.train.checkpoint import save_checkpoint
from steer.train.config import TrainConfig
from steer.train.loop import train


def test_checkpoint_round_trip_without_pickle(tmp_path, monkeypatch):
    model = create_model("cnn-lstm", targets=["steering", "speed"], cell="gru", hidden=16)
    model.set_target_stats(torch.tensor([0.1, 12.0]), torch.tensor([0.3, 4.0]))
    save_checkpoint(tmp_path / "ckpt", model)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["model.json", "model.safetensors"]
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("checkpoints must not be unpickled"))
    again = load_model(tmp_path / "ckpt")
    assert again.config() == model.config()
    frames = np.random.default_rng(0).integers(0, 256, (12, 3, 66, 200), dtype=np.uint8)
    assert np.allclose(predict_sequence(again, frames), predict_sequence(model, frames), atol=1e-6)


def _config(cache, out, **changes) -> TrainConfig:
    values = dict(cache=str(cache.root), out=str(out), model="cnn-lstm", model_args={"hidden": 8, "features": 16},
                  window=5, batch_size=2, epochs=2, patience=5, split=[0.5, 0.25, 0.25], seed=3,
                  precision="fp32")  # these tests compare numbers exactly
    values.update(changes)
    return TrainConfig(**values)


def test_training_writes_config_checkpoints_and_curves(tiny_cache, tmp_path):
    run = train(_config(tiny_cache, tmp_path / "run"))
    info = json.loads((run / "run.json").read_text())
    assert info["data_hashes"] == tiny_cache.hashes() and info["versions"]["torch"]
    assert set(info["split"]["train"]).isdisjoint(info["split"]["test"])
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 2 and all(np.isfinite(h["val_loss"]) and h["grad_norm_mean"] > 0 for h in history)
    assert (run / "best" / "model.safetensors").exists() and (run / "last" / "optimizer.safetensors").exists()
    assert any((run / "tb").iterdir())


def test_resume_continues_exactly_where_training_stopped(tiny_cache, tmp_path):
    straight = train(_config(tiny_cache, tmp_path / "straight", epochs=2))
    train(_config(tiny_cache, tmp_path / "resumed", epochs=1))
    resumed = train(_config(tiny_cache, tmp_path / "resumed", epochs=2), resume=True)
    a, b = load_model(straight / "last"), load_model(resumed / "last")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(x, y, atol=1e-5), name


def test_stateless_training_and_sgd(tiny_cache, tmp_path):
    run = train(_config(tiny_cache, tmp_path / "run", stateful=False, optimizer="sgd", lr=0.01, epochs=1))
    assert json.loads((run / "history.json").read_text())[0]["loss"] > 0


def test_unknown_option_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def test_split_by_time_trains_and_evaluates_on_later_blocks(tiny_cache, tmp_path):
    from steer.evaluate.evaluate import evaluate_run

    run = train(_config(tiny_cache, tmp_path / "run", split_by="time", epochs=1))
    split = json.loads((run / "run.json").read_text())["split"]
    assert all("@" in name for part in split.values() for name in part)
    metrics = evaluate_run(run)
    assert metrics["frames"] == sum(int(n.split(":")[1]) - int(n.split("@")[1].split(":")[0]) for n in split["test"])


def test_stateless_windows_with_a_burn_in_train(tiny_cache, tmp_path):
    run = train(_config(tiny_cache, tmp_path / "run", stateful=False, burn_in=3, epochs=1,
                        model_args={"hidden": 8, "features": 16, "bidirectional": True}))
    assert np.isfinite(json.loads((run / "history.json").read_text())[0]["val_loss"])


@pytest.mark.parametrize("changes,message", [
    ({"model_args": {"bidirectional": True}}, "bidirectional.*--no-stateful"),
    ({"burn_in": 2}, "burn_in is for stateless"),
    ({"model": "pilotnet", "model_args": {"inputs": "difference"}, "stateful": False, "window": 1},
     "frame differences"),
])
def test_options_that_would_train_the_wrong_thing_are_refused(tiny_cache, tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        train(_config(tiny_cache, tmp_path / "run", **changes))


def test_two_processes_under_torchrun_follow_one_with_the_same_global_batch(tiny_cache, tmp_path):
    """DDP on CPU (gloo): each rank trains on its half of every global batch, and the weights end where
    one process training on the whole batches ends. PilotNet with frame differences, stateful: lanes
    and the carried state are split between the ranks too."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    options = dict(model="pilotnet", model_args={"inputs": "difference"}, window=3, batch_size=4, epochs=2, threads=1)
    train(_config(tiny_cache, tmp_path / "one", **options))
    config = _config(tiny_cache, tmp_path / "two", **options)
    (tmp_path / "two.json").write_text(json.dumps(config.to_dict()))
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                    "-m", "steer", "train", "--config", str(tmp_path / "two.json")], check=True, timeout=300)
    one, two = (load_file(tmp_path / run / "last" / "model.safetensors") for run in ("one", "two"))
    assert json.loads((tmp_path / "two" / "run.json").read_text())["processes"] == 2
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-5), name


def test_device_loader_gives_the_batches_of_the_memmap_loader(tiny_cache):
    from steer.data.windows import stateful_batches
    from steer.train.batches import BatchLoader, DeviceBatchLoader

    inputs = [d.frames for d in tiny_cache.drives]
    targets = [d.targets(["steering", "speed"]) for d in tiny_cache.drives]
    batch = stateful_batches([len(x) for x in inputs], 6, 3, np.random.default_rng(0))[2]
    on_device = DeviceBatchLoader(inputs, targets, 6, "cpu")
    for a, b in zip(BatchLoader(inputs, targets, 6).load(batch), on_device.load(batch)):
        assert torch.equal(a, b)


def test_bf16_autocast_trains(tiny_cache, tmp_path):
    run = train(_config(tiny_cache, tmp_path / "run", model="pilotnet", model_args={}, window=1, stateful=False,
                        precision="bf16", channels_last=True, epochs=1))
    assert np.isfinite(json.loads((run / "history.json").read_text())[0]["loss"])


def test_a_block_of_a_split_by_time_is_predicted_after_the_frames_before_it(tiny_cache):
    from steer.models.sequence import predict_drive

    torch.manual_seed(0)
    model = create_model("cnn-lstm", targets=["steering"], hidden=8, features=16)
    drive = tiny_cache.drives[0]
    block, = tiny_cache.by_name([f"{drive.name}@25:40"])
    whole = predict_sequence(model, drive.frames)
    assert np.allclose(predict_drive(model, block), whole[25:], atol=1e-5)
    cold = predict_sequence(model, block.frames)
    assert np.abs(cold - whole[25:]).max() > 1e-4  # a cold start differs
