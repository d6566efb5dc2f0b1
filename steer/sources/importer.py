"""`steer import`: a recording in a known layout into the frame cache, once.

Each drive's manifest entry records the format, the source folder, a hash of the source's log files
and image list, the units, the frame size, the crop and the median frame rate. Importing a source
whose hash is already in the cache does nothing, unless its drives' files no longer match their
recorded sha256: then it writes them again (a repair).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from steer.data.cache import locked, problem, read_manifest, unstage, write_drives
from steer.data.drive import SHORT_FRAMES
from steer.durable import check_room
from steer.sources.images import aspect_mismatch, aspect_size, image_size
from steer.sources.registry import detect, fingerprint, reader
from steer.sources.table import FrameTable, check_table, drive_spans, to_drives


def source_hash(tables: list[FrameTable], options: dict) -> str:
    """Of the logs' contents, every image's name and size, and the import options."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for table in tables:
        for log in sorted({Path(row.file) for row in table.rows}):
            if log.is_file() and log.suffix != ".json":
                h.update(fingerprint(log))
        frames = table.images or ([table.video] * len(table.rows) if table.video else [])
        for path, row in zip(frames, table.rows):
            h.update(f"{path.name}:{path.stat().st_size}:{row}".encode())
    return h.hexdigest()[:16]


DEFAULT_SIZE = (66, 200)  # PilotNet's input, for sources whose image size is not known before decoding


def import_recording(source: str | Path, out: str | Path, fmt: str | None = None, size: tuple[int, int] | None = None,
                     crop: tuple[float, float] = (0.0, 0.0), max_gap_s: float = 1.0, processes: int | None = None,
                     limits: dict[str, float] | None = None, repeated_times: str = "refuse", odd_frames: str = "refuse",
                     lock_timeout_s: float = 600.0, stretch: bool = False, **options) -> dict:
    """Import `source` into the cache at `out`; returns a report (drives and their rows, frames, what
    was left out on purpose, drives too short to train on). Rows and frames differ only for signal-only
    drives, which have no frames. Every value is checked before anything is written (`limits` widens
    a signal's range, `repeated_times="drop"` leaves out rows whose time repeats); frames are decoded
    unlocked into this process's staging and committed under the cache's lock. Without `size`, frames are
    66 rows high at the aspect of the images, cropped (DEFAULT_SIZE where their size is not known without
    decoding them: bags, HDF5); images of another aspect than `size` are refused unless `stretch`."""
    source, out = Path(source), Path(out)
    fmt = fmt or detect(source)
    layout = reader(fmt)
    takes = sorted(option.name for option in layout.options)
    foreign = sorted(set(options) - set(takes))
    if foreign:
        raise ValueError(f"{source} is {fmt}, which takes no option {foreign}; it takes {takes}")
    tables = [check_table(t, limits, repeated_times == "drop") for t in layout.tables(source, **options)]
    shapes = {name: shape for table in tables if (shape := camera_shape(table))
              for name, _, _ in drive_spans(table, max_gap_s)}
    size = size or (aspect_size(next(iter(shapes.values())), crop, DEFAULT_SIZE[0]) if shapes else DEFAULT_SIZE)
    digest = source_hash(tables, {"format": fmt, "size": size, "crop": crop, "max_gap_s": max_gap_s, **options})
    for shape in {} if stretch else set(shapes.values()):
        if why := aspect_mismatch(shape, crop, size):
            raise ValueError(f"{source}: --size {size[0]}x{size[1]}: {why}")
    names = [name for table in tables for name, _, _ in drive_spans(table, max_gap_s)]
    damaged = _in_cache(out, digest, names, source)
    if damaged == []:
        return {"source": str(source), "skipped": "already in the cache", "source_hash": digest}
    check_room(out, cache_bytes(tables, size))
    drives = []
    try:
        drives = to_drives(tables, size, crop, max_gap_s, out, processes, odd_frames == "resize")
        for drive in drives:
            steps = np.diff(drive.timestamps_s)
            drive.meta.update({"format": fmt, "source": str(source.resolve()), "source_hash": digest,
                               "size": list(size), "crop": list(crop),
                               "fps": float(1 / np.median(steps)) if len(steps) else None,
                               **({"signals_only": True} if not len(drive.frames) else {}),
                               **({"source_shape": list(shapes[drive.name])} if drive.name in shapes else {}),
                               "source_drives": len(drives)})  # an interrupted import left fewer: done again
        with locked(out, lock_timeout_s):
            if _in_cache(out, digest, names, source) == []:  # another import of it finished meanwhile
                return {"source": str(source), "skipped": "already in the cache", "source_hash": digest}
            write_drives(out, drives, lock_timeout_s)
    finally:  # the cache moved in the frames of the drives it took; what is left was never written
        for drive in drives:
            if drive.frames_file:
                drive.frames_file.unlink(missing_ok=True)
        unstage(out)
    dropped = sum((table.dropped for table in tables), Counter())
    resized = sum(d.meta.get("odd_frames_resized", 0) for d in drives)
    return {"source": str(source), "format": fmt, "size": list(size), "drives": {d.name: len(d) for d in drives},
            "rows": sum(len(d) for d in drives), "frames": sum(len(d.frames) for d in drives),
            **({"signals_only": "drives without frames, for analysis: training skips them"}
               if not any(len(d.frames) for d in drives) else {}),
            "dropped": dict(dropped), **({"odd_frames_resized": resized} if resized else {}),
            **({"repaired": damaged} if damaged else {}),
            "short_drives": {d.name: len(d) for d in drives if len(d) < SHORT_FRAMES}, "source_hash": digest}


def cache_bytes(tables: list[FrameTable], size: tuple[int, int]) -> int:
    """What importing `tables` adds to a cache: their frames (uint8, 3 x size) and signals (a CSV cell
    holds at most 25 bytes)."""
    frames = sum(len(t.rows) for t in tables if t.images or t.video or t.decode)
    cells = sum(len(t.rows) * (len(t.signals) + 1) for t in tables)
    return frames * 3 * size[0] * size[1] + cells * 25


def camera_shape(table: FrameTable) -> tuple[int, int] | None:
    """(height, width) of a table's camera images where that is known without decoding them (the first image
    file's header, a video's), else None."""
    if table.images:
        return tuple(image_size(table.images[0]))
    if table.video is not None and table.decode is None:
        capture = cv2.VideoCapture(str(table.video))
        shape = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        capture.release()
        return shape if all(shape) else None
    return None


def _in_cache(out: Path, digest: str, names: list[str], source: Path) -> list[str] | None:
    """Whether the cache holds this import already: its damaged drives ([] when it holds all of them
    intact), or None when it holds not all of them. Drives of the same names from another source are
    refused."""
    before = read_manifest(out)["drives"]
    taken = {d["name"]: d["meta"].get("source") for d in before if d["meta"].get("source_hash") != digest}
    clash = [name for name in names if name in taken]
    if clash:
        raise ValueError(f"{out} already holds drives named {clash} (from {taken[clash[0]]}); "
                         f"import {source} into another cache or rename its folder")
    done = [d for d in before if d["meta"].get("source_hash") == digest]
    if not done or len(done) != done[0]["meta"].get("source_drives"):
        return None
    return [d["name"] for d in done if problem(out, d, content=True)]
