"""Any recording: a video or a folder of images beside a CSV, described by options instead of a known
layout (`steer import --config FILE.json` takes the same keys from a file).

    frames:  "video.mp4" (a video in the folder; the frame column holds frame numbers) or "images/"
             (a folder; the frame column holds file names); none with `signals_only`
    csv:     the CSV file (default: the only one in the folder)
    frame:   the frame column; `frame_base` is the number of the video's first frame (0 or 1)
    time:    the time column and `time_unit` (s, ms, us, ns, or unix: s/ms/us/ns by magnitude),
             or no column and `fps`
    signals: "steering=wheel:deg,speed=spd:km/h" - steer's name = the CSV column : its unit
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.registry import Option, Reader, Where
from steer.sources.table import FrameTable, csv_rows, seconds

# unit in the file -> (factor to steer's unit, steer's unit)
UNITS = {"rad": (1.0, "rad"), "deg": (np.pi / 180, "rad"), "m/s": (1.0, "m/s"), "km/h": (1 / 3.6, "m/s"),
         "mph": (0.44704, "m/s"), "1": (1.0, "1"), "percent": (0.01, "1"), "N*m": (1.0, "N*m")}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_signals(spec: str) -> dict[str, tuple[str, str]]:
    """"steering=wheel:deg,speed=spd:km/h" -> {"steering": ("wheel", "deg"), "speed": ("spd", "km/h")}."""
    out = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, rest = item.partition("=")
        column, _, unit = rest.rpartition(":")
        if not (name and column and unit):
            raise ValueError(f"signal {item!r}: expected name=column:unit, e.g. steering=wheel:deg")
        if unit not in UNITS:
            raise ValueError(f"signal {item!r}: unknown unit {unit!r}; known: {', '.join(UNITS)}")
        out[name] = (column, unit)
    return out


def _csv_file(folder: Path, name: str | None) -> Path:
    if name:
        return folder / name
    found = sorted(folder.glob("*.csv"))
    if len(found) == 1:
        return found[0]
    if not found and any(p.is_dir() and any(p.glob("*.csv")) for p in folder.iterdir()):
        raise ValueError(f"{folder}: no CSV file, but folders holding one: give each folder as its own source "
                         f"(steer import {folder}/* ...)")
    raise ValueError(f"{folder}: {len(found)} CSV files; say which with --csv-file NAME")


def read(folder: str | Path, signals: str = "", frames: str = "", csv_file: str | None = None,
         frame: str = "frame", frame_base: int = 0, time: str | None = None, time_unit: str = "s",
         fps: float | None = None, signals_only: bool = False) -> FrameTable:
    folder = Path(folder)
    wanted = parse_signals(signals)
    if not wanted:
        raise ValueError("generic: give the signals, e.g. --signals steering=wheel:deg")
    if bool(frames) == signals_only:
        raise ValueError(f"{folder}: give the frames (--frames VIDEO or --frames IMAGE_FOLDER) or --signals-only "
                         "for the log alone, as drives without frames" + (", not both" if frames else ""))
    log = _csv_file(folder, csv_file)
    needed = [c for c, _ in wanted.values()] + [c for c in (time,) if c] + ([frame] if frames else [])
    _, table = csv_rows(log, needed)
    rows = [Where(log, number) for number, _ in table]

    def numbers(column: str) -> np.ndarray:
        try:
            return np.array([float(row[column]) for _, row in table])
        except ValueError:
            bad = next(n for n, row in table if not _is_number(row[column]))
            raise ValueError(f"{log} line {bad}: {column} is not a number") from None

    if time:
        stamps = numbers(time)
        times = seconds(stamps) if time_unit == "unix" else stamps * TIME_UNITS[time_unit]
    elif fps:
        times = np.arange(len(table)) / fps
    else:
        raise ValueError(f"{log}: give a time column or the frame rate (fps)")
    out = {name: Signal(numbers(column) * UNITS[unit][0], UNITS[unit][1]) for name, (column, unit) in wanted.items()}
    flags = {name: f"--signals {name}={column}:UNIT" for name, (column, _) in wanted.items()}
    source = folder / frames if frames else None
    if source is not None and source.is_dir():
        images = [source / row[frame] for _, row in table]
        absent = next((i for i, p in enumerate(images) if not p.exists()), None)
        if absent is not None:
            raise FileNotFoundError(f"{rows[absent]}: image {images[absent].name} is not in {source}")
        return FrameTable(folder.name, images, times, out, rows, unit_flags=flags)
    if source is not None:
        indices = numbers(frame).astype(int) - frame_base
        bad = np.flatnonzero((np.diff(indices, prepend=-1) <= 0))
        if len(bad):
            raise ValueError(f"{rows[bad[0]]}: frame numbers must increase from {frame_base}")
        return FrameTable(folder.name, [], times, out, rows, video=source, video_frames=indices, unit_flags=flags)
    return FrameTable(folder.name, [], times, out, rows, unit_flags=flags)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


READER = Reader(
    "generic", "anything else: a video or an image folder beside a CSV, described by options (never detected)",
    lambda path: False, read,
    (Option("signals", str, "steer's name=CSV column:unit, e.g. steering=wheel:deg,speed=v:km/h"),
     Option("frames", str, "a video file or an image folder, relative to the source"),
     Option("csv_file", str, "the CSV (default: the only one in the source)"),
     Option("frame", str, "the column of frame numbers or image names (default frame)"),
     Option("frame_base", int, "number of the video's first frame (default 0)"),
     Option("time", str, "the time column (else --fps)"),
     Option("time_unit", str, "(default s)", ("s", "ms", "us", "ns", "unix")),
     Option("fps", float, "frame rate where the log has no times"),
     Option("signals_only", bool, "the logs without images or video, as drives without frames")))
