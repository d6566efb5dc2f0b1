"""The on-disk frame cache: each drive's frames decoded once into a uint8 array that training memory-maps.

Layout (plain files a person can open):

    cache/manifest.json                 frame shape, and per drive: name, frame count, signal units, hash
    cache/drives/<name>/frames.npy      (N, C, H, W) uint8, channels first: the shape the model eats
    cache/drives/<name>/signals.csv     time_s and one column per signal

A drive is written under a temporary name and renamed when complete, and the manifest is replaced
atomically after each drive, so an interrupted write leaves a valid cache holding the finished drives.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from steer.data.drive import Drive

MANIFEST = "manifest.json"


@dataclass
class CachedDrive:
    name: str
    frames: np.ndarray  # (N, C, H, W) uint8, memory-mapped
    timestamps_s: np.ndarray
    signals: dict[str, np.ndarray]
    units: dict[str, str]
    cache: Path | None = None  # the frame cache it came from, where data derived from it is stored
    lead_in: "CachedDrive | None" = None  # a part's frames before it, which a car driving it saw first

    def __len__(self) -> int:
        return len(self.timestamps_s)

    def part(self, start: int, stop: int) -> "CachedDrive":
        """Frames start..stop-1 as a drive of their own (still memory-mapped), named `name@start:stop`."""
        if not 0 <= start < stop <= len(self):
            raise ValueError(f"drive {self.name!r} has {len(self)} frames, no part {start}:{stop}")
        return CachedDrive(f"{self.name}@{start}:{stop}", self.frames[start:stop], self.timestamps_s[start:stop],
                           {k: v[start:stop] for k, v in self.signals.items()}, self.units, self.cache,
                           self.part(0, start) if start else None)

    def targets(self, names: list[str]) -> np.ndarray:
        """(N, K) float32 of the named signals, in the cache's units."""
        missing = [n for n in names if n not in self.signals]
        if missing:
            raise KeyError(f"drive {self.name!r} has no signal {missing}; it has {sorted(self.signals)}")
        return np.stack([self.signals[n] for n in names], axis=1).astype(np.float32)


def part_of(name: str) -> tuple[str, tuple[int, int] | None]:
    """The drive a name refers to and, for a part `name@start:stop`, its frames (start, stop)."""
    base, _, span = name.partition("@")
    return base, tuple(int(v) for v in span.split(":")) if span else None


def drive_hash(drive: Drive) -> str:
    """Of the frames, timestamps and signals. An importer that hashed the image files the frames were
    decoded from, with the size and crop, puts that in the meta as `images_hash`: it stands for the
    frames, the same identity for a tenth of the bytes to hash."""
    images_hash = drive.meta.get("images_hash")
    h = hashlib.sha256(images_hash.encode() if images_hash else np.ascontiguousarray(drive.frames).data)
    h.update(drive.timestamps_s.tobytes())
    for key in sorted(drive.signals):
        h.update(key.encode() + drive.signals[key].values.tobytes())
    return h.hexdigest()[:16]


def read_manifest(root: str | Path) -> dict:
    """The manifest of the cache at `root`, or an empty one where there is no cache yet; reading it
    opens no drive."""
    path = Path(root) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"version": 1, "drives": []}


def stage_frames(root: str | Path, name: str, count: int, size: tuple[int, int]) -> tuple[Path, int]:
    """A new (count, 3, *size) uint8 .npy file in the cache at `root` for drive `name`'s frames, which
    decoders fill in place before the drive is complete; a Drive naming it as `frames_file` is moved
    into the cache, not copied. Returns the path and the byte offset where the frames start."""
    path = Path(root) / "drives" / f".{name}.frames.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.lib.format.open_memmap(path, "w+", np.uint8, (count, 3, *size))  # sparse until written
    offset = frames.offset
    del frames
    return path, offset


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to (with the same suffix, for writers that go by it); it
    becomes `path` when the block ends, and is removed if the block fails: no reader sees half a file."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: dict | list) -> None:
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


class FrameCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"{self.root} is not a frame cache: {MANIFEST} is missing")
        self.manifest = json.loads(path.read_text())
        self.drives = [self._open(entry) for entry in self.manifest["drives"]]

    @staticmethod
    def create(root: str | Path, drives: "list[Drive] | object") -> "FrameCache":
        """Write `drives` (any iterable) into a cache at `root` (see `write_drives`) and open it."""
        write_drives(root, drives)
        return FrameCache(root)

    def _open(self, entry: dict) -> CachedDrive:
        folder = self.root / "drives" / entry["name"]
        frames = np.load(folder / "frames.npy", mmap_mode="r")
        table = np.loadtxt(folder / "signals.csv", delimiter=",", skiprows=1, ndmin=2)
        columns = (folder / "signals.csv").open().readline().strip().split(",")
        signals = {name: table[:, i] for i, name in enumerate(columns) if name != "time_s"}
        return CachedDrive(entry["name"], frames, table[:, 0], signals, entry["units"], self.root)

    def by_name(self, names: list[str]) -> list[CachedDrive]:
        """Drives by name; `name@start:stop` is that part of a drive."""
        index = {d.name: d for d in self.drives}
        unknown = [n for n in names if part_of(n)[0] not in index]
        if unknown:
            raise KeyError(f"no drive {unknown} in the cache at {self.root}")
        found = []
        for name in names:
            base, span = part_of(name)
            found.append(index[base].part(*span) if span else index[base])
        return found

    def hashes(self) -> dict[str, str]:
        return {d["name"]: d["hash"] for d in self.manifest["drives"]}


def write_drives(root: str | Path, drives: "list[Drive] | object") -> None:
    """Write `drives` (any iterable) into a cache at `root`, replacing drives of the same name. Opens
    none of the cache's drives: that costs about 0.5 ms a drive, which an import into a large cache
    would pay for nothing."""
    root = Path(root)
    (root / "drives").mkdir(parents=True, exist_ok=True)
    path = root / MANIFEST
    manifest = read_manifest(root)
    for drive in drives:
        entry = _write_drive(root, drive)
        if manifest.setdefault("frame_shape", entry["frame_shape"]) != entry["frame_shape"]:
            raise ValueError(f"drive {drive.name!r} has frames {entry['frame_shape']}, the cache at "
                             f"{root} holds {manifest['frame_shape']}")
        manifest["drives"] = [d for d in manifest["drives"] if d["name"] != drive.name] + [entry]
        write_json(path, manifest)


def _write_drive(root: Path, drive: Drive) -> dict:
    folder = root / "drives" / drive.name
    tmp = root / "drives" / f".{drive.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if drive.frames_file:
        os.replace(drive.frames_file, tmp / "frames.npy")
    else:  # one write() call: writing through a memory map costs a page fault per 4 KiB
        np.save(tmp / "frames.npy", drive.frames.transpose(0, 3, 1, 2))
    names = sorted(drive.signals)
    table = np.column_stack([drive.timestamps_s] + [drive.signals[n].values for n in names])
    np.savetxt(tmp / "signals.csv", table, delimiter=",", header=",".join(["time_s"] + names),
               comments="", fmt="%.17g")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return {"name": drive.name, "frames": len(drive), "frame_shape": [3, *drive.frames.shape[1:3]],
            "units": {n: drive.signals[n].unit for n in names}, "hash": drive_hash(drive),
            "meta": drive.meta}
