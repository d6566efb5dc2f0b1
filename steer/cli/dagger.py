"""`steer dagger`: a run's model drives training-world roads, the expert labels what it saw, it trains
again; round after round (steer/drive/dagger.py)."""
from __future__ import annotations

import argparse

HELP = "DAgger: drive the run's model, label its own states with the world's expert, retrain, repeat"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from steer.drive.dagger import DaggerConfig

    d = DaggerConfig()
    p.add_argument("--run", required=True, help="a trained run folder on a world cache (its best/ starts round 1)")
    p.add_argument("--out", required=True, help="folder for each round's run (round-N/) and dagger.json")
    p.add_argument("--rounds", type=int, default=d.rounds)
    p.add_argument("--roads", type=int, default=d.roads, help="roads driven per round")
    p.add_argument("--seconds", type=float, default=d.seconds, help="per road")
    p.add_argument("--beta", type=float, default=d.beta,
                   help="the expert's share of the wheel in round r is BETA**r (0: the model alone)")
    p.add_argument("--mode", choices=["fine-tune", "scratch"], default=d.mode,
                   help="each round fine-tunes the last checkpoint, or trains a fresh model on all data so far")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs per round (0: the run's own)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="roads are this world seed's drives, never the held-out (1000) or validation (3000) ones")
    p.add_argument("--val-roads", type=int, default=d.val_roads, help="validation roads scored after each round")
    p.add_argument("--val-seconds", type=float, default=d.val_seconds)
    p.add_argument("--processes", type=int, default=d.processes, help="roads driven at once, one per core")


def run(args: argparse.Namespace) -> None:
    from steer.drive.dagger import DaggerConfig, dagger

    config = DaggerConfig(args.rounds, args.roads, args.seconds, args.beta, args.mode, args.epochs, args.seed,
                          args.val_roads, args.val_seconds, args.processes)
    dagger(args.run, args.out, config)
    print(f"wrote {args.out}/dagger.json")
