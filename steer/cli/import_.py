"""`steer import`: recordings in the public layouts into a frame cache."""
from __future__ import annotations

import argparse
import json
import os

from steer.cli.common import add_cache_writer_options, crop, read_json_file, size
from steer.sources import FORMAT_OPTIONS

HELP = "import recordings into a frame cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="+", help="recording folders")
    p.add_argument("--out", required=True, help="frame cache folder")
    p.add_argument("--format", choices=sorted(FORMAT_OPTIONS), help="(default: detected)")
    p.add_argument("--size", type=size, default=(66, 200), help="HEIGHTxWIDTH stored in the cache")
    p.add_argument("--crop", type=crop, default=(0.0, 0.0), help="fractions of the height cut from the top and bottom")
    p.add_argument("--max-gap-s", type=float, default=1.0, help="a longer time gap starts a new drive")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="processes that decode images")
    p.add_argument("--steering-rad-per-unit", type=float,
                   help="convert a normalised steering value to radians of steering-wheel angle")
    p.add_argument("--cameras", type=lambda v: v.split(","),
                   help="udacity-sim: e.g. center,left,right (each its own drive)")
    p.add_argument("--side-correction", type=float, help="udacity-sim: steering added to side cameras (default 0.2)")
    p.add_argument("--keep-deleted", action="store_true", help="donkey: import records the tub marks deleted")
    p.add_argument("--throttle-scale", type=float, help="donkey: e.g. -1 where forward is negative")
    p.add_argument("--wheel-unit", choices=["deg", "rad"], help="deeptesla: override the unit of `wheel`")
    p.add_argument("--fps", type=float, help="sullychen, generic: frame rate where the log has no times")
    p.add_argument("--camera", help="udacity: which camera's rows to read (default center)")
    p.add_argument("--config", help="generic: JSON file of the generic options below (flags override it)")
    p.add_argument("--signals", help="generic: steer's name=CSV column:unit, e.g. steering=wheel:deg,speed=v:km/h")
    p.add_argument("--frames", help="generic: a video file or an image folder, relative to the source")
    p.add_argument("--csv-file", help="generic: the CSV (default: the only one in the source)")
    p.add_argument("--frame", help="generic: the column of frame numbers or image names (default frame)")
    p.add_argument("--frame-base", type=int, help="generic: number of the video's first frame (default 0)")
    p.add_argument("--time", help="generic: the time column (else --fps)")
    p.add_argument("--time-unit", choices=["s", "ms", "us", "ns", "unix"], help="generic: (default s)")
    p.add_argument("--signals-only", action="store_true",
                   help="udacity, deeptesla, sullychen: the logs without images or video, as drives without frames")
    add_cache_writer_options(p)
    p.add_argument("--repeated-times", choices=["refuse", "drop"], default="refuse",
                   help="rows whose time repeats the row before: refuse the import, or drop them (counted)")
    p.add_argument("--odd-frames", choices=["refuse", "resize"], default="refuse",
                   help="images of another size than their drive's first: refuse, or resize them (counted)")


def run(args: argparse.Namespace) -> None:
    from steer.sources.importer import import_recording

    names = set().union(*FORMAT_OPTIONS.values())
    options = read_json_file(args.config) if args.config else {}
    options.update({k: getattr(args, k) for k in sorted(names) if getattr(args, k) not in (None, False)})
    for source in args.source:
        report = import_recording(source, args.out, args.format, args.size, args.crop, args.max_gap_s,
                                  args.processes, args.limits, args.repeated_times, args.odd_frames,
                                  args.lock_timeout, **options)
        print(json.dumps(report, indent=1))
