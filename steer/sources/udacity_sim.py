"""Udacity's self-driving car simulator: `driving_log.csv` beside a folder `IMG/`.

Columns center, left, right, steering, throttle, brake, speed, with or without a header (whose names
vary: `SteeringAngle`, `steering`). Image paths may be relative, absolute or Windows-style from
another machine: only the file name is used, looked up under `IMG/`. Time comes from the file
names (`center_2016_12_01_13_39_56_663.jpg`). Logs appended from several sessions go back in time
where a session starts; the import splits drives there.

Units: the simulator's steering is normalised to -1..1, positive = right; steer stores the opposite
sign (positive = left) and, with `steering_rad_per_unit`, radians. Speed is in mph, stored in m/s.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.table import FrameTable, read_text

MPH = 0.44704  # m/s
COLUMNS = ["center", "left", "right", "steering", "throttle", "brake", "speed"]
ALIASES = {"steeringangle": "steering", "steering_angle": "steering"}
TIME_IN_NAME = re.compile(r"(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{3})")


def _time_from_name(name: str, where: str) -> float:
    match = TIME_IN_NAME.search(name)
    if not match:
        raise ValueError(f"{where}: no time in the image name {name!r} (expected ..._YYYY_MM_DD_HH_MM_SS_mmm.jpg)")
    y, mo, d, h, mi, s, ms = (int(v) for v in match.groups())
    try:
        return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=timezone.utc).timestamp()
    except ValueError as error:
        raise ValueError(f"{where}: the time in the image name {name!r} is not a date ({error})") from None


def _rows(log: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Column names and (line number, fields) of every data row."""
    rows = csv.reader(io.StringIO(read_text(log), newline=""))
    lines = [(i + 1, [v.strip() for v in row]) for i, row in enumerate(rows) if row]
    if not lines:
        raise ValueError(f"{log}: empty log")
    first = lines[0][1]
    if first[0].lower().endswith((".jpg", ".jpeg", ".png")):
        return COLUMNS, lines
    names = [ALIASES.get(v.lower(), v.lower()) for v in first]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{log}: header {first} lacks {missing}")
    if len(lines) == 1:
        raise ValueError(f"{log}: a header and no rows")
    return names, lines[1:]


def read(folder: str | Path, camera: str = "center", steering_rad_per_unit: float | None = None,
         side_correction: float = 0.2) -> FrameTable:
    """One table for one camera (center, left or right); a side camera's steering is corrected by
    `side_correction` (simulator units) towards the centre line, as behavioural cloning does."""
    folder = Path(folder)
    log = folder / "driving_log.csv"
    if not log.exists():
        raise FileNotFoundError(f"{folder}: no driving_log.csv")
    names, lines = _rows(log)
    col = {c: names.index(c) for c in COLUMNS}
    images, times, values, rows = [], [], [], []
    for number, fields in lines:
        where = f"{log} line {number}"
        if len(fields) < len(names):
            raise ValueError(f"{where}: {len(fields)} fields, expected {len(names)}")
        name = re.split(r"[\\/]", fields[col[camera]])[-1]
        path = folder / "IMG" / name
        if not path.exists():
            raise FileNotFoundError(f"{where}: image {name} is not in {folder / 'IMG'}")
        try:
            values.append([float(fields[col[c]]) for c in ("steering", "throttle", "brake", "speed")])
        except ValueError:
            raise ValueError(f"{where}: a signal is not a number: {fields[3:]}") from None
        images.append(path)
        times.append(_time_from_name(name, where))
        rows.append(where)
    steering, throttle, brake, speed = np.array(values).T
    steering = steering + {"left": side_correction, "right": -side_correction}.get(camera, 0.0)
    steering = -steering * (steering_rad_per_unit or 1.0)
    referenced = {p.name for p in images}
    unreferenced = sum(1 for p in (folder / "IMG").glob(f"{camera}_*") if p.name not in referenced)
    dropped = Counter({f"{camera} images no row refers to": unreferenced} if unreferenced else {})
    signals = {"steering": Signal(steering, "rad" if steering_rad_per_unit else "1"),
               "throttle": Signal(throttle, "1"), "brake": Signal(brake, "1"), "speed": Signal(speed * MPH, "m/s")}
    suffix = "" if camera == "center" else f"-{camera}"
    flags = {"steering": "--steering-rad-per-unit: radians per unit of the log"}
    return FrameTable(folder.name + suffix, images, np.array(times), signals, rows, dropped, unit_flags=flags)
