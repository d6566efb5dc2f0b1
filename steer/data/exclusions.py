"""Exclusion ranges kept beside a frame cache (`CACHE/exclusions.json`): frames that training, evaluation
and streaming leave out, without a byte of the cache deleted.

    {"ranges": [{"drive": "d", "start": 50, "end": 60, "reason": "gap"}, ...]}   frames start..end-1

What remains of a drive are its kept parts, drives named `name@start:stop` as `FrameCache.by_name`
resolves them. A part starts fresh at a cut, like a new drive: no window crosses an excluded range,
and a part's lead-in (the frames a car saw before it) begins after the last excluded range before it.
A cache without the file behaves exactly as one whose file holds no range.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from steer.data.cache import CachedDrive, FrameCache, locked, part_of, read_manifest
from steer.durable import write_json
from steer.errors import SteerError

EXCLUSIONS = "exclusions.json"


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


@dataclass(frozen=True)
class Exclusions:
    path: Path
    ranges: list[dict] = field(default_factory=list)
    lengths: dict[str, int] = field(default_factory=dict)  # frames per drive of the cache
    sha256: str | None = None  # of the file, None where there is none

    @classmethod
    def of(cls, root: str | Path, manifest: dict | None = None) -> "Exclusions":
        """The ranges of the cache at `root` (whose manifest is `manifest`, default read now), checked
        against its drives: a malformed file or entry is refused, naming the file and the entry."""
        path = Path(root) / EXCLUSIONS
        lengths = {e["name"]: e["frames"] for e in (manifest or read_manifest(root))["drives"]}
        if not path.exists():
            return cls(path, [], lengths)
        try:
            data = path.read_bytes()
            ranges = json.loads(data)["ranges"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            where = f" line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
            raise SteerError(f"{path}{where}: not steer's exclusion ranges, {{\"ranges\": [...]}} ({error!r}); "
                             f"fix or remove it") from None
        if not isinstance(ranges, list):
            raise SteerError(f"{path}: \"ranges\" is not a list; fix or remove it")
        for i, entry in enumerate(ranges):
            problem = _problem(entry, lengths)
            if problem:
                raise SteerError(f"{path} range {i} ({json.dumps(entry)}): {problem}; fix or remove it")
        return cls(path, ranges, lengths, hashlib.sha256(data).hexdigest())

    def record(self) -> dict | None:
        """What a run records of the exclusions it applied (None: the cache has no exclusions.json)."""
        return {"sha256": self.sha256, "ranges": self.ranges} if self.sha256 else None

    def excluded(self, drive: str) -> np.ndarray:
        """Per frame of `drive`: inside an exclusion range."""
        out = np.zeros(self.lengths.get(drive, 0), bool)
        for r in self.ranges:
            if r["drive"] == drive:
                out[r["start"]:r["end"]] = True
        return out

    def names(self, names: list[str]) -> list[str]:
        """Each drive or part `name@start:stop` replaced by its kept parts; a name no range touches stays."""
        kept = []
        for name in names:
            base, span = part_of(name)
            out = self.excluded(base)
            start, stop = span or (0, len(out))
            if not out[start:stop].any():
                kept.append(name)
            else:
                kept += [f"{base}@{start + a}:{start + b}" for a, b in runs(~out[start:stop])]
        return kept

    def split(self, split: dict[str, list[str]]) -> dict[str, list[str]]:
        """A train/val/test split with the excluded frames left out of every part."""
        kept = {part: self.names(names) for part, names in split.items()}
        empty = [part for part in ("train", "val") if split.get(part) and not kept[part]]
        if empty:
            raise SteerError(f"{self.path} excludes every {empty[0]} frame of the split: remove some ranges, "
                             f"or split otherwise (--split, --split-by)")
        return kept

    def drives(self, cache: FrameCache, names: list[str]) -> list[CachedDrive]:
        """The kept parts of the named drives, each with its lead-in cut at the last excluded range before it."""
        kept = self.names(names)
        if names and not kept:
            raise SteerError(f"{self.path} excludes every frame of {', '.join(names)}: nothing is left to use")
        return [self._fresh(drive) for drive in cache.by_name(kept)]

    def _fresh(self, part: CachedDrive) -> CachedDrive:
        base, span = part_of(part.name)
        if not span or part.lead_in is None:
            return part
        cuts = [r["end"] for r in self.ranges if r["drive"] == base and r["end"] <= span[0]]
        cut = max(cuts, default=0)
        if not cut:
            return part
        lead_in = None
        if cut < span[0]:  # the lead-in holds frames 0..start-1 of the drive
            lead_in = replace(part.lead_in.part(cut, span[0]), name=f"{base}@{cut}:{span[0]}", lead_in=None)
        return replace(part, lead_in=lead_in)

    def parts(self, drive: CachedDrive) -> list[CachedDrive]:
        """The parts of a whole cached drive outside its ranges (the drive itself where it has none)."""
        out = self.excluded(drive.name)
        if not out.any():
            return [drive]
        return [self._fresh(drive.part(a, b)) for a, b in runs(~out)]


def _problem(entry: object, lengths: dict[str, int]) -> str | None:
    """What is wrong with one range of exclusions.json, or None."""
    if not isinstance(entry, dict) or set(entry) != {"drive", "start", "end", "reason"}:
        return "a range holds exactly drive, start, end and reason"
    if not isinstance(entry["drive"], str) or not isinstance(entry["reason"], str):
        return "drive and reason are text"
    if entry["drive"] not in lengths:
        return f"the cache has no drive {entry['drive']!r}"
    start, end, n = entry["start"], entry["end"], lengths[entry["drive"]]
    if not (type(start) is int and type(end) is int and 0 <= start < end <= n):
        return f"start and end are frame numbers with 0 <= start < end <= {n} (drive {entry['drive']!r}'s frames)"
    return None


def _key(entry: dict) -> tuple:
    return entry["drive"], entry["start"], entry["end"], entry["reason"]


def add_ranges(root: str | Path, ranges: list[dict], lock_timeout_s: float = 600.0) -> Exclusions:
    """Add `ranges` (drive, start, end, reason) to the cache's exclusions, once each, under the cache's
    writer lock, the file replaced whole; returns them all. Checked before anything is written."""
    with locked(root, lock_timeout_s):
        current = Exclusions.of(root)
        known, new = {_key(r) for r in current.ranges}, []
        for entry in ranges:
            problem = _problem(entry, current.lengths)
            if problem:
                raise SteerError(f"exclusion range {json.dumps(entry)} for {current.path}: {problem}")
            if _key(entry) not in known:
                known.add(_key(entry))
                new.append(entry)
        write_json(current.path, {"ranges": current.ranges + new})
        return Exclusions.of(root)


def kept_drives(cache: FrameCache, names: list[str]) -> list[CachedDrive]:
    """The kept parts of the named drives (or parts) of `cache`, under its exclusions.json."""
    return Exclusions.of(cache.root, cache.manifest).drives(cache, names)


def excluded_note(cache: FrameCache, name: str) -> str | None:
    """For a verb that reads drive `name` whole: how many of its frames exclusions.json leaves out, and the
    kept parts to name instead; None where it leaves out none."""
    excluded = Exclusions.of(cache.root, cache.manifest)
    base, span = part_of(name)
    out = excluded.excluded(base)[slice(*span) if span else slice(None)]
    if not out.any():
        return None
    return (f"note: {excluded.path} excludes {out.sum()} of the {len(out)} frames of {name}, used here all the "
            f"same; for the kept frames alone name a kept part: {', '.join(excluded.names([name]))}")


def kept_parts(drive: CachedDrive, ranges: list[dict]) -> list[CachedDrive]:
    """The parts of `drive` outside `ranges` (the whole drive where none names it), each starting fresh."""
    return Exclusions(Path(EXCLUSIONS), ranges, {drive.name: len(drive)}).parts(drive)
