"""`steer diagnose`: gradient health of a trained run over drives, as PNG and JSON."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "gradient health of a trained run over drives: decay through time, effective memory, dead units, gates"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run folder written by steer train")
    p.add_argument("--drive", help="comma-separated drive names (default: the run's validation drives); frames "
                                   "the cache's exclusions.json names are left out")
    p.add_argument("--cache", help="frame cache (default: the one the run trained on)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--window", type=int, default=32, help="frames per window: how far back the decay is followed")
    p.add_argument("--out", help="output folder (default: RUN/diagnose)")


def run(args: argparse.Namespace) -> None:
    from steer.data.exclusions import kept_drives
    from steer.evaluate.diagnose import diagnose_to
    from steer.evaluate.evaluate import open_run

    if args.window < 2:
        raise ValueError(f"--window {args.window}: a decay through time needs 2 frames or more")
    info, cache, model, _ = open_run(Path(args.run), args.cache, args.checkpoint)
    # as training cut them: each kept part a drive of its own, so no window holds an excluded frame
    drives = [d.labelled(info["config"].get("meant", []))
              for d in kept_drives(cache, args.drive.split(",") if args.drive else info["split"]["val"])]
    out = Path(args.out or Path(args.run) / "diagnose")
    found = diagnose_to(out, model, drives, args.window, f"{info['config']['model']} {args.run}")
    memory = found.get("effective_memory", "none (no recurrent core)")
    print(f"effective memory {memory} of a {args.window}-frame window; dead units {found['dead_fraction']:.1%}; "
          f"wrote {out / 'diagnose.json'} and {out / 'diagnose.png'}")
