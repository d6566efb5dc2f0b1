"""DeepTesla and DeepPicar: a front video beside a per-frame CSV `ts_micro, frame|frame_index, wheel`.

Pairs found by name: `epochNN_steering.csv` with `epochNN_front.<mkv|mp4|avi>` (DeepTesla) and
`out-key[-N].csv` with `out-video[-N].<avi|mp4|mkv>` (DeepPicar). Time comes from the CSV, never from
the video header (DeepPicar's AVI claims 30 fps for frames captured at 20 Hz). Despite its name,
`ts_micro` holds Unix milliseconds in DeepPicar logs; the unit is read from the values' magnitude.
`wheel` is the steering-wheel angle in degrees in DeepTesla and in radians in DeepPicar; steer stores
radians, sign as recorded. With `signals_only`, logs import without their videos, as drives
without frames (for analysis).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from steer.data.drive import Signal
from steer.sources.table import FrameTable, csv_rows, seconds

VIDEO_SUFFIXES = (".mkv", ".mp4", ".avi")


def pairs(folder: Path, signals_only: bool = False) -> list[tuple[Path, Path | None, str]]:
    """(log, video, wheel unit) for every log in `folder`; the video is None with `signals_only`."""
    found = []
    for log in sorted(folder.glob("*.csv")):
        tesla = re.fullmatch(r"epoch(\d+)_steering\.csv", log.name)
        picar = re.fullmatch(r"out-key(-\d+)?\.csv", log.name)
        if not (tesla or picar):
            continue
        stem = f"epoch{tesla.group(1)}_front" if tesla else f"out-video{picar.group(1) or ''}"
        videos = [folder / (stem + s) for s in VIDEO_SUFFIXES if (folder / (stem + s)).exists()]
        if signals_only:
            videos = [None]
        elif not videos:
            raise FileNotFoundError(f"{log}: no video {stem}{{{','.join(VIDEO_SUFFIXES)}}} beside it")
        found.append((log, videos[0], "deg" if tesla else "rad"))
    if not found:
        raise FileNotFoundError(f"{folder}: no epochNN_steering.csv or out-key.csv")
    return found


def read_pair(log: Path, video: Path | None, wheel_unit: str) -> FrameTable:
    columns, table = csv_rows(log, ["ts_micro", "wheel"])
    frame_column = next((c for c in ("frame", "frame_index") if c in columns), None)
    if frame_column is None:
        raise ValueError(f"{log}: no column frame or frame_index; it has {columns}")
    rows, values = [], []
    for number, row in table:
        try:
            values.append((float(row["ts_micro"]), int(row[frame_column]), float(row["wheel"])))
        except (TypeError, ValueError):
            raise ValueError(f"{log} line {number}: not a number in {row}") from None
        rows.append(f"{log} line {number}")
    if not values:
        raise ValueError(f"{log}: no rows")
    stamps, frames, wheel = (np.array(v) for v in zip(*values))
    frames = frames - frames.min()  # DeepPicar counts from 1, DeepTesla from 0
    if np.any(np.diff(frames) <= 0):
        bad = int(np.argmax(np.diff(frames) <= 0)) + 1
        raise ValueError(f"{rows[bad]}: frame numbers must increase")
    in_video = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) if video else 0
    dropped = Counter({"video frames no row refers to": in_video - len(frames)} if in_video > frames[-1] + 1 else {})
    steering = np.radians(wheel) if wheel_unit == "deg" else wheel
    return FrameTable(log.stem, [], seconds(stamps), {"steering": Signal(steering, "rad")}, rows, dropped,
                      video=video, video_frames=frames, unit_flags={"steering": "--wheel-unit deg"})


def read(folder: str | Path, wheel_unit: str | None = None, signals_only: bool = False) -> list[FrameTable]:
    """One table per log and video pair; `wheel_unit` ("deg" or "rad") overrides the unit by name;
    with `signals_only` the videos are not read and the drives have no frames."""
    return [read_pair(log, video, wheel_unit or unit) for log, video, unit in pairs(Path(folder), signals_only)]
