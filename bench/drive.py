"""Closed-loop frames/s on one core (`steer drive`'s loop: render, glitch, Pilot step, wheel-rate limit,
world driver for speed, physics, take-over checks) beside its limit measured in the same run: rendering
the same number of frames along the lane plus the model's streaming step on each, and nothing else.
Beside them, one DAgger road (`steer dagger`'s work per road: the same loop with the frames kept and the
expert's wheel mixed in, cut at take-overs into labelled drives and written into a frame cache) against
the same limit.

    .venv/bin/python bench/drive.py [--frames 300 --repeats 3]

Issue 13 asks for a ratio of at least 0.8. Each model is timed in turn with its limit, `--repeats` times,
and the median of the ratios is reported.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from steer.data.cache import write_drives
from steer.drive.closed_loop import LoopConfig, ModelHands, drive_road
from steer.drive.dagger import road_drives
from steer.drive.pilot import Pilot
from steer.models import create_model
from steer.train.checkpoint import save_checkpoint
from steer.world.simulate import WorldConfig, start_world

TARGETS = ["steering", "speed", "throttle"]
SEED = 100_003_000  # world seed 1000's first road, as `steer drive` drives it


def _loop_s(world: WorldConfig, checkpoint: Path) -> float:
    started = time.perf_counter()
    drive_road(world, SEED, ModelHands(Pilot(checkpoint)), LoopConfig())
    return time.perf_counter() - started


def _dagger_s(world: WorldConfig, checkpoint: Path, cache: Path) -> float:
    started = time.perf_counter()
    run = drive_road(world, SEED, ModelHands(Pilot(checkpoint)), LoopConfig(), keep_frames=True, expert_share=0.5)
    write_drives(cache, road_drives(run, f"dagger-{time.perf_counter_ns()}", {"source": "dagger"}))
    return time.perf_counter() - started


def _limit_s(world: WorldConfig, checkpoint: Path) -> float:
    """Render each frame along the lane centre at the driver's speed, and step the model on it."""
    w, pilot = start_world(world, SEED), Pilot(checkpoint)
    dt = 1 / world.fps
    started = time.perf_counter()
    for i in range(world.frames_per_drive):
        index = w.road.index_at(20 + w.state.speed_mps * dt * i)
        h = w.road.heading_rad[index]
        x = w.road.x_m[index] - world.driver.lane_offset_m * np.sin(h)
        y = w.road.y_m[index] + world.driver.lane_offset_m * np.cos(h)
        pilot.step(w.renderer.render(w.road, x, y, h, index, i * dt, w.scenery), i * dt)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    world = WorldConfig(frames_per_drive=args.frames)
    print(f"{'model':<10}{'loop':>10}{'dagger':>10}{'limit':>10}{'ratio':>8}{'dagger':>8}   (frames/s, one core, "
          f"{args.frames} frames at {world.camera.height_px}x{world.camera.width_px}; median of {args.repeats})")
    for name in ("pilotnet", "cnn-lstm"):
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = Path(folder) / "ckpt"
            save_checkpoint(checkpoint, create_model(name, targets=TARGETS))
            loop, dagger, limit = zip(*[(_loop_s(world, checkpoint), _dagger_s(world, checkpoint, Path(folder) / "c"),
                                         _limit_s(world, checkpoint)) for _ in range(args.repeats)])
        ratios, dagger_ratios = np.array(limit) / np.array(loop), np.array(limit) / np.array(dagger)
        print(f"{name:<10}{args.frames / np.median(loop):>10,.0f}{args.frames / np.median(dagger):>10,.0f}"
              f"{args.frames / np.median(limit):>10,.0f}{np.median(ratios):>8.2f}{np.median(dagger_ratios):>8.2f}")


if __name__ == "__main__":
    main()
