"""`steer verify`: re-hash a frame cache's files against the sha256 recorded when they were written."""
from __future__ import annotations

import argparse
from pathlib import Path

from steer.errors import SteerError

HELP = "check every drive of a frame cache against the hashes recorded when it was written"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cache", help="frame cache folder")


def run(args: argparse.Namespace) -> None:
    from steer.data.cache import MANIFEST, read_manifest, repair_hint, verify

    if not (Path(args.cache) / MANIFEST).exists():
        raise SteerError(f"{args.cache} is not a frame cache: {MANIFEST} is missing")
    found = verify(args.cache)
    for name, problem in found.items():
        print(f"{'damaged' if problem else 'ok':8} {name}{': ' + problem if problem else ''}")
    damaged = [name for name, problem in found.items() if problem]
    if damaged:
        entry = next(e for e in read_manifest(args.cache)["drives"] if e["name"] == damaged[0])
        raise SteerError(f"{len(damaged)} of {len(found)} drives in {args.cache} are damaged ({', '.join(damaged)}); "
                         f"{repair_hint(args.cache, entry)} to repair them")
    print(f"{len(found)} drives in {args.cache}: all match their recorded hashes")
