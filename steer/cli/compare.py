"""`steer compare`: several models trained on one split and scored on the same held-out frames."""
from __future__ import annotations

import argparse
from pathlib import Path

from steer.cli.common import add_train_options, train_flags
from steer.errors import SteerError

HELP = "train and evaluate several models on the same split, one table"
OWN = ("model", "out")  # compare names each model by its label and trains it into OUT/<label>


def _seeds(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated whole numbers, e.g. 0,1,2") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder: a run folder per model, and compare.json")
    p.add_argument("--models", help="comma-separated labels: registered models (pilotnet,cnn-lstm) or labels of "
                                    "--config (default: all of --config's)")
    p.add_argument("--config", help='JSON {"common": {training options}, "models": {label: {"model": name, '
                                    'training options}}}; the flags below override both, for every model')
    p.add_argument("--seeds", type=_seeds,
                   help="e.g. 0,1,2: train each model once per seed (into OUT/seed-N/), each seed's RMSE and "
                        "mean +- std over seeds")
    p.add_argument("--closed-loop", type=int, metavar="ROADS",
                   help="--seeds: also drive ROADS held-out roads in closed loop (steer drive) with each seed's best "
                        "checkpoint; autonomy mean +- std beside the reference drivers, and open_vs_closed.png")
    p.add_argument("--closed-loop-seconds", type=float, default=30.0)
    p.add_argument("--closed-loop-seed", type=int, default=1000, help="world seed of the held-out roads")
    p.add_argument("--processes", type=int, default=1, help="--closed-loop: drivers driven at once")
    add_train_options(p, skip=OWN)


def run(args: argparse.Namespace) -> None:
    from steer.compare import compare, model_configs, result_table
    from steer.data.cache import read_json_file

    spec = read_json_file(args.config) if args.config else {}
    if spec and not {"common", "models"} & set(spec):
        raise SteerError(f"--config {args.config} holds flat training options: that is one model, for steer train "
                         '--config; steer compare takes {"common": {...}, "models": {label: {...}}}')
    labels = args.models.split(",") if args.models else None
    if args.seeds:
        return _over_seeds(args, spec, labels)
    if args.closed_loop:
        raise SteerError("--closed-loop goes with --seeds (for one checkpoint: steer drive)")
    result = compare(model_configs(spec, args.out, labels, train_flags(args, OWN)), args.out)
    print(f"\nheld-out: {len(result['test']['drives'])} drives, {result['test']['frames']} frames\n"
          f"{result_table(result)}\nwrote {Path(args.out) / 'compare.json'}")


def _over_seeds(args: argparse.Namespace, spec: dict, labels: list[str] | None) -> None:
    from steer.compare import add_autonomy, compare_seeds, seeds_table
    from steer.durable import write_json
    from steer.evaluate.plots import open_vs_closed

    out = Path(args.out)
    result = compare_seeds(spec, out, args.seeds, labels, train_flags(args, OWN))
    if args.closed_loop:
        add_autonomy(result, args.closed_loop, args.closed_loop_seconds, args.closed_loop_seed, args.processes)
        open_vs_closed(out / "open_vs_closed.png", result)
    write_json(out / "seeds.json", result)
    print(f"\n{seeds_table(result)}\nwrote {out / 'seeds.json'}"
          + (f" and {out / 'open_vs_closed.png'}" if args.closed_loop else ""))
