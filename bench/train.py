"""Training frames/s of each model reading the frame cache, beside the same model on a batch already
in memory (the limit: no data path at all), measured in the same run.

    .venv/bin/python bench/train.py [--steps 30] [--threads 2]
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
from steer.train.batches import BatchLoader
from steer.world.simulate import WorldConfig, generate_drives

TARGETS = ["steering", "speed", "throttle"]
SHAPES = {"pilotnet": (32, 1), "cnn-lstm": (16, 8)}  # (batch, window), as the demo trains them


def _step(model, optimizer, frames, targets) -> None:
    preds, _ = model(frames, None)
    loss = ((preds - model.normalise(targets)) ** 2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def _rate(model, batches, load, steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    _step(model, optimizer, *load(batches[0]))  # warm-up
    started = time.perf_counter()
    frames = 0
    for batch in batches[1:steps + 1]:
        x, y = load(batch)
        _step(model, optimizer, x, y)
        frames += x.shape[0] * x.shape[1]
    return frames / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        cache = FrameCache.create(root, generate_drives(WorldConfig(frames_per_drive=200), 8, seed=0, processes=2))
        print(f"{'model':<10}{'batch x window':>16}{'from cache':>14}{'in memory':>14}{'ratio':>8}   (frames/s, "
              f"{args.threads} threads)")
        for name in sorted(MODELS):
            batch, window = SHAPES[name]
            loader = BatchLoader([d.frames for d in cache.drives], [d.targets(TARGETS) for d in cache.drives], window)
            batches = stateless_batches([len(d) for d in cache.drives], window, window, batch,
                                        np.random.default_rng(0))
            from_cache = lambda b: loader.load(b)[:2]  # noqa: E731
            fixed = tuple(t.clone() for t in from_cache(batches[0]))
            torch.manual_seed(0)
            cached = _rate(create_model(name, targets=TARGETS), batches, from_cache, args.steps)
            torch.manual_seed(0)
            memory = _rate(create_model(name, targets=TARGETS), batches, lambda b: fixed, args.steps)
            print(f"{name:<10}{f'{batch} x {window}':>16}{cached:>14,.0f}{memory:>14,.0f}{cached / memory:>8.2f}")


if __name__ == "__main__":
    main()
