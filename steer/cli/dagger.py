"""`steer dagger`: a run's model drives training-world roads (or, with --env, an environment's episodes), the
expert labels what it saw, it trains again; round after round (steer/drive/dagger.py, steer/envs/dagger.py)."""
from __future__ import annotations

import argparse

from steer.cli.common import limits
from steer.cli.record import add_env_options

HELP = "DAgger: drive the run's model, label its own states with the expert, retrain, repeat"


def seed_list(text: str) -> list[int]:
    """Seeds as `100-109` or `3,5,8` (or both: `1,100-109`)."""
    found = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, _, last = part.partition("-")
        found += list(range(int(first), int(last or first) + 1))
    return found


# The options of DaggerConfig and EnvDaggerConfig. Those not given are None and take the config's default,
# read there when the verb runs: parsing the command line of any verb then needs no torch (1 s to import).
WORLD = ("rounds", "beta", "mode", "epochs", "lr", "roads", "seconds", "seed", "val_roads", "val_seconds", "processes")
ENV = ("rounds", "beta", "mode", "epochs", "lr", "episodes", "seed", "max_steps", "val_episodes", "val_seed",
       "held_out", "threads", "limits")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="a trained run folder (its best/ starts round 1): on a world cache, or "
                                                "with --env on that env's recorded episodes")
    p.add_argument("--out", required=True, help="folder for each round's run (round-N/) and dagger.json")
    p.add_argument("--rounds", type=int)
    p.add_argument("--beta", type=float,
                   help="the expert's share of the wheel in round r is BETA**r (0: the model alone)")
    p.add_argument("--mode", choices=["fine-tune", "scratch"],
                   help="each round fine-tunes the last checkpoint, or trains a fresh model on all data so far")
    p.add_argument("--epochs", type=int, help="epochs per round (0: the run's own)")
    p.add_argument("--lr", type=float, help="learning rate per round (0: the run's own)")
    p.add_argument("--seed", type=int,
                   help="world: roads are this world seed's drives, never the held-out (1000) or validation (3000) "
                        "ones; --env: episode k of round r is reset with SEED + (r - 1) x EPISODES + k")
    p.add_argument("--roads", type=int, help="roads driven per round")
    p.add_argument("--seconds", type=float, help="per road")
    p.add_argument("--val-roads", type=int, help="validation roads scored after each round")
    p.add_argument("--val-seconds", type=float)
    p.add_argument("--processes", type=int, help="roads driven at once, one per core")
    group = p.add_argument_group("an environment instead of the synthetic world (the roads' and --processes do "
                                 "not apply; --episodes: per round)")
    add_env_options(group, required=False)
    group.add_argument("--val-episodes", type=int, help="validation episodes scored after each round, from --val-seed")
    group.add_argument("--val-seed", type=int, help="validation episode k is reset with VAL_SEED + k")
    group.add_argument("--held-out", type=seed_list, default=[], metavar="SEEDS",
                       help="seeds DAgger must never drive, e.g. 100-109 (those `steer drive --env` scores on); "
                            "refused where a round's or a validation episode would be one")
    group.add_argument("--speed", choices=["driver", "model"], default="driver",
                       help="driver: the expert's pedals (lateral control); model: the model's own, mixed as its wheel")
    group.add_argument("--threads", type=int, help="torch threads for the model's step")
    group.add_argument("--limits", type=limits, metavar="NAME=MAX,...",
                       help="widen a signal's physical range, as `steer record --limits` (e.g. speed=150)")


def run(args: argparse.Namespace) -> None:
    from steer.drive.dagger import DaggerConfig, dagger

    if args.env:
        return run_env(args)
    config = DaggerConfig(**_given(args, WORLD))
    dagger(args.run, args.out, config)
    print(f"wrote {args.out}/dagger.json")


def run_env(args: argparse.Namespace) -> None:
    """The rounds in --env's episodes."""
    from steer.cli.record import open_env
    from steer.drive.dagger import run_rounds
    from steer.envs.dagger import EnvDaggerConfig, EnvEpisodes

    config = EnvDaggerConfig(**_given(args, ENV), full=args.speed == "model")
    config.check()  # before the env is made
    adapter = open_env(args)
    run_rounds(args.run, args.out, config, lambda base, rounds: EnvEpisodes(adapter, base, rounds))
    adapter.close()
    print(f"wrote {args.out}/dagger.json")
