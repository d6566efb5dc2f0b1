"""What every reader produces: one row per camera frame (its image file, time and signals), checked,
split into drives at time gaps and decoded on all cores into Drives."""
from __future__ import annotations

import csv
import hashlib
import io
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from steer.data.cache import stage_frames
from steer.data.drive import Drive, Signal, not_finite, out_of_range, range_message
from steer.sources.images import decode_into_file, decode_video, image_size
from steer.sources.registry import Where
from steer.workers import CORES, pool

MIN_FRAMES_PER_PROCESS = 64  # below this, starting a process costs more than it saves


@dataclass
class FrameTable:
    """A row's frame is an image file (`images`), a frame of one video (`video`, `video_frames`) or a
    frame the reader decodes itself (`decode`, `video_frames`: a bag's messages, an HDF5 data set);
    with none, the rows are signals only and the drives have no frames."""
    name: str
    images: list[Path]
    timestamps_s: np.ndarray
    signals: dict[str, Signal]
    rows: list[Where]  # where each row came from, e.g. driving_log.csv line 12: in error messages, hashed
    dropped: Counter = field(default_factory=Counter)  # what the reader left out on purpose, by reason
    video: Path | None = None
    video_frames: np.ndarray | None = None  # 0-based frame number in the video (or of `decode`), per row
    # (frame numbers, size, crop, processes) -> those frames, (rows, H, W, 3) uint8
    decode: Callable[[np.ndarray, tuple[int, int], tuple[float, float], int | None], np.ndarray] | None = None
    unit_flags: dict[str, str] = field(default_factory=dict)  # per signal: the option that sets its unit

    def __post_init__(self) -> None:
        n = len(self.timestamps_s)
        if n == 0:
            raise ValueError(f"{self.name}: no frames to import ({dict(self.dropped) or 'the source is empty'})")
        for key, signal in self.signals.items():
            if bad := not_finite(np.asarray(signal.values, dtype=np.float64)):
                raise ValueError(f"{self.rows[bad[0]]}: {key} is {bad[1]}; steer takes finite values only")
        if bad := not_finite(self.timestamps_s):
            raise ValueError(f"{self.rows[bad[0]]}: time is {'missing' if bad[1] == 'NaN' else 'infinite'}")


def read_text(path: Path) -> str:
    """A text file's contents, UTF-8 with or without a byte-order mark (as Excel saves CSV); bytes that
    are not UTF-8 are refused naming the file and line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ValueError(f"{path} line {line}: byte 0x{data[error.start]:02x} is not UTF-8 text; save the "
                         f"file as UTF-8") from None


def csv_rows(path: Path, needed: list[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV's column names and its rows as (line number, {column: text}); refused, naming the file and
    line: a missing or twice-named column, a row without a cell for a needed column, a file without rows."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        columns = list(reader.fieldnames or [])
        twice = sorted({c for c in columns if c and columns.count(c) > 1})
        if twice:
            raise ValueError(f"{path} line 1: column {twice[0]!r} appears twice; which one is meant?")
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ValueError(f"{path}: no column {missing}; it has {columns}")
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise ValueError(f"{path} line {reader.line_num}: {error}") from None
    short = next((number for number, row in rows if any(row[c] is None for c in needed)), None)
    if short is not None:
        raise ValueError(f"{path} line {short}: fewer cells than the header's {len(columns)} columns")
    if not rows:
        raise ValueError(f"{path}: a header and no rows")
    return columns, rows


def check_table(table: FrameTable, limits: dict[str, float] | None = None, drop_repeats: bool = False) -> FrameTable:
    """Refuse a value beyond its physical range (naming the row and the option that sets its unit) and
    a time that repeats the row before (or, with `drop_repeats`, leave those rows out, counted)."""
    bad = out_of_range(table.signals, limits)
    if bad:
        key, row, limit = bad
        hint = table.unit_flags.get(key)
        raise ValueError(f"{table.rows[row]}: {range_message(key, table.signals[key], row, limit, hint)}")
    repeats = np.flatnonzero(np.diff(table.timestamps_s) == 0) + 1
    if len(repeats) and not drop_repeats:
        first = repeats[0]
        raise ValueError(f"{table.rows[first]}: time {float(table.timestamps_s[first])!r} s repeats the row before's "
                         f"({len(repeats)} such rows); give --repeated-times drop to keep the first of each")
    return _drop_rows(table, repeats) if len(repeats) else table


def _drop_rows(table: FrameTable, rows: np.ndarray) -> FrameTable:
    keep = np.ones(len(table.timestamps_s), bool)
    keep[rows] = False
    index = np.flatnonzero(keep)
    return replace(table, images=[table.images[i] for i in index] if table.images else [],
                   timestamps_s=table.timestamps_s[keep], rows=[table.rows[i] for i in index],
                   signals={k: Signal(np.asarray(s.values)[keep], s.unit) for k, s in table.signals.items()},
                   video_frames=None if table.video_frames is None else table.video_frames[keep],
                   dropped=table.dropped + Counter({"rows repeating the time of the row before": len(rows)}))


def seconds(stamps: np.ndarray) -> np.ndarray:
    """Unix time in s, ms, us or ns, by magnitude (a date after 2001 has 10 digits in seconds)."""
    digits = np.floor(np.log10(np.abs(stamps[0]))) + 1 if stamps[0] else 10
    return stamps / 10.0 ** max(int(digits) - 10, 0)


def split_points(timestamps_s: np.ndarray, max_gap_s: float) -> list[int]:
    """Row indices where a new drive starts: time jumps forward by more than `max_gap_s` or goes back."""
    steps = np.diff(timestamps_s)
    return [int(i) + 1 for i in np.flatnonzero((steps > max_gap_s) | (steps <= 0))]


def drive_spans(table: FrameTable, max_gap_s: float) -> list[tuple[str, int, int]]:
    """The drives a table splits into at gaps and backward steps in time: (name, first row, end row)."""
    cuts = [0] + split_points(table.timestamps_s, max_gap_s) + [len(table.timestamps_s)]
    return [(table.name if len(cuts) == 2 else f"{table.name}-{k:02d}", a, b)
            for k, (a, b) in enumerate(zip(cuts, cuts[1:]))]


def to_drives(tables: list[FrameTable], size: tuple[int, int], crop: tuple[float, float], max_gap_s: float,
              cache: Path, processes: int | None = None, resize_odd: bool = False) -> list[Drive]:
    """Split the tables into drives and decode their frames: image files straight into files staged in
    the frame cache at `cache` (nothing is left there on failure), videos in memory. An image of
    another size than its drive's first is refused, or with `resize_odd` resized like the rest and
    counted in the drive's meta."""
    spans = [(table, *span) for table in tables for span in drive_spans(table, max_gap_s)]
    jobs: dict[str, tuple[Path, int, list[Path]]] = {}  # drive: its staged file, offset, images
    try:
        for table, name, a, b in spans:
            if table.images:
                jobs[name] = (*stage_frames(cache, name, b - a, size), table.images[a:b])
        decoded = _decode_staged(jobs, size, crop, processes, resize_odd)
        videos = {id(t): t.decode(t.video_frames, size, crop, processes) if t.decode else
                  decode_video(t.video, t.video_frames, size, crop) for t in tables if t.video or t.decode}
        return [_drive(table, name, a, b, jobs[name][0] if name in jobs else None, *decoded.get(name, ([], 0)),
                       videos.get(id(table)), size, crop) for table, name, a, b in spans]
    except BaseException:
        for path, _, _ in jobs.values():
            path.unlink(missing_ok=True)
        raise


def _drive(table: FrameTable, name: str, a: int, b: int, frames_file: Path | None, digests: list[bytes],
           resized: int, video: np.ndarray | None, size: tuple[int, int], crop: tuple[float, float]) -> Drive:
    meta = {"rows": f"{table.rows[a]} to {table.rows[b - 1]}"}
    if frames_file:
        frames = np.load(frames_file, mmap_mode="r").transpose(0, 2, 3, 1)
        # the frames are a function of these files, the size and the crop: hash those instead
        meta["images_hash"] = hashlib.sha256(f"{size} {crop}".encode() + b"".join(digests)).hexdigest()
    else:
        frames = video[a:b] if video is not None else np.empty((0, *size, 3), np.uint8)
    if resized:
        meta["odd_frames_resized"] = resized
    signals = {key: Signal(s.values[a:b], s.unit) for key, s in table.signals.items()}
    return Drive(name, frames, table.timestamps_s[a:b], signals, meta=meta, frames_file=frames_file)


def _decode_staged(jobs: dict[str, tuple[Path, int, list[Path]]], size: tuple[int, int], crop: tuple[float, float],
                   processes: int | None, resize_odd: bool) -> dict[str, tuple[list[bytes], int]]:
    """Decode each drive's images into its staged file (from its byte offset on), in equal chunks of
    frames spread over `processes` processes; returns each drive's image digests and how many of its
    images had another size than its first (resized where `resize_odd`, else refused)."""
    frame_bytes = 3 * size[0] * size[1]
    first = {name: image_size(images[0]) for name, (_, _, images) in jobs.items()}
    frames = [(name, path, offset + i * frame_bytes, str(image))
              for name, (path, offset, images) in jobs.items() for i, image in enumerate(images)]
    workers = max(1, min(processes or CORES, len(frames) // MIN_FRAMES_PER_PROCESS))
    # Two chunks a process balance the load; more cost more in messages than they gain (measured), but
    # a long import still gets a moving progress bar. A chunk may span drives.
    step = max(1, min(-(-len(frames) // (2 * workers)), 500))
    chunks = [_segments(frames[i:i + step], first) for i in range(0, len(frames), step)]
    decoded: dict[str, tuple[list[bytes], int]] = {name: ([], 0) for name in jobs}
    with _mapper(workers) as mapper, tqdm(total=len(frames), unit="frame", desc="decoding", leave=False,
                                          disable=len(frames) < 1000 or not sys.stderr.isatty()) as bar:
        for done in mapper(partial(_decode_chunk, size=size, crop=crop, resize_odd=resize_odd), chunks):  # in order
            for name, (got, odd) in done:
                decoded[name] = (decoded[name][0] + got, decoded[name][1] + odd)
                bar.update(len(got))
    return decoded


def _segments(frames: list[tuple[str, Path, int, str]],
              first: dict[str, tuple[int, int]]) -> list[tuple[str, Path, int, list[str], tuple[int, int]]]:
    """Consecutive frames of one drive as (drive, file, offset of the first, images, the drive's image size)."""
    segments = []
    for (name, path), group in groupby(frames, key=lambda frame: frame[:2]):
        group = list(group)
        segments.append((name, path, group[0][2], [image for *_, image in group], first[name]))
    return segments


def _decode_chunk(segments: list[tuple[str, Path, int, list[str], tuple[int, int]]], size: tuple[int, int],
                  crop: tuple[float, float], resize_odd: bool) -> list[tuple[str, tuple[list[bytes], int]]]:
    return [(name, decode_into_file(path, offset, images, size, crop, shape, resize_odd))
            for name, path, offset, images, shape in segments]


@contextmanager
def _mapper(workers: int):
    """`map` over `workers` processes, or in this one. Forked: a fresh interpreter would import numpy
    and OpenCV again, which takes longer than decoding a small drive."""
    if workers == 1:
        yield map
        return
    # OpenCV's thread count is left alone: setting it in a forked child waits forever for the parent's
    # threads, which were not copied (a test starts them first).
    with pool(workers) as workers_pool:
        yield partial(workers_pool.imap, chunksize=1)
