"""Bad input to the verbs that read a cache and write runs (train, evaluate, run, export, view, compare):
each case must end in a clean refusal (see the `refuse` fixture): a non-zero exit, one `steer <verb>:
error:` line naming the file, drive or flag, no traceback, and nothing new or changed on disk."""
import json
import shutil

import numpy as np
import pytest

from steer.train.config import TrainConfig
from steer.train.loop import train

TINY = dict(model="cnn-lstm", model_args={"hidden": 8, "features": 16}, window=5, batch_size=2, epochs=1,
            split=[0.5, 0.25, 0.25], seed=3, threads=1)
# The same options as flags, for `steer train` (a --resume of the run above).
FLAGS = ["--model", "cnn-lstm", "--model-args", '{"hidden": 8, "features": 16}', "--window", "5", "--batch-size", "2",
         "--epochs", "2", "--split", "0.5,0.25,0.25", "--seed", "3", "--threads", "1"]


@pytest.fixture(scope="module")
def trained(tiny_cache, tmp_path_factory):
    """A finished run (cnn-lstm, streamable) and a bidirectional one, trained once for the module."""
    root = tmp_path_factory.mktemp("runs")
    run = train(TrainConfig(cache=str(tiny_cache.root), out=str(root / "run"), **TINY))
    offline = train(TrainConfig(cache=str(tiny_cache.root), out=str(root / "bi"), **{
        **TINY, "model_args": {"hidden": 8, "features": 16, "bidirectional": True}, "stateful": False}))
    return run, offline


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the finished run to damage."""
    return shutil.copytree(trained[0], tmp_path / "run")


@pytest.fixture
def cache(tiny_cache, tmp_path):
    """A copy of the tiny cache to damage."""
    return shutil.copytree(tiny_cache.root, tmp_path / "cache")


def _flip_a_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _train(cache, out, *extra) -> list:
    return ["train", "--cache", cache, "--out", out, *FLAGS, *extra]


# --- train: refused before anything is written (no run.json, no tb/) ---------------------------------------

@pytest.mark.parametrize("flags,names", [
    (["--epochs", "0"], ["--epochs"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--window", "1000"], ["--window", "40 frames"]),
    (["--split", "0.5,0.5,0.5"], ["--split"]),
    (["--split", "1,0,0"], ["--split"]),
    (["--lr", "0"], ["--lr"]),
    (["--optimizer", "adagrad"], ["--optimizer", "adagrad"]),
    (["--split-by", "week"], ["--split-by", "week"]),
    (["--model", "resnet"], ["--model", "resnet", "pilotnet"]),
    (["--model-args", '{"hiden": 8}'], ["--model-args", "hiden", "hidden"]),
    (["--targets", "steering,brakes"], ["--targets", "brakes"]),
    (["--burn-in", "2"], ["--burn-in", "--no-stateful"]),
    (["--model-args", '{"bidirectional": true}'], ["--no-stateful"]),
])
def test_train_refuses_bad_options_before_writing(refuse, tiny_cache, tmp_path, flags, names):
    refuse(_train(tiny_cache.root, tmp_path / "out", *flags), tmp_path, *names)
    assert not (tmp_path / "out").exists()


def test_train_refuses_a_missing_cache(refuse, tmp_path):
    refuse(_train(tmp_path / "nowhere", tmp_path / "out"), tmp_path, "nowhere", "manifest.json")


def test_train_refuses_a_comparison_spec_as_config(refuse, tiny_cache, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"common": {"epochs": 1}, "models": {"pilotnet": {}}}))
    refuse(["train", "--config", spec, "--cache", tiny_cache.root, "--out", tmp_path / "out"], tmp_path, spec,
           "steer compare")


def test_train_refuses_a_config_that_is_not_json(refuse, tiny_cache, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text('{"epochs": 1,\n "lr": }')
    refuse(["train", "--config", spec, "--cache", tiny_cache.root, "--out", tmp_path / "out"], tmp_path, spec,
           "line 2")


@pytest.mark.parametrize("keep", [("run.json", "last", "best", "history.json", "tb"), ("last",), ("best",)])
def test_train_refuses_a_folder_holding_a_run_naming_it_and_the_ways_on(refuse, tiny_cache, run, tmp_path, keep):
    for path in run.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    line = refuse(_train(tiny_cache.root, run), tmp_path, str(run), "--resume", "--overwrite", "new --out")
    assert all(name in line for name in keep if name in ("run.json", "last", "best"))


def test_train_refuses_resume_and_overwrite_together(refuse, tiny_cache, run, tmp_path):
    refuse(_train(tiny_cache.root, run, "--resume", "--overwrite"), tmp_path, "--resume", "--overwrite")


@pytest.mark.parametrize("flags,names", [
    (["--model", "pilotnet", "--model-args", "{}"], ["--model", "pilotnet", "cnn-lstm"]),
    (["--model-args", '{"hidden": 16, "features": 16}'], ["--model-args", '"hidden": 16']),
    (["--targets", "steering,speed"], ["--targets"]),
    (["--seed", "4"], ["the split"]),
])
def test_resume_refuses_other_settings_naming_them(refuse, tiny_cache, run, tmp_path, flags, names):
    refuse(_train(tiny_cache.root, run, "--resume", *flags), tmp_path, "--resume", *names)


def test_resume_refuses_changed_data_naming_the_drive(refuse, cache, trained, tmp_path):
    run = shutil.copytree(trained[0], tmp_path / "run")
    manifest = json.loads((cache / "manifest.json").read_text())
    changed = json.loads((run / "run.json").read_text())["split"]["train"][0]
    next(d for d in manifest["drives"] if d["name"] == changed)["hash"] = "0" * 16  # as a re-import would
    (cache / "manifest.json").write_text(json.dumps(manifest))
    refuse(_train(cache, run, "--resume"), tmp_path, "--resume", "the data", changed)


@pytest.mark.parametrize("damage,names", [
    (lambda run: _flip_a_byte(run / "last" / "model.safetensors"), ["last/model.safetensors", "sha256"]),
    (lambda run: _flip_a_byte(run / "last" / "optimizer.safetensors"), ["last/optimizer.safetensors", "sha256"]),
    (lambda run: (run / "last" / "progress.json").write_text('{"epoch": 0, "best_'), ["last"]),
    (lambda run: (run / "last" / "model.json").write_text('{"name": "cnn-'), ["last/model.json"]),
    (lambda run: (run / "run.json").write_text("{"), ["run.json"]),
])
def test_resume_refuses_a_damaged_run(refuse, tiny_cache, run, tmp_path, damage, names):
    damage(run)
    refuse(_train(tiny_cache.root, run, "--resume"), tmp_path, *names)


# --- evaluate and view ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage,names", [
    (lambda run: _flip_a_byte(run / "best" / "model.safetensors"), ["best/model.safetensors", "sha256"]),
    (lambda run: (run / "best" / "model.json").write_text('{"name": "cnn-lstm", "con'), ["best/model.json"]),
    (lambda run: (run / "best" / "model.json").unlink(), ["best", "model.json is missing"]),
    (lambda run: (run / "best" / "model.safetensors").write_bytes(b"garbage"), ["best/model.safetensors"]),
    (lambda run: (run / "run.json").unlink(), ["run.json is missing"]),
    (lambda run: (run / "run.json").write_bytes(b"\xff\xfe{"), ["run.json"]),
])
def test_evaluate_refuses_a_damaged_run(refuse, run, tmp_path, damage, names):
    damage(run)
    refuse(["evaluate", "--run", run], tmp_path, *names)


def test_evaluate_refuses_drives_the_cache_lacks(refuse, run, tmp_path):
    refuse(["evaluate", "--run", run, "--drives", "world-7-999"], tmp_path, "world-7-999")


def test_evaluate_refuses_a_cache_without_the_runs_drives(refuse, run, tmp_path):
    from steer.data.cache import FrameCache
    from steer.world.simulate import WorldConfig, generate_drives

    other = FrameCache.create(tmp_path / "other", generate_drives(WorldConfig(frames_per_drive=12), 3, seed=9)).root
    test_drive = json.loads((run / "run.json").read_text())["split"]["test"][0]
    refuse(["evaluate", "--run", run, "--cache", other, "--drives", test_drive], tmp_path, test_drive, "other")


def test_train_refuses_a_garbage_signals_line_naming_the_drive_file_and_line(refuse, cache, tmp_path):
    path = cache / "drives" / "world-7-001" / "signals.csv"
    lines = path.read_text().splitlines()
    lines[6] = "0.3,7,garbage"
    path.write_text("\n".join(lines) + "\n")
    line = refuse(_train(cache, tmp_path / "run"), tmp_path, "'world-7-001'", f"{path} line 7", "steer world --out")
    assert "usecols" not in line and not (tmp_path / "run").exists()


def test_evaluate_refuses_a_nan_prediction_naming_the_file_and_line(refuse, tmp_path):
    (tmp_path / "truth.csv").write_text("frame_id,steering_angle\n1,0.0\n2,0.5\n")
    (tmp_path / "preds.csv").write_text("frame_id,steering_angle\n1,0.1\n2,nan\n")
    refuse(["evaluate", "--predictions", tmp_path / "preds.csv", "--truth", tmp_path / "truth.csv", "--out",
            tmp_path / "score.json"], tmp_path, "preds.csv line 3", "steering_angle", "'nan'")


def test_evaluate_refuses_predictions_without_truth(refuse, tmp_path):
    refuse(["evaluate", "--predictions", tmp_path / "p.csv"], tmp_path, "--truth")


def test_view_refuses_a_drive_the_cache_lacks(refuse, run, tmp_path):
    refuse(["view", "--run", run, "--drive", "world-7-999", "--out", tmp_path / "v.mp4"], tmp_path, "world-7-999")


def test_view_refuses_a_folder_that_is_not_a_run(refuse, tmp_path):
    refuse(["view", "--run", tmp_path, "--drive", "d", "--out", tmp_path / "v.mp4"], tmp_path, "run.json")


# --- run and export --------------------------------------------------------------------------------------------

def test_run_refuses_an_empty_image_folder(refuse, run, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("no images here")
    refuse(["run", "--checkpoint", run / "best", "--images", tmp_path / "images", "--fps", "20",
            "--out", tmp_path / "p.csv"], tmp_path, "--images", "images")


def test_run_refuses_a_missing_image_folder(refuse, run, tmp_path):
    refuse(["run", "--checkpoint", run / "best", "--images", tmp_path / "nowhere", "--fps", "20",
            "--out", tmp_path / "p.csv"], tmp_path, "--images", "nowhere")


def test_run_refuses_images_without_a_frame_rate(refuse, run, tmp_path):
    refuse(["run", "--checkpoint", run / "best", "--images", tmp_path, "--out", tmp_path / "p.csv"], tmp_path,
           "--fps")


def test_run_refuses_an_unreadable_video(refuse, run, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    refuse(["run", "--checkpoint", run / "best", "--video", video, "--out", tmp_path / "p.csv"], tmp_path,
           "--video", "clip.mp4")


def test_run_refuses_a_drive_the_cache_lacks(refuse, run, tiny_cache, tmp_path):
    refuse(["run", "--checkpoint", run / "best", "--cache", tiny_cache.root, "--drive", "world-7-999",
            "--out", tmp_path / "p.csv"], tmp_path, "world-7-999")


def test_run_refuses_damaged_weights(refuse, run, tiny_cache, tmp_path):
    _flip_a_byte(run / "best" / "model.safetensors")
    refuse(["run", "--checkpoint", run / "best", "--cache", tiny_cache.root, "--drive", tiny_cache.drives[0].name,
            "--out", tmp_path / "p.csv"], tmp_path, "best/model.safetensors")


def test_run_refuses_a_bidirectional_model(refuse, trained, tiny_cache, tmp_path):
    checkpoint = shutil.copytree(trained[1] / "best", tmp_path / "bi")
    refuse(["run", "--checkpoint", checkpoint, "--cache", tiny_cache.root, "--drive", tiny_cache.drives[0].name,
            "--out", tmp_path / "p.csv"], tmp_path, str(checkpoint), "bidirectional")


def test_export_refuses_a_bidirectional_model(refuse, trained, tmp_path):
    checkpoint = shutil.copytree(trained[1] / "best", tmp_path / "bi")
    refuse(["export", "--checkpoint", checkpoint, "--out", tmp_path / "step.onnx"], tmp_path, str(checkpoint),
           "bidirectional")


def test_export_refuses_a_folder_that_is_not_a_checkpoint(refuse, tmp_path):
    refuse(["export", "--checkpoint", tmp_path, "--out", tmp_path / "step.onnx"], tmp_path, "model.json is missing")


def test_export_refuses_damaged_weights(refuse, run, tmp_path):
    _flip_a_byte(run / "best" / "model.safetensors")
    refuse(["export", "--checkpoint", run / "best", "--out", tmp_path / "step.onnx"], tmp_path,
           "best/model.safetensors")


# --- compare ----------------------------------------------------------------------------------------------------

def test_compare_refuses_flat_training_options_as_config(refuse, tiny_cache, tmp_path):
    spec = tmp_path / "flat.json"
    spec.write_text(json.dumps({"model": "pilotnet", "epochs": 1}))
    refuse(["compare", "--config", spec, "--cache", tiny_cache.root, "--out", tmp_path / "cmp"], tmp_path, spec,
           "steer train")


def test_compare_refuses_a_bad_model_before_training_any(refuse, tiny_cache, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"models": {"pilotnet": {"epochs": 1}, "gru": {"model": "cnn-lstm",
                                                                            "model_args": {"cel": "gru"}}}}))
    refuse(["compare", "--config", spec, "--cache", tiny_cache.root, "--out", tmp_path / "cmp"], tmp_path, "gru",
           "--model-args", "cel")


def test_compare_refuses_zero_epochs(refuse, tiny_cache, tmp_path):
    refuse(["compare", "--models", "pilotnet", "--cache", tiny_cache.root, "--out", tmp_path / "cmp", "--epochs",
            "0"], tmp_path, "--epochs")
