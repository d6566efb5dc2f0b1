"""`steer inspect`: flag what users clean by hand in a frame cache, with plots, and turn chosen flags
into exclusion ranges kept beside the cache (nothing is deleted)."""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from steer.sources.registry import names

HELP = "flag frozen frames, gaps, steering spikes, standstill and saturated steering in a frame cache"


def kinds(text: str) -> list[str]:
    from steer.sources.curate import KINDS

    chosen = names(text)
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown kind {unknown}; kinds: {','.join(KINDS)}")
    return chosen


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cache", help="frame cache folder")
    p.add_argument("--out", help="folder for flags.json, the PNG plots and inspect.html (default CACHE/inspect)")
    p.add_argument("--exclude", type=kinds, default=[],
                   help="add these kinds' flags to the cache's exclusion ranges (exclusions.json), e.g. frozen,gap")
    p.add_argument("--drives", type=names, help="only these drives (default: all)")
    p.add_argument("--gap-factor", type=float, default=1.5, help="a step longer than this many median steps is a gap")
    p.add_argument("--steering-rate", type=float,
                   help="steering units per second the wheel cannot pass (default 10 for rad, 5 for normalised)")
    p.add_argument("--standstill-mps", type=float, default=0.1, help="standstill: slower than this ...")
    p.add_argument("--standstill-s", type=float, default=1.0, help="... for at least this long")
    p.add_argument("--saturated-s", type=float, default=0.5,
                   help="saturated: steering held at the cache's largest magnitude for at least this long")


def run(args: argparse.Namespace) -> None:
    from steer.data.cache import FrameCache
    from steer.sources.curate import Limits, exclude, flag_cache, write_report

    cache = FrameCache(args.cache)
    drives = cache.by_name(args.drives) if args.drives else cache.drives
    limits = Limits(args.gap_factor, args.steering_rate, args.standstill_mps, args.standstill_s, args.saturated_s)
    flags = flag_cache(drives, limits)
    page = write_report(args.out or Path(args.cache) / "inspect", drives, flags)
    counts = Counter((f.drive, f.kind) for f in flags)
    for drive in drives:
        found = ", ".join(f"{counts[drive.name, k]} {k}" for k in sorted({k for d, k in counts if d == drive.name}))
        print(f"{drive.name}: {len(drive)} frames; {found or 'nothing flagged'}")
    if args.exclude:
        ranges = exclude(args.cache, [f for f in flags if f.kind in args.exclude])
        print(f"{Path(args.cache) / 'exclusions.json'}: {len(ranges)} ranges")
    print(f"wrote {page}")
