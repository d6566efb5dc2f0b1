"""Frames/s of the synthetic world on one core: the compiled renderer beside the numpy renderer it replaced
(steer.world.camera_reference, the reference), and the whole simulation beside rendering alone.

    .venv/bin/python bench/world.py [--frames 400 --rounds 3]

Each round simulates a drive, then renders the same poses with one renderer and then the other, so a slow
spell of a shared machine falls on every figure alike. The simulation's time beyond its
rendering is the car, the driver, the glitches and the bookkeeping of a drive.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from steer.world.camera import Renderer, Scenery
from steer.world.camera_reference import ReferenceRenderer
from steer.world.road import generate_road
from steer.world.simulate import WorldConfig, simulate_drive


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    world = WorldConfig(frames_per_drive=args.frames)
    rng = np.random.default_rng(1)
    road, scenery = generate_road(rng, 3000), Scenery.random(rng)
    renderers = {"compiled": Renderer(world.camera), "reference": ReferenceRenderer(world.camera)}
    started = time.perf_counter()
    renderers["compiled"].render(road, road.x_m[80], road.y_m[80], road.heading_rad[80], 80, 0.0, scenery)
    first = time.perf_counter() - started  # numba loads its cached machine code (or compiles) once a process

    indices = [road.index_at(20 + 0.6 * i) for i in range(args.frames)]  # along the lane at 12 m/s
    poses = [(road.x_m[j], road.y_m[j] - 1.8, road.heading_rad[j], j, i / 20) for i, j in enumerate(indices)]
    spent = {"simulation": 0.0, "compiled": 0.0, "reference": 0.0}
    for round_ in range(args.rounds):
        started = time.perf_counter()
        simulate_drive(world, seed=round_ + 1)
        spent["simulation"] += time.perf_counter() - started
        for name, renderer in renderers.items():
            started = time.perf_counter()
            for pose in poses:
                renderer.render(road, *pose, scenery)
            spent[name] += time.perf_counter() - started
    rate = {name: args.rounds * args.frames / seconds for name, seconds in spent.items()}
    size = f"{world.camera.height_px}x{world.camera.width_px}"
    print(f"world at {size}, one core, {args.rounds} rounds of {args.frames} frames interleaved (frames/s):")
    print(f"  rendering: compiled {rate['compiled']:,.0f}, reference (numpy) {rate['reference']:,.0f}; "
          f"ratio {rate['compiled'] / rate['reference']:.2f}")
    print(f"  simulated: {rate['simulation']:,.0f} ({rate['simulation'] * 60:,.0f} per minute); "
          f"simulation / rendering {rate['simulation'] / rate['compiled']:.2f}: the car, driver, glitches and "
          f"bookkeeping {1 - rate['simulation'] / rate['compiled']:.0%} of the simulation's time")
    print(f"  first frame of a process: {first:.2f} s (numba's cached machine code loaded, or compiled)")


if __name__ == "__main__":
    main()
