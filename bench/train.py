"""Training frames/s of each model through the real data path, beside the same model on a batch already
in memory (the limit: no data path at all), measured in the same run; on the CPU and, where one is
present, on the GPU.

    .venv/bin/python bench/train.py [--steps 30] [--threads 2]

The data path is what `steer train` uses: batches gathered from the memory-mapped cache (frames, or
for features-lstm the stored features) into a reused buffer and copied to the device, or, on a GPU
the inputs fit on, gathered there. On the GPU
the step runs with bf16 autocast and channels-last convolutions, as `--precision bf16
--channels-last` train.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from steer.data.cache import FrameCache
from steer.data.windows import stateless_batches
from steer.models import MODELS, create_model
from steer.train.batches import BatchLoader, DeviceBatchLoader
from steer.train.loop import to_channels_last
from steer.world.simulate import WorldConfig, generate_drives

TARGETS = ["steering", "speed", "throttle"]
SHAPES = {"pilotnet": (32, 1)}  # (batch, window); temporal models (16, 8), as the demo trains them


def _step(model, optimizer, frames, targets, bf16: bool) -> None:
    with torch.autocast(frames.device.type, torch.bfloat16, enabled=bf16):
        preds, _ = model(frames, None)
    loss = ((preds.float() - model.normalise(targets)) ** 2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def _rate(model, batches, load, steps: int, device: str) -> float:
    bf16 = device == "cuda"
    if bf16:
        to_channels_last(model)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    for batch in batches[:3]:  # warm-up: allocator, cuDNN's choice of kernels
        _step(model, optimizer, *load(batch), bf16)
    _sync(device)
    started = time.perf_counter()
    frames = 0
    for batch in batches[3:steps + 3]:
        x, y = load(batch)
        _step(model, optimizer, x, y, bf16)
        frames += x.shape[0] * x.shape[1]
    _sync(device)
    return frames / (time.perf_counter() - started)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _measure(name: str, cache: FrameCache, device: str, steps: int) -> tuple[str, float, float]:
    batch, window = SHAPES.get(name, (16, 8))
    model = create_model(name, targets=TARGETS)  # its inputs: frames, or features stored beside the cache
    inputs, targets = [model.inputs_of(d) for d in cache.drives], [d.targets(TARGETS) for d in cache.drives]
    loader = (DeviceBatchLoader(inputs, targets, window, device) if device == "cuda"
              else BatchLoader(inputs, targets, window))
    batches = stateless_batches([len(d) for d in cache.drives], window, window, batch, np.random.default_rng(0))
    from_cache = lambda b: tuple(t.to(device) for t in loader.load(b)[:2])  # noqa: E731
    fixed = tuple(t.clone() for t in from_cache(batches[0]))
    rates = []
    for load in (from_cache, lambda b: fixed):
        torch.manual_seed(0)
        rates.append(_rate(create_model(name, targets=TARGETS).to(device), batches, load, steps, device))
    return f"{batch} x {window}", *rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as root:
        cache = FrameCache.create(root, generate_drives(WorldConfig(frames_per_drive=200), 8, seed=0, processes=2))
        print(f"{'model':<14}{'device':>8}{'batch x window':>16}{'data path':>12}{'in memory':>12}{'ratio':>8}"
              f"   (frames/s; CPU: {args.threads} threads"
              + (f"; GPU: {torch.cuda.get_device_name()}, bf16, channels-last)" if len(devices) > 1 else ")"))
        for device in devices:
            for name in sorted(MODELS):
                shape, cached, memory = _measure(name, cache, device, args.steps)
                print(f"{name:<14}{device:>8}{shape:>16}{cached:>12,.0f}{memory:>12,.0f}{cached / memory:>8.2f}")


if __name__ == "__main__":
    main()
