"""Readers of recording layouts by name. Each reader module in this package declares one `READER`: its
name, how it recognises a source, its options (with types and help) and how it reads; `steer import`'s
detection, its flags and its --help are built from these declarations, so a new layout is one module.
"""
from __future__ import annotations

import hashlib
import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

if TYPE_CHECKING:
    from steer.sources.table import FrameTable


class Where(NamedTuple):
    """Where a row came from: a file and a line of a text log, a frame of a video, a message of a bag, a
    row of an HDF5 data set. Printed as `file line 12` in error messages; the importer hashes `file`."""
    file: Path
    number: int | None = None  # None: the whole file (a donkey v1 record)
    unit: str = "line"

    def __str__(self) -> str:
        return str(self.file) if self.number is None else f"{self.file} {self.unit} {self.number}"


@dataclass(frozen=True)
class Option:
    """One keyword argument of a reader's `read`, and its `steer import` flag (`--name-with-dashes`).
    `type` converts the flag's text (bool: a flag without a value)."""
    name: str
    type: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None


def names(text: str) -> list[str]:
    """A comma-separated list, e.g. center,left."""
    return [v.strip() for v in text.split(",") if v.strip()]


@dataclass(frozen=True)
class Reader:
    name: str
    help: str  # the layout in a line, for --help
    recognise: Callable[[Path], bool]  # whether a source (folder or file) is in this layout
    read: Callable[..., FrameTable | list[FrameTable]]  # (source, **options): one table or several
    options: tuple[Option, ...] = field(default=())

    def tables(self, source: Path, **options) -> list[FrameTable]:
        tables = self.read(source, **options)
        return tables if isinstance(tables, list) else [tables]


@cache
def readers() -> dict[str, Reader]:
    """Every module of this package that declares a `READER`, by name, in the order of their modules' names."""
    found: dict[str, Reader] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])):
        reader = getattr(importlib.import_module(f"steer.sources.{module}"), "READER", None)
        if reader is not None:
            if reader.name in found:
                raise RuntimeError(f"two readers named {reader.name!r} (steer/sources/{module}.py)")
            found[reader.name] = reader
    return found


def reader(name: str) -> Reader:
    if name not in readers():
        raise ValueError(f"unknown format {name!r}; known: {', '.join(readers())}")
    return readers()[name]


def detect(source: Path) -> str:
    """The one layout that recognises `source`."""
    matches = [r.name for r in readers().values() if r.recognise(source)]
    if len(matches) != 1:
        found = f"it looks like each of {matches}" if matches else "it matches none"
        raise ValueError(f"{source}: cannot tell the layout ({found}); give --format ({', '.join(readers())})")
    return matches[0]


def fingerprint(path: Path, whole_below: int = 64 << 20) -> bytes:
    """What stands for a file in a source's hash: its contents; for a larger file (a bag, a video, an
    HDF5 file), the sha256 of its size and its first and last MiB: reading gigabytes to find a source
    already imported would cost more than the import, and a recording changed only in its middle, at
    the same size, is not a case met in practice."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if size < whole_below:
            return f.read()
        h = hashlib.sha256(str(size).encode() + f.read(1 << 20))
        f.seek(size - (1 << 20))
        h.update(f.read())
    return h.digest()
