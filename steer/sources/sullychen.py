"""Sully Chen's driving data sets: an image folder with `data.txt`, one line per image:
`<image> <angle>` (2017) or `<image> <angle>,<YYYY-MM-DD HH:MM:SS:ms>` (2018).

The angle is the steering-wheel angle in degrees, stored as radians, sign as recorded. The 2018
times write milliseconds after a colon without zero padding (`17:09:45:11` is 45.011 s). The 2017
set has no times: give `fps` and time is the line number over it. With `signals_only` the images
are not needed and the drive has no frames.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.table import FrameTable, read_text

LINE = re.compile(r"(?P<image>\S+)\s+(?P<angle>[^,\s]+)(?:,(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d):(?P<ms>\d{1,3}))?")


def _seconds(match: re.Match, where: str) -> float:
    try:
        stamp = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"{where}: {match['time']!r} is not a date and time") from None
    return stamp.timestamp() + int(match["ms"]) / 1000.0


def read(folder: str | Path, fps: float | None = None, signals_only: bool = False) -> FrameTable:
    folder = Path(folder)
    log = folder / "data.txt"
    if not log.exists():
        raise FileNotFoundError(f"{folder}: no data.txt")
    images, angles, times, rows = [], [], [], []
    for number, line in enumerate(read_text(log).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{log} line {number}"
        match = LINE.fullmatch(line.strip())
        if not match:
            raise ValueError(f"{where}: expected '<image> <angle>[,<date time:ms>]', got {line!r}")
        path = folder / match["image"]
        if not signals_only and not path.exists():
            raise FileNotFoundError(f"{where}: image {match['image']} is not in {folder}")
        try:
            angles.append(float(match["angle"]))
        except ValueError:
            raise ValueError(f"{where}: angle {match['angle']!r} is not a number") from None
        times.append(_seconds(match, where) if match["time"] else np.nan)
        images.append(path)
        rows.append(where)
    times = np.array(times)
    if np.isnan(times).all():
        if not fps:
            raise ValueError(f"{log} has no times: give the frame rate (fps)")
        times = np.arange(len(rows)) / fps
    steering = Signal(np.radians(angles), "rad")
    return FrameTable(folder.name, [] if signals_only else images, times, {"steering": steering}, rows)
