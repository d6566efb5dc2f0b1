"""AirSim's car recordings: `airsim_rec.txt` (tab-separated, a header line) beside a folder `images/`.

Columns as AirSim writes them: `TimeStamp` (Unix ms; the unit is read from the magnitude), `Throttle`,
`Steering`, `Brake`, `Speed` (m/s), `ImageFile` (the row's images, `;`-separated where several cameras
or image kinds are recorded); the Autonomous Driving Cookbook's older files name them `Timestamp`,
`Speed (kmph)` and `ImageName`, read too. Steering is AirSim's normalised value, positive = right:
steer stores the opposite sign (positive = left), unit `1`; throttle and brake as recorded.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.registry import Option, Reader, Where
from steer.sources.table import FrameTable, read_text, seconds

LOG = "airsim_rec.txt"
# what steer reads: the names AirSim's versions give the column
COLUMNS = {"time": ("TimeStamp", "Timestamp"), "throttle": ("Throttle",), "steering": ("Steering",),
           "brake": ("Brake",), "speed": ("Speed", "Speed (kmph)"), "image": ("ImageFile", "ImageName")}


def _columns(log: Path, header: list[str]) -> dict[str, str]:
    found = {}
    for key, names in COLUMNS.items():
        found[key] = next((n for n in names if n in header), None)
        if found[key] is None:
            raise ValueError(f"{log} line 1: no column {' or '.join(names)}; it has {header}")
    return found


def read(folder: str | Path, image: int = 0) -> FrameTable:
    """`image`: which of a row's `;`-separated images (0: the first)."""
    folder = Path(folder)
    log = folder / LOG
    if not log.exists():
        raise FileNotFoundError(f"{folder}: no {LOG}")
    text = csv.reader(io.StringIO(read_text(log), newline=""), delimiter="\t")
    lines = [(n, row) for n, row in enumerate(text, 1) if row]
    if len(lines) < 2:
        raise ValueError(f"{log}: no rows below the header")
    header = [name.strip() for name in lines[0][1]]
    col = {key: header.index(name) for key, name in _columns(log, header).items()}
    images, values, rows = [], [], []
    for number, fields in lines[1:]:
        where = Where(log, number)
        if len(fields) < len(header):
            raise ValueError(f"{where}: {len(fields)} fields, expected {len(header)}")
        try:
            values.append([float(fields[col[k]]) for k in ("time", "throttle", "steering", "brake", "speed")])
        except ValueError:
            raise ValueError(f"{where}: not a number in {fields}") from None
        names = fields[col["image"]].split(";")
        if image >= len(names):
            raise ValueError(f"{where}: no image {image}; the row has {len(names)} ({fields[col['image']]})")
        path = folder / "images" / names[image].strip()
        if not path.exists():
            raise FileNotFoundError(f"{where}: image {names[image]} is not in {folder / 'images'}")
        images.append(path)
        rows.append(where)
    time, throttle, steering, brake, speed = np.array(values).T
    kmh = header[col["speed"]] == "Speed (kmph)"
    signals = {"steering": Signal(-steering, "1"), "throttle": Signal(throttle, "1"), "brake": Signal(brake, "1"),
               "speed": Signal(speed / 3.6 if kmh else speed, "m/s")}
    return FrameTable(folder.name, images, seconds(time), signals, rows)


READER = Reader("airsim", "AirSim car recordings: airsim_rec.txt beside images/",
                lambda path: (path / LOG).exists(), read,
                (Option("image", int, "which of a row's ;-separated images (default 0, the first)"),))
