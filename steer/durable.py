"""Writing files so that what a reader sees is complete, after a crash of the process or of the machine.

Every file (or folder of files) steer makes visible is written under a temporary name and committed by
`commit`: its bytes are flushed to the disk (os.fsync), it is renamed into place, then the folder that
holds it is flushed, so the rename itself is on the disk. A rename alone is atomic against a crash of
the process, not against a power cut: ext4 without auto_da_alloc, XFS or a network file system can
come back with the new name and none of the bytes. This is the order SQLite and git (core.fsync) keep.

A full disk or a read-only folder is one `NoRoom` error naming the folder and what to do; where the
size of a write is known beforehand, `check_room` refuses it before anything is written.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from steer.errors import SteerError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FULL = (errno.ENOSPC, errno.EDQUOT)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
MB = 1e6


class NoRoom(SteerError):
    """A write into `folder` that a full disk or a read-only folder refused (`needed`: bytes, where known)."""

    def __init__(self, folder: str | Path, code: int, needed: int | None = None):
        self.folder, self.code, self.needed = Path(folder), code, needed
        self.elsewhere = "give another --out"  # the command line may know better (see steer.cli)
        super().__init__(self.folder)

    def __str__(self) -> str:
        way = f" or {self.elsewhere}" if self.elsewhere else ""
        if self.code in FULL:
            free = free_bytes(self.folder) / MB
            needed = f"needs {self.needed / MB:.1f} MB" if self.needed else "the disk is full"
            return f"{self.folder}: {needed}, {free:.1f} MB free: free space{way}"
        what = "is read-only" if self.code == errno.EROFS else "is not writable (permission denied)"
        return f"{self.folder} {what}: make it writable{way}"


def no_room(error: BaseException) -> NoRoom | None:
    """The NoRoom an error stands for: itself, or an OSError of a full disk or a read-only file system
    naming a file (then its folder); None for any other error. Not EACCES: reading a file can raise it."""
    if isinstance(error, NoRoom):
        return error
    if isinstance(error, OSError) and error.errno in FULL + (errno.EROFS,) and error.filename:
        return NoRoom(Path(os.fsdecode(error.filename)).parent, error.errno)
    return None


def free_bytes(folder: str | Path) -> int:
    """Free bytes of the file system `folder` is (or, not made yet, would be) on."""
    path = Path(folder).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_room(folder: str | Path, needed: int) -> None:
    """Refuse, before anything is written, a write of `needed` bytes into `folder` that would not fit."""
    if needed > free_bytes(folder):
        raise NoRoom(folder, errno.ENOSPC, needed)


@contextmanager
def room_in(folder: str | Path) -> Iterator[None]:
    """Turn a full disk or a read-only folder met while writing into `folder` into a NoRoom naming it."""
    try:
        yield
    except OSError as error:
        named = Path(os.fsdecode(error.filename)).absolute() if error.filename else None
        if error.errno not in FULL + READ_ONLY or (named and not named.is_relative_to(Path(folder).absolute())):
            raise  # another error, or one about a file it reads elsewhere
        raise NoRoom(folder, error.errno) from None


def commit(tmp: str | Path, path: str | Path, old: str | Path | None = None) -> None:
    """Make `tmp`, a complete file or folder of files, `path`: its bytes reach the disk before the rename,
    and the rename before this returns. With `old`, a `path` already there is renamed to `old` first (a
    folder cannot replace a folder), right before: the moment with neither is as short as it can be."""
    tmp, path = Path(tmp), Path(path)
    _sync_tree(tmp)
    if old is not None and path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    _sync(path.parent)


def _sync_tree(path: Path) -> None:
    if path.is_dir():  # its files, then the folder itself, whose entries name them
        for child in path.iterdir():
            _sync_tree(child)
    _sync(path)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:  # some file systems (FUSE, CIFS) cannot flush a folder: SQLite goes on too
        if not (path.is_dir() and error.errno in (errno.EINVAL, errno.ENOTSUP)):
            raise
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to (with the same suffix, for writers that go by it); it is
    committed as `path` when the block ends, and removed if the block fails: no reader sees half a file."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        with room_in(path.parent):
            yield tmp
            commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: dict | list) -> None:
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def save_figure(fig: Figure, path: str | Path, dpi: int = 80) -> None:
    """Lay out, write (under a temporary name, committed when complete) and close a matplotlib figure."""
    import matplotlib.pyplot as plt  # here, not above: writing a JSON file should not load matplotlib

    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
