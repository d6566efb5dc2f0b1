"""Precision `auto`: bf16 where the device does it fast, fp32 elsewhere, recorded; a bf16 run deploys in fp32."""
import csv
import json

import numpy as np
import pytest
import torch

from steer.models import MODELS
from steer.train import precision
from steer.train.config import TrainConfig
from steer.train.loop import train


def _cpu(monkeypatch, **flags):
    """Simulate a CPU with these instruction-set flags."""
    monkeypatch.setattr(torch._C._cpu, "_get_cpu_capability", lambda: {"avx512_f": True, **flags})


def test_auto_is_fp32_on_a_cpu_without_fast_bf16_and_bf16_with_it(monkeypatch):
    _cpu(monkeypatch, amx_bf16=False, avx512_bf16=False)
    assert precision.resolve_precision("auto", "cpu") == ("fp32", "auto: this CPU has no AMX or AVX512-BF16")
    assert precision.resolve_precision("bf16", "cpu")[0] == "bf16"  # asked for, it is what it gets
    _cpu(monkeypatch, amx_bf16=True, avx512_bf16=True)
    assert precision.resolve_precision("auto", "cpu") == ("bf16", "auto: this CPU has amx_bf16, avx512_bf16")
    assert precision.resolve_precision("fp32", "cpu")[0] == "fp32"
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, not 'fp16'"):
        precision.resolve_precision("fp16", "cpu")


def test_auto_asks_the_model_on_a_cpu_where_bf16_does_not_speed_every_network_up(monkeypatch):
    _cpu(monkeypatch, amx_bf16=False, avx512_bf16=True)
    picked = {name: precision.resolve_precision("auto", "cpu", name) for name in MODELS}
    assert {name: p for name, (p, _) in picked.items()} == {
        "pilotnet": "bf16", "cnn-lstm": "bf16", "komanda": "fp32", "features-lstm": "bf16"}
    assert picked["komanda"][1] == ("auto: this CPU has avx512_bf16, but komanda trains faster at fp32 on a CPU "
                                    "without amx_bf16")
    assert precision.resolve_precision("bf16", "cpu", "komanda")[0] == "bf16"  # asked for, it is what it gets
    _cpu(monkeypatch, amx_bf16=True, avx512_bf16=True)  # AMX tiles do speed its 3-d convolutions up
    picked = {name: precision.resolve_precision("auto", "cpu", name)[0] for name in MODELS}
    assert picked == dict.fromkeys(MODELS, "bf16")
    _cpu(monkeypatch, amx_bf16=False, avx512_bf16=False)
    assert precision.resolve_precision("auto", "cpu", "pilotnet")[0] == "fp32"


def test_without_torchs_cpuinfo_the_flags_come_from_proc_cpuinfo(monkeypatch, tmp_path):
    monkeypatch.delattr(torch._C._cpu, "_get_cpu_capability")
    monkeypatch.setattr(precision, "CPUINFO", tmp_path / "cpuinfo")
    (tmp_path / "cpuinfo").write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert precision.resolve_precision("auto", "cpu")[0] == "fp32"
    (tmp_path / "cpuinfo").write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert precision.resolve_precision("auto", "cpu") == ("bf16", "auto: this CPU has amx_bf16, avx512_bf16")


def test_the_machine_record_names_the_cpu_its_bf16_flags_threads_and_precision(monkeypatch, tmp_path):
    from steer import provenance

    monkeypatch.setattr(provenance, "CPUINFO", tmp_path / "cpuinfo")
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
                                      "flags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16\n\n"
                                      "processor\t: 1\nmodel name\t: other\n")
    record = provenance.machine({"cnn-lstm": "bf16"})
    assert record == {"cpu": "Intel(R) Xeon(R) Platinum 8480+", "amx_bf16": True, "avx512_bf16": True,
                      "torch_threads": torch.get_num_threads(), "precision": {"cnn-lstm": "bf16"}}
    assert provenance.machine_line(record) == (
        f"measured on Intel(R) Xeon(R) Platinum 8480+ (amx_bf16 yes, avx512_bf16 yes), "
        f"{torch.get_num_threads()} torch threads, precision cnn-lstm bf16")


def _config(cache, out, **changes) -> TrainConfig:
    return TrainConfig(**{"cache": str(cache.root), "out": str(out), "model": "cnn-lstm", "window": 5,
                          "batch_size": 2, "epochs": 1, "split": [0.5, 0.25, 0.25], "seed": 3,
                          "model_args": {"hidden": 8, "features": 16}, **changes})


def test_the_resolved_choice_is_printed_and_recorded_and_auto_stays_auto(tiny_cache, tmp_path, monkeypatch, capsys):
    _cpu(monkeypatch, amx_bf16=False, avx512_bf16=False)
    info = json.loads((train(_config(tiny_cache, tmp_path / "run")) / "run.json").read_text())
    assert info["precision"] == "fp32" and info["config"]["precision"] == "auto"  # resolved again on resume
    assert "precision fp32 (auto: this CPU has no AMX or AVX512-BF16)" in capsys.readouterr().out


def test_a_bf16_run_streams_in_fp32_and_onnx_as_its_own_evaluation_predicted(tiny_cache, tmp_path):
    from steer.drive.export import export_onnx
    from steer.drive.pilot import Pilot
    from steer.evaluate.evaluate import evaluate_run
    from steer.models import load_model

    run = train(_config(tiny_cache, tmp_path / "run", precision="bf16", lr=0.01, epochs=2))  # predictions move
    metrics = evaluate_run(run, out=tmp_path / "eval")
    assert metrics["precision"] == "bf16" and json.loads((run / "run.json").read_text())["precision"] == "bf16"
    with (tmp_path / "eval" / "predictions.csv").open() as f:
        evaluated = np.array([[float(r["pred_steering"]), float(r["pred_speed"]), float(r["pred_throttle"])]
                              for r in csv.DictReader(f)])
    drive, = tiny_cache.by_name(metrics["drives"])
    graph = export_onnx(load_model(run / "best"), tmp_path / "step.onnx")
    std = load_model(run / "best").target_std.numpy()
    for backend in ({}, {"onnx": graph}):
        pilot = Pilot(run / "best", **backend)
        streamed = np.array([list(pilot.step(np.array(f).transpose(1, 2, 0), t).values())
                             for f, t in zip(drive.frames, drive.timestamps_s)])
        # bf16 keeps 8 bits of mantissa: over the drive, fp32 streaming stays within 5% of each target's std of
        # it in RMS (measured over training seeds 3-7: 0.5-2.5%; single frames up to 12%, so no frame-wise
        # bound); a wrong state, crop or normalisation is off by the order of the std itself
        assert np.all(np.sqrt(np.mean((streamed - evaluated) ** 2, axis=0)) < 0.05 * std), backend
