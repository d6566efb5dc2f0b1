"""Inside the network: gradient health through time (steer/train/health.py), diagnosis of a checkpoint,
saliency and attribution over time (steer/evaluate/explain.py), the memory task."""
import json

import numpy as np
import pytest
import torch
from conftest import MODEL_VARIANTS
from torch import nn

from steer.models.recurrent import RecurrentCore
from steer.train import health
from steer.train.config import TrainConfig
from steer.train.loop import train


def _linear_rnn(weight: float) -> RecurrentCore:
    """One unit, h_t = tanh(x_t + weight * h_{t-1}): at zero input and state, tanh' = 1, so the
    gradient through each step is exactly `weight`."""
    core = RecurrentCore(1, "rnn", hidden=1)
    with torch.no_grad():
        for name, p in core.rnn.named_parameters():
            p.fill_({"weight_ih_l0": 1.0, "weight_hh_l0": weight}.get(name, 0.0))
    return core


def test_state_gradients_of_a_linear_rnn_decay_by_its_recurrent_weight():
    core, states = _linear_rnn(0.5), []
    out, _ = health.unroll(core, torch.zeros(1, 12, 1), None, states)
    curve = health.state_gradient_curve(out[:, -1].sum(), states)
    assert np.allclose(curve, 0.5 ** np.arange(12), rtol=1e-6)
    assert health.effective_memory(curve) == 7  # 0.5^7 = 0.0078 is the first value under 1%
    assert health.effective_memory(np.ones(5)) == 5  # never falls: at least the window


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_unrolled_core_and_its_state_gradients_match_pytorchs_own_sequence(cell):
    torch.manual_seed(0)
    core, x, states = RecurrentCore(3, cell, hidden=4, layers=2).eval(), torch.randn(2, 6, 3), []
    out, last = health.unroll(core, x, None, states)
    expected, expected_last = core(x, None)
    assert torch.allclose(out, expected, atol=1e-5) and all(torch.allclose(a, b, atol=1e-5)
                                                             for a, b in zip(last, expected_last))
    curve = health.state_gradient_curve(out[:, -1].sum(), states)
    for k in range(6):  # autograd through nn.LSTM/GRU/RNN from the state k steps back, on the steps after it
        start = tuple(s.detach().requires_grad_() for s in states[5 - k])
        rest, _ = core.rnn(x[:, 6 - k:], start if cell == "lstm" else start[0]) if k else (start[0][-1:], None)
        grads = torch.autograd.grad(rest[:, -1].sum() if k else rest[-1].sum(), start, allow_unused=True)
        norm = float(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))
        assert curve[k] == pytest.approx(norm, rel=1e-4)


def test_dead_units_are_counted_exactly():
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.ELU())
    with torch.no_grad():  # inputs are positive: units 2 and 3 of the ReLU never fire; the ELU's unit 0 never does
        net[0].weight.copy_(torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, -1]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[-1.0, -1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]))
        net[2].bias.zero_()
    with health.watching(net) as summary:
        net(torch.rand(50, 2) + 0.1)
        net(torch.rand(7, 2) + 0.1)
    assert summary["dead_units"] == {"1": 0.5, "3": pytest.approx(1 / 3)}
    assert summary["dead_fraction"] == pytest.approx(3 / 7)


def test_gate_saturation_is_exact_on_crafted_gates():
    assert health.gate_saturation(torch.tensor([0.005, 0.01, 0.5, 0.99, 0.995])) == (2, 5)
    core = RecurrentCore(2, "lstm", hidden=3)
    with torch.no_grad():  # pre-activations: input gate +10, forget gate 0, cell 0, output gate -10
        core.rnn.weight_ih_l0.zero_()
        core.rnn.weight_hh_l0.zero_()
        core.rnn.bias_hh_l0.zero_()
        core.rnn.bias_ih_l0.copy_(torch.cat([torch.full((3,), 10.0), torch.zeros(6), torch.full((3,), -10.0)]))
    model = nn.Module()
    model.core = core
    with health.watching(model) as summary:
        model.core(torch.randn(4, 5, 2), None)
    assert summary["gate_saturation"] == {"layer0/input": 1.0, "layer0/forget": 0.0, "layer0/output": 1.0}


def test_update_ratios_and_layer_gradient_norms():
    net = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[3.0, 0], [0, 4]]))
    before = health.weights_of(net)
    with torch.no_grad():
        net[0].weight.add_(torch.tensor([[0.5, 0], [0, 0]]))
    assert health.update_ratios(net, before) == {"0": pytest.approx(0.1)}
    net[0].weight.grad = torch.tensor([[3.0, 0], [0, 4]])
    assert health.layer_grad_norms(net) == {"0": pytest.approx(5.0)}


def _config(cache, out, **changes) -> TrainConfig:
    values = dict(cache=str(cache.root), out=str(out), model="cnn-lstm", model_args={"hidden": 8, "features": 16},
                  window=5, batch_size=2, epochs=1, patience=5, split=[0.5, 0.25, 0.25], seed=3, clip_grad_norm=0.5)
    values.update(changes)
    return TrainConfig(**values)


def test_training_records_gradient_health_every_n_steps(tiny_cache, tmp_path):
    run = train(_config(tiny_cache, tmp_path / "run", health_every=3))
    epoch, = json.loads((run / "history.json").read_text())
    found = epoch["health"]
    assert [c["step"] for c in found["checks"]] == [0, 3, 6, 9, 12, 15][:len(found["checks"])]
    first = found["checks"][0]
    assert len(first["decay"]) == 5 and first["decay"][0] == 1.0 and 0 <= first["effective_memory"] <= 5
    assert "core.rnn" in first["grad_norm"] and "core.rnn" in first["update_ratio"]
    assert set(found["gate_saturation"]) == {"layer0/input", "layer0/forget", "layer0/output"}
    assert "encoder.appearance.0.2" in found["dead_units"] and 0 <= found["dead_fraction"] <= 1
    # clipping events carry the norm before clipping, which the per-layer norms before clipping add up to
    assert all(c["norm_before"] > 0.5 for c in found["clips"])
    clipped = {c["step"]: c["norm_before"] for c in found["clips"]}
    for check in found["checks"]:
        total = np.sqrt(sum(v ** 2 for v in check["grad_norm"].values()))
        assert total == pytest.approx(clipped.get(check["step"], total), rel=1e-3)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    scalars, histograms = events.Tags()["scalars"], events.Tags()["histograms"]
    assert {"health/effective_memory", "health/grad_norm/core.rnn", "health/update_ratio/head",
            "health/dead_fraction", "health/gate_saturation/layer0/forget"} <= set(scalars)
    assert "health/decay" in histograms and "health/grad/head.weight" in histograms
    assert [e.step for e in events.Scalars("health/effective_memory")] == [c["step"] for c in found["checks"]]


def _spread_by_hand(mask: np.ndarray, k: int, s: int, size: tuple[int, int]) -> np.ndarray:
    out = np.zeros(size)
    for i in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            out[i * s:i * s + k, j * s:j * s + k] += mask[i, j]
    return out


def test_visual_backprop_equals_the_map_computed_by_hand():
    from steer.evaluate.explain import chains, recording_convolutions, visual_backprop

    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.ReLU(), nn.Conv2d(2, 3, 2, stride=1), nn.ReLU())
    x = torch.randn(1, 1, 10, 9)
    with recording_convolutions(net) as calls:
        net(x)
    (chain,), = chains(calls).values()
    saliency = visual_backprop(chain)[0].numpy()
    with torch.no_grad():
        a1 = torch.relu(net[0](x))[0].mean(0).numpy()  # (4, 4): the 10th row and 9th column unread
        a2 = torch.relu(net[2](torch.relu(net[0](x))))[0].mean(0).numpy()  # (3, 3)
    hand = _spread_by_hand(_spread_by_hand(a2, 2, 1, a1.shape) * a1, 3, 2, (10, 9))
    hand = (hand - hand.min()) / (hand.max() - hand.min())
    assert saliency.shape == (10, 9) and np.allclose(saliency, hand, atol=1e-6)
    assert np.all(saliency[-1] == saliency.min())  # a row no kernel read gets nothing


SMALL = {"cnn-lstm": {"hidden": 8, "features": 16}, "pilotnet": {}, "komanda": {"hidden": 8, "features": 16},
         "features-lstm": {"features": 16, "hidden": 8}}
BRANCHES = {"cnn-lstm": {"encoder.appearance.0", "encoder.motion.0"}, "pilotnet": {"trunk"},
            "komanda": {"encoder.clip"}, "features-lstm": {"encoder"}}


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_saliency_for_every_registered_model(name):
    from steer.evaluate.explain import saliency
    from steer.models import MODELS, create_model

    assert set(BRANCHES) == set(MODELS)
    frames = np.random.default_rng(0).integers(0, 256, (5, 3, 66, 200), dtype=np.uint8)
    maps = saliency(create_model(name, targets=["steering"], **SMALL[name]), frames, chunk=3)
    assert set(maps) == BRANCHES[name]
    assert all(m.shape == (5, 66, 200) and m.min() >= 0 and m.max() == pytest.approx(1) for m in maps.values())


@pytest.fixture(scope="module")
def tiny_run(tiny_cache, tmp_path_factory):
    return train(_config(tiny_cache, tmp_path_factory.mktemp("run") / "run", window=4))


def test_diagnose_writes_the_health_of_a_checkpoint(tiny_run, capsys):
    from steer.cli import main

    assert "health" not in json.loads((tiny_run / "history.json").read_text())[0]  # off by default

    main(["diagnose", "--run", str(tiny_run), "--window", "8"])
    found = json.loads((tiny_run / "diagnose" / "diagnose.json").read_text())
    assert found["drives"] == json.loads((tiny_run / "run.json").read_text())["split"]["val"]
    assert found["windows"] == 5 and len(found["decay"]) == 8 and found["decay"][0] == 1.0
    assert 1 <= found["effective_memory"] <= 8 and len(found["effective_memory_per_window"]) == 5
    assert found["grad_norm"]["head"] > 0 and set(found["gate_saturation"]) == {"layer0/input", "layer0/forget",
                                                                                   "layer0/output"}
    assert (tiny_run / "diagnose" / "diagnose.png").stat().st_size > 1000
    assert "effective memory" in capsys.readouterr().out


def test_explain_writes_saliency_attribution_and_the_causal_check(tiny_run, tmp_path):
    import cv2

    from steer.cli import main

    hood = np.zeros((66, 200), np.uint8)
    hood[50:] = 255
    cv2.imwrite(str(tmp_path / "hood.png"), hood)
    drive = json.loads((tiny_run / "run.json").read_text())["split"]["test"][0]
    main(["explain", "--run", str(tiny_run), "--drive", drive, "--mask", str(tmp_path / "hood.png"),
          "--window", "6", "--out", str(tmp_path / "x")])
    found = json.loads((tmp_path / "x" / "explain.json").read_text())
    assert found["branches"] == ["encoder.appearance.0", "encoder.motion.0"] and found["ignored_pixels"] == 16 * 200
    shares = found["attribution_over_time"]["share_by_frames_back"]
    assert len(shares) == 6 and sum(shares) == pytest.approx(1)
    check = found["causal_check"]
    assert check["pixels_per_frame"] == round(0.05 * 50 * 200)
    assert all(c["salient"] > 0 and c["ratio"] == pytest.approx(c["salient"] / c["random"])
               for c in check["targets"].values())
    for name in ("saliency.mp4", "saliency.png", "time.png"):
        assert (tmp_path / "x" / name).stat().st_size > 1000


def test_masked_pixels_are_never_salient_nor_masked():
    from steer.evaluate.explain import causal_check, masked_frames
    from steer.models import create_model

    frames = np.random.default_rng(0).integers(0, 256, (3, 3, 66, 200), dtype=np.uint8)
    pick = np.zeros((3, 66, 200), bool)
    pick[1, 5, 7] = True
    masked = masked_frames(frames, pick)
    assert (masked[1, :, 5, 7] == 128).all() and (np.delete(masked.reshape(3, 3, -1), 5 * 200 + 7, 2)
                                                   == np.delete(frames.reshape(3, 3, -1), 5 * 200 + 7, 2)).all()
    ignore = np.zeros((66, 200), bool)
    ignore[:, 100:] = True  # the right half: left out, though it is the most salient
    salience = np.broadcast_to(np.linspace(0, 1, 200), (3, 66, 200))
    model = create_model("pilotnet", targets=["steering"])
    found = causal_check(model, frames, salience, 0.05, ignore)
    assert found["pixels_per_frame"] == round(0.05 * 66 * 100)


def test_pilotnet_attribution_lies_on_the_current_frame_only():
    from steer.evaluate.explain import attribution_over_time
    from steer.models import create_model

    frames = np.random.default_rng(0).integers(0, 256, (10, 3, 66, 200), dtype=np.uint8)
    shares = attribution_over_time(create_model("pilotnet", targets=["steering"]), frames, 0, window=4, samples=3)
    assert shares[0] == pytest.approx(1) and np.allclose(shares[1:], 0)


def test_memory_task_holds_the_speed_through_lost_runs_between_min_gap_and_max_gap():
    from steer.world.glitches import DROPPED
    from steer.world.memory import frames_unseen, memory_drive

    drive = memory_drive(3, frames=300, max_gap=7, size=(8, 8))
    speed, glitch = drive.signals["speed"].values, drive.signals["glitch"].values
    unseen = frames_unseen(glitch)
    assert unseen.max() == 7 and (unseen > 0).sum() == (glitch == DROPPED).sum() > 30
    dropped = np.flatnonzero(unseen)
    assert np.array_equal(speed[dropped], speed[dropped - unseen[dropped]])  # the speed of the last frame seen
    assert (drive.frames[dropped] == 0).all() and (drive.frames[unseen == 0] >= 40).all()
    levels = drive.frames[unseen == 0, 0, 0, 0].astype(float)
    assert np.corrcoef(levels, speed[unseen == 0])[0, 1] > 0.999  # brightness shows the speed
    assert np.array_equal(frames_unseen(np.array([1.0, 0, 1, 1, 0])), [1, 0, 1, 2, 0])
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, unseen > 0, 0])))[::2]  # lengths of the lost runs
    assert runs.min() >= 1 and runs.max() == 7
    longer = frames_unseen(memory_drive(3, frames=300, max_gap=7, size=(8, 8), min_gap=5).signals["glitch"].values)
    assert np.diff(np.flatnonzero(np.diff(np.r_[0, longer > 0, 0])))[::2][:-1].min() == 5  # the last may be cut


def test_memory_task_snow_varies_from_frame_to_frame_and_tells_nothing_of_the_speed():
    from steer.world.glitches import NOISE
    from steer.world.memory import frames_unseen, memory_drive

    black, snow = (memory_drive(4, frames=600, max_gap=9, size=(16, 16), lost=lost) for lost in ("black", "snow"))
    assert np.array_equal(black.signals["speed"].values, snow.signals["speed"].values)
    glitch = snow.signals["glitch"].values
    lost = frames_unseen(glitch) > 0
    assert (glitch[lost] == NOISE).all() and np.array_equal(snow.frames[~lost], black.frames[~lost])
    pixels = snow.frames[lost].reshape(lost.sum(), -1).astype(float)
    assert pixels.std(axis=1).min() > 20  # noise within a frame
    assert np.std(pixels.mean(axis=1)) > 40  # brightness flickers between frames
    assert abs(np.corrcoef(pixels.mean(axis=1), snow.signals["speed"].values[lost])[0, 1]) < 0.2
    with pytest.raises(ValueError, match="black, snow"):
        memory_drive(4, lost="fog")


@pytest.mark.parametrize("name,args", MODEL_VARIANTS)
def test_decay_curve_for_every_model_variant_leaves_weights_gradients_and_statistics_alone(name, args):
    from steer.models import create_model

    torch.manual_seed(0)
    model = create_model(name, targets=["steering", "speed"], frame_shape=(3, 66, 200), **args)
    if name == "features-lstm":
        inputs = torch.randn(2, 6, model.feature_width)
    else:
        inputs = torch.randint(0, 256, (2, 6, 3, 66, 200), dtype=torch.uint8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    curve = health.window_decay(model, inputs, torch.randn(2, 6, 2))
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # batch norm's statistics too
    if not hasattr(model, "core"):
        assert curve is None
    else:
        assert curve.shape == (6,) and curve[0] > 0 and np.isfinite(curve).all()
        assert "forward" not in model.core.__dict__  # the core's own forward again


def test_diagnose_and_explain_refuse_bad_input_naming_it(tiny_run, tmp_path, refuse):
    drive = json.loads((tiny_run / "run.json").read_text())["split"]["test"][0]
    (tmp_path / "hood.png").write_text("not an image")
    refuse(["explain", "--run", tiny_run, "--drive", "no-such-drive"], tiny_run, "no-such-drive")
    refuse(["explain", "--run", tiny_run, "--drive", drive, "--mask", tmp_path / "hood.png"], tiny_run,
           "--mask", "hood.png")
    refuse(["explain", "--run", tiny_run, "--drive", drive, "--fraction", "1.5"], tiny_run, "--fraction")
    refuse(["diagnose", "--run", tiny_run, "--window", "1"], tiny_run, "--window")
    refuse(["diagnose", "--run", tiny_run, "--window", "500"], tiny_run, "--window")


def test_view_draws_the_saliency_under_the_overlay(tiny_run, tmp_path):
    import cv2

    from steer.cli import main

    drive = json.loads((tiny_run / "run.json").read_text())["split"]["test"][0]
    main(["view", "--run", str(tiny_run), "--drive", drive, "--out", str(tmp_path / "plain.mp4")])
    main(["view", "--run", str(tiny_run), "--drive", drive, "--out", str(tmp_path / "heat.mp4"), "--saliency"])
    plain, heat = (cv2.imread(str(tmp_path / f"{n}.png")).astype(int) for n in ("plain", "heat"))
    assert plain.shape == heat.shape and np.abs(plain - heat).mean() > 10  # the jet colours over the frame
    assert (tmp_path / "heat.mp4").stat().st_size > 1000


def test_report_shows_diagnose_and_explain_where_they_were_written(tiny_run, tmp_path):
    from steer.cli import main

    drive = json.loads((tiny_run / "run.json").read_text())["split"]["test"][0]
    main(["diagnose", "--run", str(tiny_run), "--window", "8"])
    main(["explain", "--run", str(tiny_run), "--drive", drive, "--window", "4"])
    main(["evaluate", "--run", str(tiny_run)])
    page = (tiny_run / "report.html").read_text()
    assert "<h2>Inside the network</h2>" in page and "gradient health (steer diagnose)" in page
    assert f"saliency on {drive} (steer explain)" in page and page.count("data:image/png") == 5
    main(["evaluate", "--run", str(tiny_run), "--out", str(tmp_path / "elsewhere")])
    assert "Inside the network" not in (tmp_path / "elsewhere" / "report.html").read_text()
