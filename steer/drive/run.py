"""`steer run`: a checkpoint over a video, an image folder, an imported drive or a camera, frame by
frame through `Pilot`, writing each frame's predictions and latency; optionally paced in real time,
counting the frames whose step overran the frame period (deadline misses)."""
from __future__ import annotations

import csv
import time
import warnings
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from steer.data.cache import FrameCache
from steer.data.exclusions import kept_drives
from steer.drive.pilot import Pilot
from steer.durable import replacing
from steer.sources.images import read_image

Frame = tuple[str, int, float, np.ndarray]  # drive, frame number, time (s), RGB uint8 (H, W, 3)


def video_frames(path: str | Path, fps: float | None = None) -> Iterator[Frame]:
    """Every decodable frame; a video that ends before its header says gets a warning naming where. A
    file that is not a video is refused here, before any output is written."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"--video {path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"--video {path}: OpenCV cannot read it as a video (damaged, or not a video)")
    return _video(capture, Path(path), fps or capture.get(cv2.CAP_PROP_FPS) or 30.0)


def _video(capture: cv2.VideoCapture, path: Path, rate: float) -> Iterator[Frame]:
    claimed = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    index = 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield path.stem, index, index / rate, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if 0 < index < claimed:
        warnings.warn(f"{path}: the video breaks off after frame {index - 1}; its header claims {claimed} frames")


def camera_frames(device: int) -> Iterator[Frame]:
    """Frames as the camera delivers them, timed by the clock."""
    capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        raise RuntimeError(f"no camera at index {device} (OpenCV could not open it)")
    started, index = time.perf_counter(), 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                raise RuntimeError(f"camera {device} stopped delivering frames after frame {index}")
            yield f"camera-{device}", index, time.perf_counter() - started, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


def image_frames(folder: str | Path, fps: float) -> Iterator[Frame]:
    """Images in name order (numbers in names sorted as numbers), timed by `fps`."""
    paths = image_paths(folder)  # checked now, not at the first frame
    return ((Path(folder).name, index, index / fps, read_image(path)) for index, path in enumerate(paths))


def image_paths(folder: str | Path) -> list[Path]:
    """The folder's images in name order; none is an error, not an empty run."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"--images {folder}: no such folder")
    paths = sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
                   key=lambda p: (len(p.stem), p.stem))
    if not paths:
        raise ValueError(f"--images {folder}: no .jpg, .jpeg or .png image in the folder")
    return paths


def drive_frames(cache: str | Path, name: str) -> Iterator[Frame]:
    """The drive's frames outside its exclusion ranges, each kept part a drive `name@start:stop` of its own."""
    parts = kept_drives(FrameCache(cache), [name])  # refused now
    return ((part.name, index, float(t), np.array(frame).transpose(1, 2, 0))
            for part in parts for index, (frame, t) in enumerate(zip(part.frames, part.timestamps_s)))


def run(pilot: Pilot, frames: Iterator[Frame], out: str | Path, realtime_fps: float | None = None,
        max_frames: int | None = None) -> dict:
    """Step `pilot` through `frames`, writing `out` (CSV); returns latency figures and deadline misses."""
    out = Path(out)
    latencies, misses = [], 0
    period = 1.0 / realtime_fps if realtime_fps else None
    next_deadline, current = time.perf_counter(), None
    with replacing(out) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["drive", "frame", "time_s", *pilot.targets, "latency_ms"])
        for count, (drive, index, time_s, frame) in enumerate(frames):
            if max_frames is not None and count >= max_frames:
                break
            if drive != current:  # a new drive, or a drive's part after an excluded range: a fresh state
                pilot.reset()
                current = drive
            started = time.perf_counter()
            preds = pilot.step(frame, time_s)
            latency = time.perf_counter() - started
            latencies.append(latency)
            writer.writerow([drive, index, f"{time_s:.6f}", *(f"{v:.6g}" for v in preds.values()),
                             f"{latency * 1e3:.3f}"])
            if period:
                next_deadline += period
                misses += latency > period
                time.sleep(max(next_deadline - time.perf_counter(), 0.0))
    ms = np.array(latencies) * 1e3
    return {"frames": len(ms), "latency_ms_median": float(np.median(ms)) if len(ms) else None,
            "latency_ms_p99": float(np.percentile(ms, 99)) if len(ms) else None,
            "deadline_misses": int(misses) if period else None, "out": str(out)}
