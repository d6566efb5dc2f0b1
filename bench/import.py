"""Import frames/s against the raw decode + resize of the same files, measured in the same run.

    .venv/bin/python bench/import.py [--data ../shared/data] [--sources a,b] [--processes 2] [--repeats 5]
                                     [--bag-frames 2000]

The limit is the fastest known way to do the same work on one core: read each JPEG, decode it with
simplejpeg and resize it to the cache's size with OpenCV, into reused arrays (the decoder's kept
unaligned, as in the importer, see `steer.sources.images.pixel_buffer`), in a plain loop. The
import does that plus parsing, hashing, checking, splitting, reordering to channels first and writing
the cache, on `--processes` processes; its ratio is per core. The same plain loop split over the same
number of forked processes shows how far decoding alone scales on this machine: no importer can pass it.
Each figure is the best of `--repeats` interleaved runs, since other work on the machine only slows runs.

The bag row imports a ROS 1 bag written here in Udacity Challenge 2's layout (tests/bags.py): `--bag-frames`
640x480 JPEG frames (20 distinct images in turn) beside a steering report at 50 Hz; its limit decodes the
same JPEG bytes, held in memory, in the same plain loop.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
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
FRAMES: list[str | bytes] = []  # what decode_on's forked processes decode: inherited, not sent to them


def decode_loop(images: list[str | bytes]) -> int:
    """Image files (or JPEG bytes) into reused arrays (new ones cost page faults), the decoder's output in
    the importer's `pixel_buffer`, which keeps libjpeg-turbo from writing it past the cache."""
    resized, pixels = np.empty((*SIZE, 3), np.uint8), np.empty(0, np.uint8)
    for image in images:
        if isinstance(image, bytes):
            data = image
        else:
            with open(image, "rb") as f:
                data = f.read()
        height, width = simplejpeg.decode_jpeg_header(data)[:2]
        if pixels.size < height * width * 3:
            pixels = pixel_buffer(height * width * 3)
        cv2.resize(simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=pixels), SIZE[::-1], dst=resized,
                   interpolation=cv2.INTER_AREA)
    return len(images)


def decode_part(edges: tuple[int, int]) -> int:
    return decode_loop(FRAMES[edges[0]:edges[1]])


def decode_on(processes: int, images: list[str | bytes]) -> None:
    """The plain loop over `processes` forked processes, one contiguous part each."""
    global FRAMES
    FRAMES = images
    edges = np.linspace(0, len(images), processes + 1).astype(int)
    with multiprocessing.get_context("fork").Pool(processes, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        pool.map(decode_part, list(zip(edges[:-1], edges[1:])), chunksize=1)


def test_bag(folder: Path, frames: int) -> tuple[Path, list[bytes]]:
    """A bag of `frames` camera frames and the JPEG bytes of each (see the module's doc)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from bags import write_bag

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    scene = np.stack([x * 255 // 640, y * 255 // 480, (x + y) * 255 // 1120], -1).astype(np.uint8)
    jpegs = [cv2.imencode(".jpg", cv2.add(scene, rng.integers(0, 12, scene.shape, dtype=np.uint8)))[1]
             for _ in range(20)]
    start = 1_479_424_215_000_000_000
    camera = [(start + i * 50_000_000, jpegs[i % 20]) for i in range(frames)]
    steering = [(start - 10_000_000 + i * 20_000_000, {"steering_wheel_angle": 0.01 * (i % 100)})
                for i in range(frames * 5 // 2 + 2)]
    bag = write_bag(folder / "bench.bag", {"/center_camera/image_color/compressed": camera},
                    {"/vehicle/steering_report": steering})
    return bag, [data.tobytes() for _, data in camera]


def import_into_new_cache(source: Path, processes: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        import_recording(source, out, processes=processes)


def best_rate(frames: int, runs: list[float]) -> float:
    return frames / min(runs)


def measure(name: str, source: Path, images: list[str | bytes], n: int, repeats: int) -> None:
    decode_loop(images)  # every run reads the files from the page cache, not the disk
    runs: dict[str, list[float]] = {"one": [], "many": [], "import": []}
    for _ in range(repeats):  # interleaved, so a slow spell on the machine hits all three
        for key, work in [("one", lambda: decode_loop(images)), ("many", lambda: decode_on(n, images)),
                          ("import", lambda: import_into_new_cache(source, n))]:
            started = time.perf_counter()
            work()
            runs[key].append(time.perf_counter() - started)
    one, many, imported = (best_rate(len(images), runs[k]) for k in ("one", "many", "import"))
    print(f"{name:<32}{len(images):>7}{one:>15,.0f}{many:>11,.0f}{imported:>9,.0f}"
          f"{many / n / one:>14.2f}{imported / n / one:>14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sources", type=lambda v: [s for s in v.split(",") if s], default=SOURCES,
                        help="recordings under --data, comma-separated ('' for the bag row alone)")
    parser.add_argument("--bag-frames", type=int, default=2000)
    args = parser.parse_args()
    n = args.processes
    print(f"frames/s, best of {args.repeats}; {n} processes; ratios per core against the one-core decode")
    print(f"{'source':<32}{'frames':>7}{'decode 1 core':>15}{f'decode x{n}':>11}{'import':>9}"
          f"{'decode ratio':>14}{'import ratio':>14}")
    for name in args.sources:
        source = Path(args.data) / name
        if source.is_dir():
            measure(name, source, [str(p) for t in reader(detect(source)).tables(source) for p in t.images], n,
                    args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        bag, jpegs = test_bag(Path(folder), args.bag_frames)
        measure("rosbag (written here, 640x480)", bag, jpegs, n, args.repeats)


if __name__ == "__main__":
    main()
