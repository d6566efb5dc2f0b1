"""`steer train`: one model on a frame cache, options from TrainConfig."""
from __future__ import annotations

import argparse

from steer.cli.common import add_train_options, read_json_file, train_flags
from steer.errors import SteerError

HELP = "train a model on a frame cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON file of training options; flags override it")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    add_train_options(p)


def run(args: argparse.Namespace) -> None:
    from steer.train.config import TrainConfig
    from steer.train.loop import train

    values = read_json_file(args.config) if args.config else {}
    values.update(train_flags(args))
    config = TrainConfig.from_dict(values)
    if not config.cache or not config.out:
        raise SteerError("--cache and --out are needed (as flags or in --config)")
    print(f"best checkpoint in {train(config, resume=args.resume) / 'best'}")
