"""`steer explain`: what a run's model looks at on one drive, and which past frames its commands came from."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "saliency per frame (VisualBackProp), attribution over time and a causal check of a run on one drive"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run folder written by steer train")
    p.add_argument("--drive", required=True, help="a drive name, e.g. one of the run's test drives")
    p.add_argument("--cache", help="frame cache (default: the one the run trained on)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--mask", help="an image, white where to ignore (a car's hood), resized to the frames")
    p.add_argument("--window", type=int, default=16, help="frames back the attribution over time looks")
    p.add_argument("--fraction", type=float, default=0.05, help="of the pixels the causal check masks")
    p.add_argument("--seed", type=int, default=0, help="of the causal check's random pixels")
    p.add_argument("--out", help="output folder (default: RUN/explain/DRIVE)")


def run(args: argparse.Namespace) -> None:
    from steer.data.exclusions import excluded_note
    from steer.evaluate.evaluate import open_run
    from steer.evaluate.explain import explain_drive, read_ignore_mask

    if not 0 < args.fraction < 1:
        raise ValueError(f"--fraction {args.fraction}: a share of the pixels, between 0 and 1")
    if args.window < 1:
        raise ValueError(f"--window {args.window}: 1 frame or more")
    _, cache, model, _ = open_run(Path(args.run), args.cache, args.checkpoint)
    drive, = cache.by_name([args.drive])
    note = excluded_note(cache, args.drive)  # the drive is explained whole, as the video shows it
    if note:
        print(note)
    if not len(drive.frames):
        raise ValueError(f"drive {args.drive!r} has no frames to explain (a signal-only drive)")
    ignore = read_ignore_mask(args.mask, drive.frames.shape[2:]) if args.mask else None
    out = Path(args.out or Path(args.run) / "explain" / args.drive.replace("@", "_").replace(":", "-"))
    found = explain_drive(model, drive, out, ignore, args.window, args.fraction, args.seed)
    check = found["causal_check"]["targets"]
    print(" ".join(f"{t}: salient/random change {c['ratio']:.2f}x" for t, c in check.items())
          + f"; wrote {out / 'saliency.mp4'}, {out / 'time.png'}, {out / 'explain.json'}")
