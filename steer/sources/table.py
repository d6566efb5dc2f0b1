"""What every reader produces: one row per camera frame (its image file, time and signals), checked,
split into drives at time gaps and decoded in parallel into Drives."""
from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from steer.data.drive import Drive, Signal
from steer.sources.images import decode_bytes, decode_video, fit


@dataclass
class FrameTable:
    """A row's frame is an image file (`images`) or a frame of one video (`video`, `video_frames`);
    with neither, the rows are signals only and the drives have no frames."""
    name: str
    images: list[Path]
    timestamps_s: np.ndarray
    signals: dict[str, Signal]
    rows: list[str]  # where each row came from, e.g. "driving_log.csv line 12", for error messages
    dropped: Counter = field(default_factory=Counter)  # what the reader left out on purpose, by reason
    video: Path | None = None
    video_frames: np.ndarray | None = None  # 0-based frame number in the video, per row

    def __post_init__(self) -> None:
        n = len(self.timestamps_s)
        if n == 0:
            raise ValueError(f"{self.name}: no frames to import ({dict(self.dropped) or 'the source is empty'})")
        for key, signal in self.signals.items():
            values = np.asarray(signal.values, dtype=np.float64)
            if np.isnan(values).any():
                raise ValueError(f"{self.rows[int(np.argmax(np.isnan(values)))]}: {key} is NaN")
        if np.isnan(self.timestamps_s).any():
            raise ValueError(f"{self.rows[int(np.argmax(np.isnan(self.timestamps_s)))]}: time is missing")


def csv_rows(path: Path, needed: list[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV's column names and its rows as (line number, {column: text}); a missing column named."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ValueError(f"{path}: no column {missing}; it has {columns}")
        return columns, list(enumerate(reader, 2))


def seconds(stamps: np.ndarray) -> np.ndarray:
    """Unix time in s, ms, us or ns, by magnitude (a date after 2001 has 10 digits in seconds)."""
    digits = np.floor(np.log10(np.abs(stamps[0]))) + 1 if stamps[0] else 10
    return stamps / 10.0 ** max(int(digits) - 10, 0)


def split_points(timestamps_s: np.ndarray, max_gap_s: float) -> list[int]:
    """Row indices where a new drive starts: time jumps forward by more than `max_gap_s` or goes back."""
    steps = np.diff(timestamps_s)
    return [int(i) + 1 for i in np.flatnonzero((steps > max_gap_s) | (steps <= 0))]


def _decode_images(images: list[Path], size: tuple[int, int], crop: tuple[float, float],
                   processes: int | None) -> tuple[np.ndarray, list[bytes]]:
    """Frames (N, H, W, 3), a view of a channels-first array (the cache's layout, so writing them is one
    plain copy), and the sha256 of every image file, read once for both."""
    # simplejpeg, OpenCV and hashlib release the GIL while they work, so threads decode in parallel,
    # each into its own rows of one array: no process start-up, no copies.
    frames = np.empty((len(images), 3, *size), np.uint8)
    digests = [b""] * len(images)

    def decode_rows(bounds: tuple[int, int]) -> int:
        resized = np.empty((*size, 3), np.uint8)  # reused: a new array per image costs page faults
        for i in range(*bounds):
            data = images[i].read_bytes()
            digests[i] = hashlib.sha256(data).digest()
            cv2.split(fit(decode_bytes(data, images[i]), size, crop, resized), list(frames[i]))
        return bounds[1] - bounds[0]

    workers = processes or os.cpu_count() or 1
    edges = np.linspace(0, len(frames), 16 * workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(frames), unit="frame", desc="decoding",
                                                   leave=False, disable=len(frames) < 1000) as bar:
        for done in pool.map(decode_rows, zip(edges[:-1], edges[1:])):
            bar.update(done)
    return frames.transpose(0, 2, 3, 1), digests


def to_drives(table: FrameTable, size: tuple[int, int], crop: tuple[float, float], max_gap_s: float,
              processes: int | None = None) -> list[Drive]:
    """Split the table at gaps and backward steps in time, decode its images, and build Drives."""
    cuts = [0] + split_points(table.timestamps_s, max_gap_s) + [len(table.timestamps_s)]
    digests: list[bytes] = []
    if table.video:
        frames = decode_video(table.video, table.video_frames, size, crop)
    else:
        frames, digests = _decode_images(table.images, size, crop, processes)
    drives = []
    for k, (a, b) in enumerate(zip(cuts, cuts[1:])):
        name = table.name if len(cuts) == 2 else f"{table.name}-{k:02d}"
        signals = {key: Signal(s.values[a:b], s.unit) for key, s in table.signals.items()}
        meta = {"rows": f"{table.rows[a]} to {table.rows[b - 1]}"}
        if digests:  # the frames are a function of these files, the size and the crop: hash those instead
            meta["images_hash"] = hashlib.sha256(f"{size} {crop}".encode() + b"".join(digests[a:b])).hexdigest()
        drives.append(Drive(name, frames[a:b], table.timestamps_s[a:b], signals, meta=meta))
    return drives
