"""Import frames/s against the raw decode + resize of the same files, measured in the same run.

    .venv/bin/python bench/import.py [--data ../shared/data] [--processes 2] [--repeats 5]

The limit is the fastest known way to do the same work on one core: read each JPEG, decode it with
simplejpeg and resize it to the cache's size with OpenCV, into reused arrays (the decoder's kept
unaligned, as in the importer, see `steer.sources.images.pixel_buffer`), in a plain loop. The
import does that plus parsing, hashing, checking, splitting, reordering to channels first and writing
the cache, on `--processes` processes; its ratio is per core. The same plain loop split over the same
number of forked processes shows how far decoding alone scales on this machine: no importer can pass it.
Each figure is the best of `--repeats` interleaved runs, since other work on the machine only slows runs.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import simplejpeg

from steer.sources.images import pixel_buffer
from steer.sources.importer import import_recording
from steer.sources.registry import detect, reader

SOURCES = ["udacity-sim/sample-data-header", "donkey/track"]
SIZE = (66, 200)


def decode_loop(images: list[str]) -> int:
    """Into reused arrays (new ones cost page faults), the decoder's output in the importer's
    `pixel_buffer`, which keeps libjpeg-turbo from writing it past the cache."""
    resized, pixels = np.empty((*SIZE, 3), np.uint8), np.empty(0, np.uint8)
    for path in images:
        with open(path, "rb") as f:
            data = f.read()
        height, width = simplejpeg.decode_jpeg_header(data)[:2]
        if pixels.size < height * width * 3:
            pixels = pixel_buffer(height * width * 3)
        cv2.resize(simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=pixels), SIZE[::-1], dst=resized,
                   interpolation=cv2.INTER_AREA)
    return len(images)


def decode_on(processes: int, images: list[str]) -> None:
    """The plain loop over `processes` forked processes, one contiguous part each."""
    edges = np.linspace(0, len(images), processes + 1).astype(int)
    with multiprocessing.get_context("fork").Pool(processes, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        pool.map(decode_loop, [images[a:b] for a, b in zip(edges[:-1], edges[1:])], chunksize=1)


def import_into_new_cache(source: Path, processes: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        import_recording(source, out, processes=processes)


def best_rate(frames: int, runs: list[float]) -> float:
    return frames / min(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.processes
    print(f"frames/s, best of {args.repeats}; {n} processes; ratios per core against the one-core decode")
    print(f"{'source':<32}{'frames':>7}{'decode 1 core':>15}{f'decode x{n}':>11}{'import':>9}"
          f"{'decode ratio':>14}{'import ratio':>14}")
    for name in SOURCES:
        source = Path(args.data) / name
        images = [str(p) for t in reader(detect(source)).tables(source) for p in t.images]
        decode_loop(images)  # every run reads the files from the page cache, not the disk
        runs: dict[str, list[float]] = {"one": [], "many": [], "import": []}
        for _ in range(args.repeats):  # interleaved, so a slow spell on the machine hits all three
            for key, work in [("one", lambda: decode_loop(images)), ("many", lambda: decode_on(n, images)),
                              ("import", lambda: import_into_new_cache(source, n))]:
                started = time.perf_counter()
                work()
                runs[key].append(time.perf_counter() - started)
        one, many, imported = (best_rate(len(images), runs[k]) for k in ("one", "many", "import"))
        print(f"{name:<32}{len(images):>7}{one:>15,.0f}{many:>11,.0f}{imported:>9,.0f}"
              f"{many / n / one:>14.2f}{imported / n / one:>14.2f}")


if __name__ == "__main__":
    main()
