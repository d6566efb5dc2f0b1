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
    unhashed = {e["name"] for e in read_manifest(args.cache)["drives"] if "sha256" not in e}
    for name, problem in found.items():
        note = f": {problem}" if problem else ""
        if not problem and name in unhashed:
            note = " (shapes only: written before steer recorded sha256)"
        print(f"{'damaged' if problem else 'ok':8} {name}{note}")
    damaged = [name for name, problem in found.items() if problem]
    if damaged:
        entry = next(e for e in read_manifest(args.cache)["drives"] if e["name"] == damaged[0])
        raise SteerError(f"{len(damaged)} of {len(found)} drives in {args.cache} are damaged ({', '.join(damaged)}); "
                         f"{repair_hint(args.cache, entry)} to repair them")
    print(f"{len(found)} drives in {args.cache}: all intact" +
          (f" ({len(unhashed)} checked by shape only)" if unhashed else ", every file matching its recorded sha256"))
