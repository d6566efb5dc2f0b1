"""`steer compare`: several models trained on one split and scored on the same held-out frames."""
from __future__ import annotations

import argparse
from pathlib import Path

from steer.cli.common import add_train_options, read_json_file, train_flags
from steer.errors import SteerError

HELP = "train and evaluate several models on the same split, one table"
OWN = ("model", "out")  # compare names each model by its label and trains it into OUT/<label>


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder: a run folder per model, and compare.json")
    p.add_argument("--models", help="comma-separated labels: registered models (pilotnet,cnn-lstm) or labels of "
                                    "--config (default: all of --config's)")
    p.add_argument("--config", help='JSON {"common": {training options}, "models": {label: {"model": name, '
                                    'training options}}}; the flags below override both, for every model')
    add_train_options(p, skip=OWN)


def run(args: argparse.Namespace) -> None:
    from steer.compare import compare, model_configs, result_table

    spec = read_json_file(args.config) if args.config else {}
    if spec and not {"common", "models"} & set(spec):
        raise SteerError(f"--config {args.config} holds flat training options: that is one model, for steer train "
                         '--config; steer compare takes {"common": {...}, "models": {label: {...}}}')
    labels = args.models.split(",") if args.models else None
    result = compare(model_configs(spec, args.out, labels, train_flags(args, OWN)), args.out)
    print(f"\nheld-out: {len(result['test']['drives'])} drives, {result['test']['frames']} frames\n"
          f"{result_table(result)}\nwrote {Path(args.out) / 'compare.json'}")
