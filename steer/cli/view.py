"""`steer view`: an overlay video of a run's model driving one drive."""
from __future__ import annotations

import argparse

HELP = "an overlay video of a run's model driving one drive"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True)
    p.add_argument("--drive", required=True, help="a drive name, e.g. one of the run's test drives")
    p.add_argument("--cache", help="(default: the cache the run trained on)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--out", default="view.mp4", help="the MP4; a PNG still is written beside it")
    p.add_argument("--saliency", action="store_true", help="each frame under its saliency (VisualBackProp)")


def run(args: argparse.Namespace) -> None:
    from steer.evaluate.evaluate import view_drive

    print(f"wrote {view_drive(args.run, args.drive, args.out, args.cache, args.checkpoint, args.saliency)}")
