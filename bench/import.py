"""Import frames/s against the raw decode + resize of the same files, measured in the same run.

    .venv/bin/python bench/import.py [--data ../shared/data] [--processes 2]

The limit is the fastest known way to do the same work on one core: read each JPEG, decode it with
simplejpeg and resize it to the cache's size with OpenCV, in a plain loop. The import does that plus
parsing, checking, splitting and writing the cache, on `--processes` threads; the ratio is per core.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from steer.sources.images import decode_image
from steer.sources.importer import FORMATS, detect, import_recording

SOURCES = ["udacity-sim/sample-data-header", "donkey/track"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(f"{'source':<34}{'frames':>8}{'decode, 1 core':>16}{'import':>10}{'cores':>7}{'ratio per core':>16}")
    for name in SOURCES:
        source = Path(args.data) / name
        tables = FORMATS[detect(source)](source)
        images = [p for t in tables for p in t.images]
        for path in images:  # both runs read the files from the page cache, not the disk
            path.read_bytes()
        started = time.perf_counter()
        for path in images:
            decode_image(path, (66, 200))
        limit = len(images) / (time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            report = import_recording(source, out, processes=args.processes)
            rate = report["frames"] / (time.perf_counter() - started)
        print(f"{name:<34}{len(images):>8}{limit:>16,.0f}{rate:>10,.0f}{args.processes:>7}"
              f"{rate / args.processes / limit:>16.2f}")


if __name__ == "__main__":
    main()
