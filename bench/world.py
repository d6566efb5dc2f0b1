"""Frames/s of the synthetic world on one core: the whole simulation beside its rendering alone.

    .venv/bin/python bench/world.py [--frames 400]

The ratio says how much of the time the car, the driver and the glitches cost on top of drawing.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from steer.world.camera import Renderer, Scenery
from steer.world.road import generate_road
from steer.world.simulate import WorldConfig, simulate_drive


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=400)
    args = parser.parse_args()
    world = WorldConfig(frames_per_drive=args.frames)

    started = time.perf_counter()
    simulate_drive(world, seed=1)
    whole = args.frames / (time.perf_counter() - started)

    rng = np.random.default_rng(1)
    road, scenery, renderer = generate_road(rng, 3000), Scenery.random(rng), Renderer(world.camera)
    started = time.perf_counter()
    for i in range(args.frames):
        index = road.index_at(20 + 0.6 * i)
        renderer.render(road, road.x_m[index], road.y_m[index] - 1.8, road.heading_rad[index], index, i / 20, scenery)
    render_only = args.frames / (time.perf_counter() - started)

    size = f"{world.camera.height_px}x{world.camera.width_px}"
    print(f"world at {size}, one core: {whole:,.0f} frames/s simulated ({whole * 60:,.0f} per minute), "
          f"{render_only:,.0f} frames/s rendering alone; ratio {whole / render_only:.2f}")


if __name__ == "__main__":
    main()
