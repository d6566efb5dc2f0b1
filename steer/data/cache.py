"""The on-disk frame cache: each drive's frames decoded once into a uint8 array that training memory-maps.

Layout (plain files a person can open):

    cache/manifest.json                 frame shape, and per drive: name, folder, frame count, signal units,
                                        hash, and the sha256 of its two files
    cache/drives/<folder>/frames.npy    (N, C, H, W) uint8, channels first: the shape the model eats
    cache/drives/<folder>/signals.csv   time_s and one column per signal
    cache/.lock                         the writers' lock (filelock); it names the process holding it
    cache/.staging/<host>-<pid>/        what one writer prepares before it holds the lock

Safe to share: a writer stages a drive's files unlocked, then, holding the lock, moves them into a
folder no manifest entry names and replaces the manifest: the manifest is the commit point, so it never
names a folder before that folder is complete. What an interrupted writer left (a folder no entry
names, the staging of a process that is gone) is swept by the next writer. Opening a cache checks
every entry's files against the shapes it records (again if a writer replaced the manifest meanwhile);
`verify` re-hashes them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from filelock import FileLock, Timeout

from steer.data.drive import MEANT, Drive, finite_number
from steer.durable import commit, room_in, write_json
from steer.errors import SteerError

MANIFEST = "manifest.json"
LOCK = ".lock"
STAGING = ".staging"
FILES = ("frames.npy", "signals.csv")
ENTRY_KEYS = {"name", "frames", "frame_shape", "units", "hash", "meta"}


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

    def labelled(self, meant: list[str]) -> "CachedDrive":
        """The drive with the `<name>_meant` signal (what its driver meant, not what was in force) in place of
        `<name>` for each name of `meant` it records; as it is where it records none."""
        found = {name: self.signals[name + MEANT] for name in meant if name + MEANT in self.signals}
        if not found:
            return self
        return replace(self, signals={**self.signals, **found},
                       lead_in=self.lead_in.labelled(meant) if self.lead_in else None)

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


def frames_made(manifest: dict, names: list[str]) -> dict:
    """How the cache made the frames of drives `names` (parts `name@a:b` too) from their camera's images:
    size, crop (None where the drives differ: `crops` lists them), colour order, and the camera's image
    size where the drives record one alike (else None). What a checkpoint keeps for `Pilot`."""
    wanted = {part_of(name)[0] for name in names}
    metas = [e["meta"] for e in manifest["drives"] if e["name"] in wanted]
    crops = sorted({tuple(m.get("crop", (0.0, 0.0))) for m in metas})
    shapes = {tuple(m["source_shape"]) if "source_shape" in m else None for m in metas}
    return {"size": list(manifest["frame_shape"][1:]), "crop": list(crops[0]) if len(crops) == 1 else None,
            **({"crops": [list(c) for c in crops]} if len(crops) > 1 else {}), "colour": "RGB",
            "source_shape": list(next(iter(shapes))) if len(shapes) == 1 and None not in shapes else None}


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
    opens no drive. A truncated or garbled manifest is one error naming the file."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return {"version": 1, "drives": []}
    try:
        manifest = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        raise SteerError(f"{path}{where}: the frame cache's manifest is truncated or garbled ({error}); "
                         f"restore it, or import the recordings again into a new cache") from None
    entries = manifest.get("drives") if isinstance(manifest, dict) else None
    bad = next((i for i, e in enumerate(entries or []) if not (isinstance(e, dict) and ENTRY_KEYS <= set(e))), None)
    if not isinstance(entries, list) or bad is not None:
        what = "no list of drives" if not isinstance(entries, list) else f"drive entry {bad} lacks {sorted(ENTRY_KEYS)}"
        raise SteerError(f"{path}: not a frame cache's manifest ({what}); restore it, or import the recordings "
                         f"again into a new cache")
    return manifest


def folder_of(entry: dict) -> str:
    return entry.get("folder", entry["name"])  # caches written before folders were recorded: the name


def problem(root: str | Path, entry: dict, content: bool = False) -> str | None:
    """What is wrong with a manifest entry's files (missing, another shape, with `content` another
    sha256 than recorded), or None."""
    folder = Path(root) / "drives" / folder_of(entry)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        return f"{folder} lacks {', '.join(missing)}"
    try:
        frames = np.load(folder / "frames.npy", mmap_mode="r")
    except (OSError, ValueError) as error:
        return f"{folder / 'frames.npy'} is unreadable ({error})"
    want = (entry["frames"], *entry["frame_shape"])
    if frames.dtype != np.uint8 or frames.shape[1:] != want[1:] or len(frames) not in (0, want[0]):
        return f"{folder / 'frames.npy'} holds {frames.dtype} {frames.shape}, the manifest says uint8 {want}"
    rows = _count_rows(folder / "signals.csv")
    if rows != entry["frames"]:
        return f"{folder / 'signals.csv'} has {rows} rows, the manifest says {entry['frames']}"
    for name, digest in (entry.get("sha256", {}) if content else {}).items():
        if file_sha256(folder / name) != digest:
            return f"{folder / name} does not match the sha256 recorded when it was written"
    return None


def _count_rows(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip()) - 1  # less the header


def read_signals(root: Path, entry: dict) -> tuple[list[str], np.ndarray]:
    """A cached drive's signals.csv: its columns (time_s first) and (rows, columns) float64. A line that is
    not as many finite numbers as the header names is refused, naming the drive, the file and the line."""
    path = root / "drives" / folder_of(entry) / "signals.csv"
    with path.open(errors="replace") as f:
        columns = f.readline().strip().split(",")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, comments=None)  # "#" is no comment here
    except ValueError:  # numpy's words name neither file nor drive: find the line below
        table = None
    if table is None or columns[0] != "time_s" or len(set(columns)) < len(columns) or \
            table.shape[1] != len(columns) or not np.isfinite(table).all():
        raise SteerError(f"the frame cache {root} has damaged drive {entry['name']!r}: {_bad_line(path, columns)}; "
                         f"{repair_hint(root, entry)} to repair it")
    return columns, table


def _bad_line(path: Path, columns: list[str]) -> str:
    if columns[0] != "time_s" or len(set(columns)) < len(columns):
        return f"{path} line 1 is not a header of time_s and distinct signal names"
    with path.open(errors="replace") as f:
        for number, line in enumerate(f, 1):
            cells = line.strip().split(",")
            if number > 1 and line.strip() and (len(cells) != len(columns) or None in map(finite_number, cells)):
                return f"{path} line {number} is not {len(columns)} finite numbers ({line.strip()[:60]!r})"
    return f"{path} does not read as {len(columns)} columns of numbers"


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def repair_hint(root: str | Path, entry: dict) -> str:
    source = entry["meta"].get("source")
    if source in ("world", "world-replay"):
        return f"write it again with steer world --out {root}"
    return f"import {source} again with steer import --out {root}" if source else "write it again"


def verify(root: str | Path) -> dict[str, str | None]:
    """Every drive of the cache at `root` with what is wrong with its files (None: nothing), their
    contents re-hashed against the sha256 recorded when they were written."""
    return {entry["name"]: problem(root, entry, content=True) for entry in read_manifest(root)["drives"]}


def staging(root: str | Path) -> Path:
    """This process's folder for what it writes before it holds the cache's lock."""
    return Path(root) / STAGING / f"{socket.gethostname()}-{os.getpid()}"


def stage_frames(root: str | Path, name: str, count: int, size: tuple[int, int]) -> tuple[Path, int]:
    """A new (count, 3, *size) uint8 .npy file in the cache at `root`'s staging for drive `name`'s frames,
    which decoders fill in place before the drive is complete; a Drive naming it as `frames_file` is
    moved into the cache, not copied. Returns the path and the byte offset where the frames start."""
    path = staging(root) / f"{name}.frames.npy"
    with room_in(root):
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = np.lib.format.open_memmap(path, "w+", np.uint8, (count, 3, *size))  # sparse until written
        offset = frames.offset
        del frames
        with path.open("r+b") as f:  # the blocks now: a full disk met through a memory map kills with SIGBUS
            os.posix_fallocate(f.fileno(), 0, offset + count * 3 * size[0] * size[1])
    return path, offset


def unstage(root: str | Path) -> None:
    """Remove this process's staging folder if nothing is left in it."""
    for folder in (staging(root), Path(root) / STAGING):
        try:
            folder.rmdir()
        except OSError:
            return


def read_json_file(path: str | Path, flag: str = "--config") -> dict:
    """A JSON object from a file the user named; a broken one is refused naming the file and line."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise SteerError(f"{flag} {path}: no such file") from None
    except json.JSONDecodeError as error:
        raise SteerError(f"{flag} {path} line {error.lineno}: not JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise SteerError(f"{flag} {path}: expected a JSON object, found {type(value).__name__}")
    return value


def _name_holder(fd: int) -> None:
    """Write into the lock file who holds it, for a writer that has to wait."""
    note = f"process {os.getpid()} on {socket.gethostname()} ({' '.join(sys.argv[:4])}), since {time.ctime()}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, note.encode(), 0)


QUIET_WAIT_S = 2.0


@contextmanager
def locked(root: str | Path, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold the writers' lock of the cache at `root` (re-entrant in one process): a second writer waits
    up to `timeout_s`, saying whom it waits for after QUIET_WAIT_S, then gives up naming the cache and the
    holder. Sweeps what interrupted writers left."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / LOCK, is_singleton=True, on_acquired=_name_holder)
    quiet_s = min(QUIET_WAIT_S, timeout_s)
    try:  # a commit takes milliseconds: only a longer wait is worth a word
        lock.acquire(timeout=quiet_s)
    except Timeout:
        holder = (root / LOCK).read_text(errors="replace").strip() or "another process"
        print(f"waiting for the frame cache {root}: {holder} is writing to it", file=sys.stderr)
        try:
            lock.acquire(timeout=timeout_s - quiet_s)
        except Timeout:
            raise SteerError(f"the frame cache {root} is locked by {holder}; waited {timeout_s:g} s: try again "
                             f"when it is done, or wait longer with --lock-timeout") from None
    try:
        _sweep(root)
        yield
    finally:
        lock.release()


def _sweep(root: Path) -> None:
    """Remove drive folders no manifest entry names and the staging of processes that are gone."""
    used = {folder_of(entry) for entry in read_manifest(root)["drives"]}
    for path in (root / "drives").iterdir() if (root / "drives").is_dir() else ():
        if path.name not in used:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    host = socket.gethostname()
    for path in (root / STAGING).iterdir() if (root / STAGING).is_dir() else ():
        owner, _, pid = path.name.rpartition("-")
        if owner == host and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class FrameCache:
    """A frame cache opened for reading: `drives` are its drives in manifest order, their frames memory-mapped
    (N, C, H, W) uint8, their signals in steer's units. Opening checks every drive's files against the shapes
    the manifest records and names a damaged drive and the command that repairs it; `create` writes drives
    into a new or existing cache and opens it."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / MANIFEST).exists():
            raise FileNotFoundError(f"{self.root} is not a frame cache: {MANIFEST} is missing")
        for attempt in range(3):  # a writer that commits meanwhile removes the folder of a drive it replaced
            self.manifest = read_manifest(self.root)
            try:
                self._check(self.manifest)
                self.drives = [self._open(entry) for entry in self.manifest["drives"]]
                return
            except (SteerError, OSError, ValueError):
                if attempt == 2 or read_manifest(self.root) == self.manifest:
                    raise

    def _check(self, manifest: dict) -> None:
        """Refuse a manifest entry whose files are missing or of other shapes, naming the drive and the repair."""
        damaged = {e["name"]: p for e in manifest["drives"] if (p := problem(self.root, e))}
        if damaged:
            name, what = next(iter(damaged.items()))
            entry = next(e for e in manifest["drives"] if e["name"] == name)
            others = f" (and {len(damaged) - 1} more: steer verify {self.root} lists them)" if len(damaged) > 1 else ""
            raise SteerError(f"the frame cache {self.root} has damaged drive {name!r}{others}: {what}; "
                             f"{repair_hint(self.root, entry)} to repair it")

    @staticmethod
    def create(root: str | Path, drives: Iterable[Drive]) -> "FrameCache":
        """Write `drives` (any iterable) into a cache at `root` (see `write_drives`) and open it."""
        write_drives(root, drives)
        return FrameCache(root)

    def _open(self, entry: dict) -> CachedDrive:
        folder = self.root / "drives" / folder_of(entry)
        frames = np.load(folder / "frames.npy", mmap_mode="r")
        columns, table = read_signals(self.root, entry)
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
        """Each drive's hash as the manifest records it, by name."""
        return {d["name"]: d["hash"] for d in self.manifest["drives"]}


def write_drives(root: str | Path, drives: Iterable[Drive], lock_timeout_s: float = 600.0) -> None:
    """Write `drives` (any iterable) into a cache at `root`, replacing drives of the same name; each is
    staged unlocked, then committed under the lock. Opens none of the cache's drives: that costs about
    0.5 ms a drive, which an import into a large cache would pay for nothing."""
    root = Path(root)
    try:
        for drive in drives:
            staged = staging(root) / f"{drive.name}.drive"
            try:
                with room_in(root):
                    entry = _stage_drive(staged, drive)
                with locked(root, lock_timeout_s):
                    _commit(root, staged, entry)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
    finally:
        unstage(root)


def _stage_drive(staged: Path, drive: Drive) -> dict:
    """The drive's files in the staging folder `staged`; returns its manifest entry."""
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    if drive.frames_file:
        os.replace(drive.frames_file, staged / "frames.npy")
    else:  # one write() call: writing through a memory map costs a page fault per 4 KiB, and numpy
        # writes a strided array element by element (16x slower than copying it first)
        np.save(staged / "frames.npy", np.ascontiguousarray(drive.frames.transpose(0, 3, 1, 2)))
    names = sorted(drive.signals)
    table = np.column_stack([drive.timestamps_s] + [drive.signals[n].values for n in names])
    np.savetxt(staged / "signals.csv", table, delimiter=",", header=",".join(["time_s"] + names),
               comments="", fmt="%.17g")
    entry = {"name": drive.name, "frames": len(drive), "frame_shape": [3, *drive.frames.shape[1:3]],
             "units": {n: drive.signals[n].unit for n in names}, "hash": drive_hash(drive),
             "sha256": {name: file_sha256(staged / name) for name in FILES}, "meta": drive.meta}
    return json.loads(json.dumps(entry))  # as the manifest will hold it (lists, not tuples)


def _commit(root: Path, staged: Path, entry: dict) -> None:
    """Move a staged drive into a folder no entry names, then replace the manifest (the commit point),
    then remove the folder of the entry it replaced. A drive already there, intact and equal, stays."""
    manifest = read_manifest(root)
    if manifest.setdefault("frame_shape", entry["frame_shape"]) != entry["frame_shape"]:
        raise ValueError(f"drive {entry['name']!r} has frames {entry['frame_shape']}, the cache at "
                         f"{root} holds {manifest['frame_shape']}: write it into another cache")
    drives = manifest["drives"]
    at = next((i for i, d in enumerate(drives) if d["name"] == entry["name"]), len(drives))
    old = drives[at] if at < len(drives) else None
    if old and {**old, "folder": None} == {**entry, "folder": None} and not problem(root, old, content=True):
        return
    used = {folder_of(d) for d in drives}
    folder = next(f for k in range(len(used) + 1) if (f := entry["name"] + (f".{k}" if k else "")) not in used)
    shutil.rmtree(root / "drives" / folder, ignore_errors=True)  # an interrupted writer's, never committed
    (root / "drives").mkdir(parents=True, exist_ok=True)
    commit(staged, root / "drives" / folder)
    drives[at:at + 1] = [{**entry, "folder": folder}]
    try:
        write_json(root / MANIFEST, manifest)
    except BaseException:  # a full disk: the cache left as it was, not with a folder no entry names
        shutil.rmtree(root / "drives" / folder, ignore_errors=True)
        raise
    if old and folder_of(old) != folder:
        shutil.rmtree(root / "drives" / folder_of(old), ignore_errors=True)
