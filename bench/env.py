"""`steer drive --env`'s closed loop, steps/s on one core (one thread), beside the env stepping alone with a
fixed action in the same run: the loop adds the expert (for the pedals), the crop and resize, the model's
streaming step and the action's conversion.

    SDL_VIDEODRIVER=dummy .venv/bin/python bench/env.py [--spec examples/envs/carracing.json --steps 300 --repeats 3]

Needs the spec's env (CarRacing-v3: pip install -e '.[gym]'). Untrained pilotnet and cnn-lstm at the cache
size the example records (84x96); the median over `--repeats`.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from steer.drive.pilot import Pilot
from steer.envs.adapter import EnvAdapter
from steer.envs.loop import ModelDriver, drive_episode
from steer.envs.spec import load_spec
from steer.models import create_model
from steer.train.checkpoint import save_checkpoint

SEED = 100


def _alone_s(adapter: EnvAdapter, steps: int) -> float:
    adapter.reset(SEED)
    action = adapter.action(throttle=0.3)
    started = time.perf_counter()
    for _ in range(steps):
        adapter.step(action)
    return time.perf_counter() - started


def _loop_s(adapter: EnvAdapter, checkpoint: Path, steps: int) -> float:
    driver = ModelDriver(Pilot(checkpoint, adapter.spec.crop))
    started = time.perf_counter()
    drive_episode(adapter, SEED, driver, max_steps=steps)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default=str(Path(__file__).parents[1] / "examples" / "envs" / "carracing.json"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="84x96")
    args = parser.parse_args()
    torch.set_num_threads(1)
    adapter = EnvAdapter(load_spec(args.spec, "--spec"))
    size = tuple(int(v) for v in args.size.split("x"))
    print(f"{'model':<10}{'loop':>10}{'env alone':>11}{'ratio':>8}   (steps/s, one core, {args.steps} steps of "
          f"{adapter.spec.name}, model at {size[0]}x{size[1]}; median of {args.repeats})")
    for name in ("pilotnet", "cnn-lstm"):
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = Path(folder) / "ckpt"
            save_checkpoint(checkpoint, create_model(name, targets=["steering", "throttle", "brake"],
                                                     frame_shape=(3, *size)))
            loop, alone = zip(*[(_loop_s(adapter, checkpoint, args.steps), _alone_s(adapter, args.steps))
                                for _ in range(args.repeats)])
        print(f"{name:<10}{args.steps / np.median(loop):>10,.0f}{args.steps / np.median(alone):>11,.0f}"
              f"{np.median(np.array(alone) / np.array(loop)):>8.2f}")
    adapter.close()


if __name__ == "__main__":
    main()
