"""Udacity self-driving car Challenge 2 exports: `interpolated.csv` beside the camera folders
(`center/`, `left/`, `right/`), as the bag-reading tools of the challenge wrote them.

One row per camera image, the three cameras interleaved (so the file is not in time order across
cameras); steering (`angle`, steering-wheel angle in radians, positive = left), `torque` (N·m) and
`speed` (m/s) already interpolated onto each image's time (`timestamp`, Unix nanoseconds). One camera
is read; with `signals_only` the images are not needed and the drive has no frames.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.table import FrameTable

NEEDED = ["timestamp", "frame_id", "filename", "angle", "torque", "speed"]


def read(folder: str | Path, camera: str = "center", signals_only: bool = False) -> FrameTable:
    folder = Path(folder)
    log = folder / "interpolated.csv"
    if not log.exists():
        raise FileNotFoundError(f"{folder}: no interpolated.csv")
    images, times, values, rows = [], [], [], []
    other_cameras: Counter = Counter()
    with log.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in NEEDED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{log}: no column {missing}; it has {reader.fieldnames}")
        for number, row in enumerate(reader, 2):
            where = f"{log} line {number}"
            if row["frame_id"] != f"{camera}_camera":
                other_cameras[f"rows of other cameras ({row['frame_id']})"] += 1
                continue
            try:
                times.append(int(row["timestamp"]) / 1e9)
                values.append([float(row[c]) for c in ("angle", "torque", "speed")])
            except ValueError:
                raise ValueError(f"{where}: not a number in {[row[c] for c in NEEDED]}") from None
            if not signals_only:
                image = folder / row["filename"]
                if not image.exists():
                    raise FileNotFoundError(f"{where}: image {row['filename']} is not in {folder}")
                images.append(image)
            rows.append(where)
    steering, torque, speed = np.array(values).reshape(-1, 3).T
    signals = {"steering": Signal(steering, "rad"), "torque": Signal(torque, "N*m"), "speed": Signal(speed, "m/s")}
    return FrameTable(f"{folder.name}-{camera}", images, np.array(times), signals, rows, other_cameras)
