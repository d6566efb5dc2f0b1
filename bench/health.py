"""Training frames/s with gradient health every 100 steps (`--health-every 100`) against the same run
without, interleaved in one process: each pair trains the same model on the same batches, one run with
health and one without, the order alternating from pair to pair; the ratio is of the medians over
every epoch of every pair. Goal: 0.95 or more.

    .venv/bin/python bench/health.py [--pairs 4 --epochs 2 --model cnn-lstm --device cpu --threads 2]

Frames are 64x64 (about the smallest the PilotNet-style convolutions take) and batches 2 x 8, so an
epoch of the 10 training drives' 2,000 frames holds 125 steps a CPU gets through in minutes; a health
check costs about one more forward and backward pass over a window, so the smaller the steps, the
larger its share: this is the hard case.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from steer.data.cache import FrameCache
from steer.train.config import TrainConfig
from steer.train.loop import train
from steer.world.camera import Camera
from steer.world.simulate import WorldConfig, generate_drives

DRIVES, BATCH = 12, 2  # 10 training drives of 200 frames in batches of 2 x 8: 125 steps an epoch


def rates(config: TrainConfig) -> list[float]:
    """frames/s of each epoch of one training run."""
    return [epoch["train_frames_per_s"] for epoch in json.loads((train(config) / "history.json").read_text())]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--model", default="cnn-lstm")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        world = WorldConfig(frames_per_drive=200, camera=Camera(height_px=64, width_px=64))
        FrameCache.create(Path(root, "cache"), generate_drives(world, DRIVES, seed=0, processes=2))
        found: dict[int, list[float]] = {0: [], args.every: []}
        for pair in range(args.pairs):
            for every in ((0, args.every) if pair % 2 == 0 else (args.every, 0)):
                config = TrainConfig(cache=str(Path(root, "cache")), out=str(Path(root, f"run-{pair}-{every}")),
                                     model=args.model, window=8, batch_size=BATCH, epochs=args.epochs,
                                     patience=args.epochs, split=[0.9, 0.05, 0.05], device=args.device,
                                     threads=args.threads, health_every=every)
                found[every] += rates(config)
    off, on = statistics.median(found[0]), statistics.median(found[args.every])
    print(f"{args.model} on {args.device} ({args.threads} threads), batch {BATCH} x window 8, {DRIVES} drives, "
          f"{args.pairs} pairs x {args.epochs} epochs:\n  without health {off:,.0f} frames/s, with health "
          f"every {args.every} steps {on:,.0f} frames/s: ratio {on / off:.3f}\n  per epoch: without "
          f"{[round(r) for r in found[0]]}, with {[round(r) for r in found[args.every]]}")


if __name__ == "__main__":
    main()
