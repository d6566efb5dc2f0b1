"""`steer train`: one model on a frame cache, options from TrainConfig."""
from __future__ import annotations

import argparse

from steer.cli.common import add_train_options, train_flags
from steer.errors import SteerError

HELP = "train a model on a frame cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON file of flat training options (e.g. examples/train.json); flags override "
                                    "it. A comparison spec ({\"common\", \"models\"}) is for steer compare")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run that --out already holds")
    add_train_options(p)


def run(args: argparse.Namespace) -> None:
    from steer.data.cache import read_json_file
    from steer.drive.judge import judging, road_judge
    from steer.train.config import TrainConfig
    from steer.train.loop import train

    values = read_json_file(args.config) if args.config else {}
    if {"common", "models"} & set(values):
        raise SteerError(f"--config {args.config} is a comparison spec (common, models): run it with steer compare "
                         "--config; steer train takes flat training options, e.g. examples/train.json")
    values.update(train_flags(args))
    try:
        config = TrainConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise SteerError(f"--config {args.config}: {error}" if args.config else str(error)) from None
    if not config.cache or not config.out:
        raise SteerError("--cache and --out are needed (as flags or in --config)")
    with judging([config]):
        run = train(config, resume=args.resume, overwrite=args.overwrite, judge=road_judge(config))
    print(f"best checkpoint in {run / 'best'}")
