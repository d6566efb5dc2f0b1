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


def test_a_run_in_out_is_continued_with_resume_and_replaced_with_overwrite(tiny_cache, tmp_path):
    from steer.cli import main

    run = tmp_path / "run"
    argv = ["train", "--cache", str(tiny_cache.root), "--out", str(run), "--model", "pilotnet", "--no-stateful",
            "--window", "1", "--batch-size", "8", "--split", "0.5,0.25,0.25", "--threads", "1"]
    main([*argv, "--epochs", "1"])
    first = json.loads((run / "history.json").read_text())
    main([*argv, "--epochs", "2", "--resume"])
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 2 and history[:1] == first
    main([*argv, "--epochs", "1", "--seed", "4", "--overwrite"])
    assert len(json.loads((run / "history.json").read_text())) == 1
    assert json.loads((run / "run.json").read_text())["config"]["seed"] == 4


def test_overwrite_removes_the_old_run_first_so_an_interrupted_one_leaves_none_of_it(tiny_cache, tmp_path,
                                                                                       monkeypatch):
    import steer.train.loop as loop

    run = train(_config(tiny_cache, tmp_path / "run", epochs=1))
    (run / "last.old").mkdir()  # a checkpoint swap the old run left unfinished

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(loop, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_cache, run, model="pilotnet", model_args={}, stateful=False, window=1), overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["run.json", "tb"]  # the new run's, before its first epoch
    assert json.loads((run / "run.json").read_text())["config"]["model"] == "pilotnet"
    assert len(list((run / "tb").iterdir())) == 1  # the new run's events alone


def test_stateless_training_and_sgd_learn(tiny_cache, tmp_path):
    run = train(_config(tiny_cache, tmp_path / "run", stateful=False, optimizer="sgd", lr=0.01, epochs=3))
    losses = [h["loss"] for h in json.loads((run / "history.json").read_text())]
    # normalised targets: predicting the training mean scores about 1; SGD gets below it and keeps falling
    assert losses[-1] < losses[0] and losses[-1] < 0.9, losses


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


def test_a_burn_in_warms_the_state_up_without_gradient_and_predicts_only_the_window(tiny_cache):
    from steer.models import detach_state
    from steer.train.loop import _forward

    torch.manual_seed(0)
    model = create_model("cnn-lstm", targets=["steering"], hidden=8, features=16).eval()
    frames = torch.from_numpy(np.array(tiny_cache.drives[0].frames[:8]))[None]  # 3 burn-in + 5 window
    teacher = torch.zeros(1, 8, 1)

    def gradient(preds: torch.Tensor) -> torch.Tensor:
        model.zero_grad()
        preds.sum().backward()
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    preds, _ = _forward(model, frames, None, teacher, _config(tiny_cache, "-", stateful=False, burn_in=3))
    with_burn_in = gradient(preds)
    whole, _ = model(frames, None)
    assert preds.shape[1] == 5 and torch.allclose(preds, whole[:, 3:], atol=1e-5)  # the state of frames 0-2
    cold, _ = model(frames[:, 3:], None)
    assert not torch.allclose(preds, cold, atol=1e-4)  # which a window without burn-in lacks
    _, warm = model(frames[:, :3], None)
    detached, _ = model(frames[:, 3:], detach_state(warm))
    assert torch.allclose(with_burn_in, gradient(detached), atol=1e-6)  # no gradient through the burn-in
    assert not torch.allclose(with_burn_in, gradient(whole[:, 3:]), atol=1e-6)


@pytest.mark.parametrize("changes,message", [
    ({"model_args": {"bidirectional": True}}, "bidirectional.*--no-stateful"),
    ({"burn_in": 2}, "--burn-in is for stateless"),
    ({"model": "pilotnet", "model_args": {"inputs": "difference"}, "stateful": False, "window": 1},
     "frame differences"),
])
def test_options_that_would_train_the_wrong_thing_are_refused(tiny_cache, tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        train(_config(tiny_cache, tmp_path / "run", **changes))


def test_two_processes_under_torchrun_follow_one_with_the_same_global_batch(tiny_cache, tmp_path):
    """DDP on CPU (gloo): each rank trains on its half of every global batch, and the weights end where
    one process training on the whole batches ends. PilotNet with frame differences, stateful: lanes
    and the carried state are split between the ranks too. 26 windows in 8 lanes do not fill them
    evenly: a lane given to no rank would make the two runs part."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    options = dict(model="pilotnet", model_args={"inputs": "difference"}, window=3, batch_size=8, epochs=2, threads=1)
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


def test_bf16_autocast_trains_in_bf16(tiny_cache, tmp_path):
    from torch.nn.modules.module import register_module_forward_hook

    dtypes = {}

    def record(module, inputs, output):
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module.training:
            dtypes.setdefault(dtypes["run"], set()).add(output.dtype)

    options = dict(model="pilotnet", model_args={}, window=1, stateful=False, epochs=1)
    handle = register_module_forward_hook(record)
    try:
        for precision in ("bf16", "fp32"):
            dtypes["run"] = precision
            train(_config(tiny_cache, tmp_path / precision, precision=precision, channels_last=True, **options))
    finally:
        handle.remove()
    assert dtypes["bf16"] == {torch.bfloat16} and dtypes["fp32"] == {torch.float32}
    bf16, fp32 = (load_model(tmp_path / p / "last") for p in ("bf16", "fp32"))
    assert np.isfinite(json.loads((tmp_path / "bf16" / "history.json").read_text())[0]["loss"])
    assert not all(torch.equal(a, b) for a, b in zip(bf16.state_dict().values(), fp32.state_dict().values()))


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


@pytest.mark.parametrize("windows_,batch_size", [(100, 16), (5, 8), (26, 8)])
def test_every_stateful_batch_has_batch_size_rows_and_every_window_once(windows_, batch_size):
    from steer.data.windows import stateful_batches

    lengths = [4 * n for n in (windows_ // 3, windows_ // 3, windows_ - 2 * (windows_ // 3))]  # windows of 4
    batches = stateful_batches(lengths, 4, batch_size, np.random.default_rng(0))
    assert all(len(b) == batch_size for b in batches)
    real = [(w.drive, w.start) for b in batches for w in b if w.weight]
    assert len(real) == windows_ == len(set(real))
    for lane in zip(*batches):  # within a lane, a window follows the one before it unless the state resets
        for before, after in zip(lane, lane[1:]):
            if after.weight and not after.reset:
                assert (after.drive, after.start) == (before.drive, before.start + 4)


# Dropout on: the random draws of the epochs after a resume must be those of an uninterrupted run too.
INTERRUPTED = ["--model", "pilotnet", "--model-args", '{"dropout": 0.3}', "--no-stateful", "--window", "1",
               "--stride", "1", "--batch-size", "8", "--epochs", "3", "--patience", "9", "--split", "0.5,0.25,0.25",
               "--seed", "3", "--threads", "1", "--precision", "fp32"]


def _run_bytes(run) -> dict[str, bytes]:
    """What an interrupted-then-resumed run must reproduce: the weights and the history without its timings."""
    history = [{k: v for k, v in h.items() if "per_s" not in k} for h in json.loads((run / "history.json").read_text())]
    return {"best": (run / "best" / "model.safetensors").read_bytes(),
            "last": (run / "last" / "model.safetensors").read_bytes(), "history": json.dumps(history).encode()}


def _interrupt_and_resume(tiny_cache, run, signal_, delay_s: float) -> tuple[dict, int | None, str]:
    """Start `steer train` into `run` in a process, send `signal_` `delay_s` after its first checkpoint, then
    --resume in this process; returns the resumed run's bytes, the interrupted process's exit code (None
    where it finished first) and its stderr."""
    import subprocess
    import sys
    import time

    from steer.cli import main

    argv = ["train", "--cache", str(tiny_cache.root), "--out", str(run), *INTERRUPTED]
    process = subprocess.Popen([sys.executable, "-m", "steer", *argv], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    while not (run / "last").exists() and process.poll() is None:
        time.sleep(0.02)
    time.sleep(delay_s)
    code = None
    if process.poll() is None:
        process.send_signal(signal_)
        code = process.wait(timeout=30)  # a hang detector, not a speed limit
    err = process.stderr.read()
    process.stderr.close()
    if code in (0, -signal_) and len(json.loads((run / "history.json").read_text())) == 3:
        code = None  # the signal came after training had ended, while the interpreter shut down
    main([*argv, "--resume"])
    assert not [p for p in run.rglob("*") if p.name.endswith((".tmp", ".old")) or ".tmp." in p.name]
    return _run_bytes(run), code, err


def _interruption_trials(tiny_cache, tmp_path, trials: int) -> None:
    import signal

    from steer.cli import main

    main(["train", "--cache", str(tiny_cache.root), "--out", str(tmp_path / "straight"), *INTERRUPTED])
    expected = _run_bytes(tmp_path / "straight")
    rng = np.random.default_rng(0)
    for trial in range(trials):
        for signal_ in (signal.SIGINT, signal.SIGKILL):
            got, code, err = _interrupt_and_resume(tiny_cache, tmp_path / f"run-{trial}-{signal_.name}", signal_,
                                                   float(rng.uniform(0, 1.0)))
            if code is not None and signal_ == signal.SIGINT:
                assert code == 130 and err.strip() == "steer train: interrupted", err
            assert got == expected, f"trial {trial}, {signal_!r}: resumed run differs from the uninterrupted one"


def test_ctrl_c_or_kill_during_training_then_resume_gives_the_bytes_of_an_uninterrupted_run(tiny_cache, tmp_path):
    _interruption_trials(tiny_cache, tmp_path, trials=1)


@pytest.mark.slow
def test_twenty_interruptions_each_then_resume_give_the_bytes_of_an_uninterrupted_run(tiny_cache, tmp_path):
    _interruption_trials(tiny_cache, tmp_path, trials=20)


@pytest.mark.parametrize("new_complete", [True, False])
def test_an_interruption_between_a_checkpoints_renames_is_recovered_never_deleted(tmp_path, new_complete):
    """save_checkpoint moves the folder to .old, then .tmp into place: stopped between the two, the next load
    finishes the swap where the new checkpoint was complete (model.json, written last, is there) and puts
    the old one back where it was not."""
    import shutil

    torch.manual_seed(0)
    old, new = (create_model("pilotnet", targets=["steering"]) for _ in range(2))
    save_checkpoint(tmp_path / "ckpt", old)
    save_checkpoint(tmp_path / "new", new)
    (tmp_path / "ckpt").rename(tmp_path / "ckpt.old")
    shutil.copytree(tmp_path / "new", tmp_path / "ckpt.tmp")
    if not new_complete:
        (tmp_path / "ckpt.tmp" / "model.json").unlink()
    loaded = load_model(tmp_path / "ckpt")
    expected = new if new_complete else old
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), expected.state_dict().values()))
    left = {"ckpt", "new"} | (set() if new_complete else {"ckpt.tmp"})  # a half-written .tmp: the next save's
    assert {p.name for p in tmp_path.iterdir()} == left


def test_an_interruption_while_the_replaced_checkpoint_was_removed_leaves_nothing_behind(tmp_path):
    """Stopped after both renames, during the removal of folder.old (a Ctrl-C at the end of a run's last
    save): the next load removes what is left of it and loads the new checkpoint."""
    import shutil

    torch.manual_seed(0)
    old, new = (create_model("pilotnet", targets=["steering"]) for _ in range(2))
    save_checkpoint(tmp_path / "ckpt", old)
    shutil.copytree(tmp_path / "ckpt", tmp_path / "ckpt.old")
    save_checkpoint(tmp_path / "new", new)
    shutil.rmtree(tmp_path / "ckpt")
    (tmp_path / "new").rename(tmp_path / "ckpt")
    (tmp_path / "ckpt.old" / "model.safetensors").unlink()  # partly removed
    loaded = load_model(tmp_path / "ckpt")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), new.state_dict().values()))
    assert {p.name for p in tmp_path.iterdir()} == {"ckpt"}


def test_a_batch_size_that_does_not_divide_among_processes_is_refused_before_writing(tiny_cache, tmp_path,
                                                                                      monkeypatch):
    import steer.train.loop as loop
    from steer.train.distributed import World

    monkeypatch.setattr(loop, "join", lambda device: (World(0, 2), device))
    with pytest.raises(ValueError, match="--batch-size 3 does not divide among 2 processes"):
        train(_config(tiny_cache, tmp_path / "run", batch_size=3))
    assert not (tmp_path / "run").exists()
