"""Per-frame latency of streaming (`Pilot.step`, state carried) on one CPU thread, in PyTorch, ONNX
Runtime and ONNX Runtime on the static int8 graph (`steer export --int8`, calibrated here on the
first 100 frames), beside the same model's per-frame work without memory (its encoder and head on one
frame, PyTorch), measured in the same run.

    .venv/bin/python bench/stream.py [--frames 300]

`ratio` (PyTorch step over no-memory work) says what carrying the state costs; issue 6 asks for at
most 1.1x. `int8 x` is the float graph's median over the int8 graph's: issue 12 asks for 1.3x.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from steer.drive.export import export_onnx, quantise_int8
from steer.drive.pilot import Pilot
from steer.models import MODELS, create_model
from steer.models.layout import for_inference
from steer.train.checkpoint import save_checkpoint

TARGETS = ["steering", "speed", "throttle"]


def _stateless_step(model) -> callable:
    """The model's per-frame work without memory: the same forward on one frame from no state (no
    previous frame, no clip history) with the recurrent core doing nothing (zeros out, the state it was
    given back): encoder and head only, folded and laid out as `Pilot` steps them (for_inference)."""
    alone = for_inference(model)
    if hasattr(alone, "core"):
        width = alone.core.width
        alone.core.forward = lambda x, state: (x.new_zeros(*x.shape[:2], width), state or ())
    return lambda x: alone(x[None], None)


def _times_ms(fns, inputs) -> list[np.ndarray]:
    """Per-call times of each function, called in turn on every input, so that all see the machine
    in the same state (interleaving halves the run-to-run scatter of the ratios)."""
    out = [[] for _ in fns]
    for x in inputs:
        for fn, times in zip(fns, out):
            started = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - started) * 1e3)
    return [np.array(t[10:]) for t in out]  # the first calls warm caches up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, 66, 200, 3), dtype=np.uint8)
    tensors = [torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1)))[None] for f in frames]
    columns = ["torch", "onnx", "int8", "no-memory"]
    print(f"{'model':<15}" + "".join(f"{c + ' med':>15}{'p99':>7}" for c in columns) + f"{'ratio':>7}{'int8 x':>8}"
          "   (ms per frame, 1 thread)")
    for name in sorted(MODELS):
        model = create_model(name, targets=TARGETS).eval()
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(Path(folder) / "ckpt", model)
            graph = export_onnx(model, Path(folder) / "step.onnx")
            quantised = quantise_int8(model, graph, [frames[:100].transpose(0, 3, 1, 2)])
            pilots = [Pilot(Path(folder) / "ckpt"), Pilot(Path(folder) / "ckpt", onnx=graph, onnx_threads=1),
                      Pilot(Path(folder) / "ckpt", onnx=quantised, onnx_threads=1)]
        alone = _stateless_step(model)
        steps = [lambda item, p=p: p.step(item[1], 0.05 * item[0]) for p in pilots]
        with torch.no_grad():
            times = _times_ms([*steps, lambda item: alone(tensors[item[0]])], list(enumerate(frames)))
        medians = [np.median(t) for t in times]
        print(f"{name:<15}" + "".join(f"{m:>15.2f}{np.percentile(t, 99):>7.2f}" for m, t in zip(medians, times))
              + f"{medians[0] / medians[3]:>7.2f}{medians[1] / medians[2]:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
