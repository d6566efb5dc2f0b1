"""Milliseconds a frame to write the demo's overlay videos (600x198 WebM): PyAV's libvpx in its real-time
mode, as steer writes them (`steer/evaluate/video.py`), beside OpenCV's VP8 writer, which steer used
before, and libvpx's default (good-quality) mode, all in the same run, each round in turn.

    .venv/bin/python bench/video.py [--frames 200 --rounds 3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from steer.evaluate.video import VP8, _Video
from steer.world.simulate import WorldConfig, simulate_drive


def opencv(path: str, frames: list[np.ndarray], fps: int) -> None:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"VP80"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()


def pyav(path: str, frames: list[np.ndarray], fps: int, vp8: dict[str, str]) -> None:
    """Through steer's own writer, with libvpx's options `vp8`."""
    video = _Video(Path(path), Path(path), fps, frames[0], vp8)
    for frame in frames:
        video.write(frame)
    video.release()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    drive = simulate_drive(WorldConfig(frames_per_drive=args.frames), 3)
    frames = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
              for f in drive.frames]  # the overlay's size: the camera frame enlarged 3x
    ways = {"steer: PyAV libvpx real-time": lambda p: pyav(p, frames, 20, VP8),
            "PyAV libvpx default": lambda p: pyav(p, frames, 20, {}),
            "OpenCV VP8 (before)": lambda p: opencv(p, frames, 20)}
    seconds, sizes = {way: [] for way in ways}, {}
    with tempfile.TemporaryDirectory() as root:
        for _ in range(args.rounds):
            for way, write in ways.items():
                path = os.path.join(root, "bench.webm")
                started = time.perf_counter()
                write(path)
                seconds[way].append(time.perf_counter() - started)
                sizes[way] = os.path.getsize(path)
    fastest = min(np.median(s) for s in seconds.values())
    print(f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, median of {args.rounds} rounds:")
    for way, s in seconds.items():
        print(f"  {way:<30} {np.median(s) / len(frames) * 1000:6.1f} ms a frame  {sizes[way] / 1e3:6.0f} kB  "
              f"x{np.median(s) / fastest:.1f}")


if __name__ == "__main__":
    main()
