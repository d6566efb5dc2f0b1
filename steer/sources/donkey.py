"""donkeycar tubs: v2 (`manifest.json`, `catalog_N.catalog`, `images/`) and v1 (`meta.json`,
`record_N.json` beside the images).

Records are matched to the deletion list by their own `_index` (v2) or file number (v1), never by
position: a v2 tub may start at any index. Deleted records are left out unless `keep_deleted`;
records driven by the autopilot (mode other than "user") and records whose image file is empty are
left out too, each counted in the table's `dropped`.

Units: `user/angle` and `user/throttle` are raw controller values in -1..1, positive angle = right;
steer stores the angle with the opposite sign (positive = left) and, with `steering_rad_per_unit`,
in radians. Throttle is kept as recorded; `throttle_scale` (e.g. -1 for a car that records forward
as negative) rescales it.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.table import FrameTable, read_text


def _v2_records(folder: Path) -> tuple[list[tuple[int, dict, str]], set[int], Path]:
    lines = read_text(folder / "manifest.json").splitlines()
    try:
        meta = json.loads(lines[-1])
    except (json.JSONDecodeError, IndexError):
        raise ValueError(f"{folder / 'manifest.json'}: the last line is not the catalog JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("paths"), list):
        raise ValueError(f"{folder / 'manifest.json'}: the last line names no catalogs (\"paths\")")
    records = []
    for catalog in meta["paths"]:
        path = folder / catalog
        for number, line in enumerate(read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not JSON ({e.msg})") from None
            record["_time_s"] = _number(record, "_timestamp_ms", where) / 1000.0
            records.append((int(_number(record, "_index", where)), record, where))
    return records, set(meta.get("deleted_indexes", [])), folder / "images"


def _v1_records(folder: Path) -> tuple[list[tuple[int, dict, str]], set[int], Path]:
    records = []
    for path in folder.glob("record_*.json"):
        try:
            record = json.loads(read_text(path))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not JSON ({e.msg})") from None
        try:
            stamp = datetime.fromisoformat(str(record.get("timestamp"))).replace(tzinfo=timezone.utc)  # local, no zone
        except ValueError:
            raise ValueError(f"{path}: timestamp {record.get('timestamp')!r} is not a date and time") from None
        record["_time_s"] = stamp.timestamp()
        records.append((int(path.stem.split("_")[1]), record, str(path)))
    return records, set(), folder


def _number(record: dict, key: str, where: str) -> float:
    try:
        return float(record[key])
    except KeyError:
        raise ValueError(f"{where}: the record has no {key!r}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key} is not a number: {record[key]!r}") from None


def _file_size(image: Path, where: str) -> int:
    try:
        return os.stat(image).st_size  # one system call, where exists() and stat() make two
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: image {image} is missing") from None


def read(folder: str | Path, keep_deleted: bool = False, steering_rad_per_unit: float | None = None,
         throttle_scale: float = 1.0) -> FrameTable:
    folder = Path(folder)
    if (folder / "manifest.json").exists():
        records, deleted, image_dir = _v2_records(folder)
    elif (folder / "meta.json").exists():
        records, deleted, image_dir = _v1_records(folder)
    else:
        raise FileNotFoundError(f"{folder}: not a donkeycar tub (no manifest.json or meta.json)")
    dropped: Counter = Counter()
    images, times, angle, throttle, rows = [], [], [], [], []
    for index, record, where in sorted(records, key=lambda r: r[0]):
        if index in deleted and not keep_deleted:
            dropped["deleted records"] += 1
        elif record.get("user/mode", "user") != "user":
            dropped[f"records driven by the autopilot ({record['user/mode']})"] += 1
        elif _file_size(image := image_dir / str(record.get("cam/image_array")), where) == 0:
            dropped["records whose image file is empty"] += 1
        else:
            images.append(image)
            times.append(record["_time_s"])
            angle.append(_number(record, "user/angle", where))
            throttle.append(_number(record, "user/throttle", where))
            rows.append(where)
    signals = {"steering": Signal(-np.array(angle) * (steering_rad_per_unit or 1.0),
                                  "rad" if steering_rad_per_unit else "1"),
               "throttle": Signal(np.array(throttle) * throttle_scale, "1")}
    flags = {"steering": "--steering-rad-per-unit: radians per unit of the log", "throttle": "--throttle-scale"}
    return FrameTable(folder.name, images, np.array(times), signals, rows, dropped, unit_flags=flags)
