"""`steer demo`: the main job on the synthetic world, no download."""
from __future__ import annotations

import argparse

HELP = "synthetic world -> pilotnet and cnn-lstm -> comparison"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--drives", type=int, default=96)
    p.add_argument("--frames", type=int, default=200, help="frames per drive")
    p.add_argument("--epochs", type=int, help="epochs for every model (default: each model's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loop-roads", type=int, default=4, help="held-out roads both models then drive in closed loop")
    p.add_argument("--loop-seconds", type=float, default=30.0, help="driven per road")
    p.add_argument("--dagger-rounds", type=int, default=1, help="DAgger rounds per model after training (0: none)")
    p.add_argument("--dagger-roads", type=int, default=20, help="roads of 20 s each DAgger round drives")


def run(args: argparse.Namespace) -> None:
    from steer.demo import run_demo
    from steer.errors import SteerError

    if args.dagger_rounds < 0 or args.dagger_roads < 1:
        raise SteerError(f"--dagger-rounds {args.dagger_rounds} (0 or more), --dagger-roads {args.dagger_roads} "
                         "(1 or more): one of them is out of range")
    run_demo(args.out, drives=args.drives, frames=args.frames, epochs=args.epochs, seed=args.seed,
             loop_roads=args.loop_roads, loop_seconds=args.loop_seconds,
             dagger={"rounds": args.dagger_rounds, "roads": args.dagger_roads})
