"""`steer evaluate`: a run on held-out drives beside the baselines, or a predictions file against truth."""
from __future__ import annotations

import argparse
from pathlib import Path

from steer.errors import SteerError

HELP = "score a run on held-out drives beside the baselines, or a predictions file against a ground-truth file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", help="run folder written by steer train")
    p.add_argument("--cache", help="frame cache (default: the one the run trained on)")
    p.add_argument("--drives", help="comma-separated drive names (default: the run's test drives; with another "
                                    "--cache, all its drives with frames)")
    p.add_argument("--metrics-only", action="store_true",
                   help="write metrics.json and predictions.csv only: no plots, video or HTML report")
    p.add_argument("--out", help="output folder (default: the run folder); with --predictions, a JSON file")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--predictions", help="a predictions CSV to score (instead of --run)")
    p.add_argument("--truth", help="the ground-truth CSV for --predictions")
    p.add_argument("--key", default="frame_id", help="the column matching rows of the two files")
    p.add_argument("--tolerance", type=float,
                   help="match --key as a time: the nearest prediction within this much (in the key's units)")


def _score(args: argparse.Namespace) -> None:
    from steer.durable import write_json
    from steer.evaluate.score import score_files

    result = score_files(args.predictions, args.truth, args.key, args.tolerance)
    for group, scores in result["scores"].items():
        for target in result["targets"]:
            print(f"{group:<8} {target:<16} frames {scores['frames']:>6}  rmse {scores['model'][target]['rmse']:.10f}"
                  f"  mae {scores['model'][target]['mae']:.10f}  (zero: rmse {scores['zero'][target]['rmse']:.10f})")
    if args.out:
        write_json(Path(args.out), result)


def run(args: argparse.Namespace) -> None:
    from steer.compare import comparison_table
    from steer.evaluate.evaluate import evaluate_run

    if bool(args.predictions or args.truth) == bool(args.run) or bool(args.predictions) != bool(args.truth):
        raise SteerError("give --run, or both --predictions and --truth")
    if args.predictions:
        return _score(args)
    drives = args.drives.split(",") if args.drives else None
    metrics = evaluate_run(args.run, args.cache, drives, args.out, args.checkpoint, report=not args.metrics_only)
    if not drives and args.cache:
        print(f"scored on {len(metrics['drives'])} drives of {metrics['cache']} (give --drives to choose)")
    print(comparison_table({metrics["model_name"]: metrics["model"]}, metrics, metrics["units"]))
