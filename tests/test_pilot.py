import csv

import cv2
import numpy as np
import pytest
import torch
from conftest import MODEL_VARIANTS

from steer.drive.pilot import Pilot
from steer.models import MODELS, create_model
from steer.models.sequence import predict_sequence
from steer.train.checkpoint import save_checkpoint


def _saved(tmp_path, name="cnn-lstm", **kwargs):
    """A freshly initialised model with target statistics, and its checkpoint folder."""
    torch.manual_seed(0)
    model = create_model(name, targets=["steering", "speed"], **kwargs)
    model.set_target_stats(torch.tensor([0.0, 12.0]), torch.tensor([0.2, 4.0]))
    save_checkpoint(tmp_path / "ckpt", model)
    return model, tmp_path / "ckpt"


@pytest.mark.parametrize("name,kwargs", MODEL_VARIANTS)
def test_streaming_equals_offline_predictions(tiny_cache, tmp_path, name, kwargs):
    model, _ = _saved(tmp_path, name, **kwargs)
    drive = tiny_cache.drives[0]
    offline = predict_sequence(model, drive.frames)
    pilot = Pilot(tmp_path / "ckpt")
    streamed = [list(pilot.step(np.array(f).transpose(1, 2, 0), t).values())
                for f, t in zip(drive.frames, drive.timestamps_s)]
    assert np.allclose(streamed, offline, atol=1e-4)


def test_state_resets_at_a_time_gap(tiny_cache, tmp_path):
    save_checkpoint(tmp_path / "ckpt", create_model("cnn-lstm", targets=["steering"]))
    frames = [np.array(f).transpose(1, 2, 0) for f in tiny_cache.drives[0].frames[:6]]
    pilot, carried = Pilot(tmp_path / "ckpt", max_gap_s=1.0), Pilot(tmp_path / "ckpt", max_gap_s=1.0)
    for i, f in enumerate(frames[:5]):
        pilot.step(f, i * 0.05)
        carried.step(f, i * 0.05)
    after_gap = pilot.step(frames[5], 10.0)
    fresh = Pilot(tmp_path / "ckpt").step(frames[5], 0.0)
    assert after_gap == pytest.approx(fresh)
    without_gap = carried.step(frames[5], 0.25)  # the state of the five frames before is carried
    assert max(abs(without_gap[t] - fresh[t]) for t in fresh) > 1e-4


def test_run_over_a_drive_writes_predictions_with_latency(tiny_cache, tmp_path):
    from steer.cli import main

    main(["run", "--checkpoint", str(_saved(tmp_path)[1]), "--cache", str(tiny_cache.root),
          "--drive", tiny_cache.drives[1].name, "--out", str(tmp_path / "p.csv")])
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == len(tiny_cache.drives[1]) and float(rows[0]["latency_ms"]) > 0
    assert set(rows[0]) == {"drive", "frame", "time_s", "steering", "speed", "latency_ms"}


def test_truncated_video_yields_every_decodable_frame_and_a_warning(tmp_path):
    from steer.drive.run import run, video_frames

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 20, (200, 66))
    for i in range(30):
        writer.write(np.full((66, 200, 3), 8 * i, np.uint8))
    writer.release()
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.6)])  # cut the tail off mid-stream
    with pytest.warns(UserWarning, match="breaks off after frame"):
        summary = run(Pilot(_saved(tmp_path)[1]), video_frames(video), tmp_path / "p.csv")
    assert 5 < summary["frames"] < 30


def test_realtime_counts_deadline_misses(tiny_cache, tmp_path):
    from steer.drive.run import drive_frames, run

    pilot = Pilot(_saved(tmp_path)[1])
    summary = run(pilot, drive_frames(tiny_cache.root, tiny_cache.drives[0].name), tmp_path / "p.csv",
                  realtime_fps=100_000, max_frames=5)  # a 10 us period: every step overruns it
    assert summary["frames"] == 5 and summary["deadline_misses"] == 5


ONNX_VARIANTS = [(name, {}) for name in sorted(MODELS)] + [("cnn-lstm", {"cell": "gru", "layers": 2}),
                                                          ("komanda", {"feedback": True})]


@pytest.mark.parametrize("name,kwargs", ONNX_VARIANTS)
def test_onnx_runtime_equals_pytorch_over_500_frames_with_the_state_carried(tiny_cache, tmp_path, name, kwargs):
    from steer.drive.export import export_onnx

    model, _ = _saved(tmp_path, name, **kwargs)
    graph = export_onnx(model, tmp_path / "step.onnx")
    frames = np.concatenate([np.array(d.frames) for d in tiny_cache.drives] * 4)[:500].transpose(0, 2, 3, 1)
    torch_pilot, onnx_pilot = Pilot(tmp_path / "ckpt"), Pilot(tmp_path / "ckpt", onnx=graph)
    for i, frame in enumerate(frames):
        a, b = torch_pilot.step(frame, i * 0.05), onnx_pilot.step(frame, i * 0.05)
        assert np.allclose(list(a.values()), list(b.values()), atol=1e-4), f"frame {i}"


def _lit_frames(n: int, seed: int) -> np.ndarray:
    """Frames (n, 3, 66, 200) of random brightness with noise: inputs an untrained model's outputs follow."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0, 255, (n, 1, 1, 1))
    return np.clip(levels + rng.normal(0, 20, (n, 3, 66, 200)), 0, 255).astype(np.uint8)


def test_static_int8_streams_close_to_float_with_the_recurrent_core_left_in_float(tmp_path):
    import onnx

    from steer.drive.export import export_onnx, quantise_int8

    model, ckpt = _saved(tmp_path)
    graph = export_onnx(model, tmp_path / "step.onnx")
    quantised = quantise_int8(model, graph, [_lit_frames(40, seed=1)])
    assert quantised.name == "step.int8.onnx" and quantised.stat().st_size < graph.stat().st_size
    nodes = onnx.load(str(quantised)).graph.node
    made_by = {out: n.op_type for n in nodes for out in n.output}
    dense = [n for n in nodes if n.op_type in ("Conv", "Gemm", "MatMul")]
    int8 = {n.name for n in dense if made_by.get(n.input[1]) == "DequantizeLinear"}
    core = {n.name for n in dense if any(i.startswith("model.core.") for i in n.input)}
    assert core and core.isdisjoint(int8) and len(int8) == len(dense) - len(core)
    runs = []
    for path in (graph, quantised):
        pilot = Pilot(ckpt, onnx=path)
        runs.append(np.array([list(pilot.step(f.transpose(1, 2, 0), 0.05 * i).values())
                              for i, f in enumerate(_lit_frames(40, seed=2))]))  # frames not calibrated on
    # int8 follows float frame by frame, each prediction within 1% of the targets' std (0.2 rad, 4 m/s)
    assert all(np.corrcoef(runs[0][:, k], runs[1][:, k])[0, 1] > 0.98 for k in range(2))
    assert np.all(np.abs(runs[1] - runs[0]) < 0.01 * np.array([0.2, 4.0]))


def test_export_int8_refuses_without_frames_to_calibrate_on_and_writes_nothing(tmp_path, refuse):
    _saved(tmp_path)  # a checkpoint on its own: no run.json beside it names a cache or training drives
    refuse(["export", "--checkpoint", tmp_path / "ckpt", "--out", tmp_path / "step.onnx", "--int8"], tmp_path,
           "--cache", "--drive", str(tmp_path / "ckpt"))
    refuse(["export", "--checkpoint", tmp_path / "ckpt", "--out", tmp_path / "step.onnx", "--drive", "x"], tmp_path,
           "--int8")
