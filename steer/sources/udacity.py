"""Udacity self-driving car Challenge 2 exports: `interpolated.csv` beside the camera folders
(`center/`, `left/`, `right/`), as the bag-reading tools of the challenge wrote them; or the raw
export, `camera.csv` and `steering.csv` at their own rates, whose steering log is interpolated here
onto the frame times (frames outside the steering log's span are left out and counted).

One row per camera image, the three cameras interleaved (so the file is not in time order across
cameras); steering (`angle`, steering-wheel angle in radians, positive = left), `torque` (N·m) and
`speed` (m/s) at each image's time (`timestamp`, Unix nanoseconds). One camera is read; with
`signals_only` the images are not needed and the drive has no frames.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.registry import Option, Reader, Where
from steer.sources.table import FrameTable, csv_rows

NEEDED = ["timestamp", "frame_id", "filename", "angle", "torque", "speed"]
SIGNALS = ("angle", "torque", "speed")


def _interpolated_rows(folder: Path, dropped: Counter) -> tuple[Path, list[tuple[int, dict]]]:
    """camera.csv's rows with the steering log interpolated onto their times."""
    steering_log = folder / "steering.csv"
    _, steering = csv_rows(steering_log, ["timestamp", *SIGNALS])
    stamps = np.array([int(row["timestamp"]) for _, row in steering], dtype=np.float64)
    backwards = np.flatnonzero(np.diff(stamps) <= 0)
    if len(backwards):
        raise ValueError(f"{steering_log} line {steering[backwards[0] + 1][0]}: time does not increase")
    logged = {c: np.array([float(row[c]) for _, row in steering]) for c in SIGNALS}
    rows = []
    for number, row in csv_rows(folder / "camera.csv", ["timestamp", "frame_id", "filename"])[1]:
        t = float(row["timestamp"])
        if not stamps[0] <= t <= stamps[-1]:
            dropped["frames outside the steering log's time span"] += 1
            continue
        for column in SIGNALS:
            row[column] = repr(float(np.interp(t, stamps, logged[column])))
        rows.append((number, row))
    return folder / "camera.csv", rows


def read(folder: str | Path, camera: str = "center", signals_only: bool = False) -> FrameTable:
    folder = Path(folder)
    dropped: Counter = Counter()
    if (folder / "interpolated.csv").exists():
        log = folder / "interpolated.csv"
        _, rows = csv_rows(log, NEEDED)
    elif (folder / "camera.csv").exists() and (folder / "steering.csv").exists():
        log, rows = _interpolated_rows(folder, dropped)
    else:
        raise FileNotFoundError(f"{folder}: no interpolated.csv, nor camera.csv beside steering.csv")
    images, times, values, where = [], [], [], []
    for number, row in rows:
        if row["frame_id"] != f"{camera}_camera":
            dropped[f"rows of other cameras ({row['frame_id']})"] += 1
            continue
        try:
            times.append(int(row["timestamp"]) / 1e9)
            values.append([float(row[c]) for c in SIGNALS])
        except ValueError:
            raise ValueError(f"{log} line {number}: not a number in {[row[c] for c in NEEDED]}") from None
        if not signals_only:
            image = folder / row["filename"]
            if not image.exists():
                raise FileNotFoundError(f"{log} line {number}: image {row['filename']} is not in {folder}")
            images.append(image)
        where.append(Where(log, number))
    steering, torque, speed = np.array(values).reshape(-1, 3).T
    signals = {"steering": Signal(steering, "rad"), "torque": Signal(torque, "N*m"), "speed": Signal(speed, "m/s")}
    return FrameTable(f"{folder.name}-{camera}", images, np.array(times), signals, where, dropped)


READER = Reader(
    "udacity", "Udacity Challenge 2 exports: interpolated.csv, or camera.csv beside steering.csv",
    lambda path: (path / "interpolated.csv").exists() or (path / "steering.csv").exists(), read,
    (Option("camera", str, "which camera's rows to read (default center)", ("center", "left", "right")),
     Option("signals_only", bool, "the logs without images or video, as drives without frames")))
