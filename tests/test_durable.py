"""Durable commits and full or read-only disks.

Power loss: every file or folder a rename makes visible is flushed (os.fsync) before the rename, and the
folder holding it after; checked on every commit path by recording the calls, and shown to fail when any
one fsync is left out. A full disk or a read-only folder: one line naming the folder, nothing changed on
disk, and the same command succeeding once space is freed (on a tmpfs the test mounts, where it can)."""
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from test_bad_input_runs import FLAGS, TINY
from test_sources import _row, _sim

from steer import durable
from steer.cli import main
from steer.data.cache import FrameCache, write_drives
from steer.models import create_model, load_model
from steer.train.checkpoint import save_checkpoint
from steer.train.config import TrainConfig
from steer.train.loop import train
from steer.world.simulate import WorldConfig, generate_drives

STEER = Path(durable.__file__).parent
ONE_EPOCH = [*FLAGS[:FLAGS.index("--epochs")], "--epochs", "1", *FLAGS[FLAGS.index("--epochs") + 2:]]


def _key(path: Path) -> tuple[int, int, int]:
    """What a file is and when it last changed: an fsync counts for a rename only if nothing changed since."""
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_mtime_ns


class Journal:
    """The fsync and rename calls of the process, in order, each with what it touched."""

    def __init__(self, monkeypatch):
        self.events: list[tuple] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            st = os.fstat(fd)
            self.events.append(("fsync", (st.st_dev, st.st_ino, st.st_mtime_ns)))
            real_fsync(fd)

        def replace(src, dst, **kwargs) -> None:
            tree = [_key(p) for p in [Path(src), *(Path(src).rglob("*") if Path(src).is_dir() else [])]]
            real_replace(src, dst, **kwargs)
            self.events.append(("rename", Path(dst), tree, _key(Path(dst).parent)))

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)

    def renamed(self) -> list[Path]:
        return [event[1] for event in self.events if event[0] == "rename"]

    def violations(self) -> list[str]:
        """Each rename into place whose file or folder was not flushed before it (unchanged since), or whose
        folder was not flushed after it and before the next rename: before the commit returned. Moves within a
        writer's staging are not commits; a checkpoint moved aside to `.old` was flushed when it was committed,
        and its folder is flushed after the rename that follows it at once."""
        found = []
        for at, (kind, *event) in enumerate(self.events):
            if kind != "rename" or ".staging" in event[0].parts:
                continue
            dst, tree, parent = event
            synced_before = {e[1] for e in self.events[:at] if e[0] == "fsync"}
            aside = dst.name.endswith(".old")
            if not aside and not set(tree) <= synced_before:
                found.append(f"{dst}: renamed into place before its bytes were flushed")
            after = self.events[at + 1:]
            end = len(after) if aside else next((i for i, e in enumerate(after) if e[0] == "rename"), len(after))
            if parent[:2] not in {e[1][:2] for e in after[:end] if e[0] == "fsync"}:  # by inode: renames change it
                found.append(f"{dst}: its folder was not flushed after the rename, before the next")
        return found


def _tiny_model():
    torch.manual_seed(0)
    model = create_model("cnn-lstm", targets=["steering"], frame_shape=(3, 66, 200), hidden=8, features=16)
    return model, torch.optim.Adam(model.parameters())


def test_every_commit_path_flushes_before_and_after_its_rename(tmp_path, monkeypatch, capfd):
    source = _sim(tmp_path / "sim", [_row(0), _row(100), _row(200)])
    cache, run = tmp_path / "cache", tmp_path / "run"
    journal = Journal(monkeypatch)
    main(["world", "--out", str(cache), "--drives", "4", "--frames", "40", "--seed", "7", "--processes", "1"])
    main(["import", str(source), "--out", str(tmp_path / "imported"), "--processes", "1"])  # frames staged
    main(["inspect", str(cache), "--exclude", "frozen", "--drives", "world-7-000", "--out", str(tmp_path / "report")])
    main(["train", "--cache", str(cache), "--out", str(run), *FLAGS])  # run.json, history, best, last (twice)
    main(["evaluate", "--run", str(run), "--metrics-only"])
    model = create_model("features-lstm", targets=["steering"], frame_shape=(3, 66, 200), features=16, hidden=8)
    model.inputs_of(FrameCache(cache).drives[0])  # stored features and their manifest
    os.replace(run / "last", run / "last.old")  # an interruption between a checkpoint's renames, then its repair
    load_model(run / "last")
    capfd.readouterr()
    names = {path.name for path in journal.renamed()}
    assert {"manifest.json", "exclusions.json", "flags.json", "inspect.html", "run.json", "history.json", "best",
            "last", "metrics.json", "steering-histogram.png", "world-7-000", "sim"} <= names, names
    assert any(p.parent.parent.name == "features" and p.suffix == ".npy" for p in journal.renamed())
    assert journal.violations() == []


def _small_commits(root: Path) -> None:
    """A JSON file, a checkpoint swapped in twice, a drive and manifest: each kind of commit once."""
    root.mkdir()
    durable.write_json(root / "a.json", {"ok": 1})
    model, optimizer = _tiny_model()
    save_checkpoint(root / "last", model, optimizer, {"epoch": 0})
    save_checkpoint(root / "last", model, optimizer, {"epoch": 1})
    write_drives(root / "cache", generate_drives(WorldConfig(frames_per_drive=5), 1, seed=1))


def test_leaving_out_any_one_fsync_is_caught(tmp_path, monkeypatch):
    calls = []
    real_sync = durable._sync
    monkeypatch.setattr(durable, "_sync", lambda path: calls.append(path) or real_sync(path))
    _small_commits(tmp_path / "all")
    assert len(calls) >= 15
    for left_out in range(len(calls)):
        count = iter(range(len(calls)))
        monkeypatch.setattr(durable, "_sync", lambda path: None if next(count) == left_out else real_sync(path))
        with monkeypatch.context() as patched:
            journal = Journal(patched)
            _small_commits(tmp_path / str(left_out))
            assert journal.violations(), f"the fsync of {calls[left_out]} left out, and nothing noticed"


def test_nothing_but_commit_renames_a_file_into_place():
    """A rename anywhere else would make a file visible unflushed: the one other move is into a writer's staging."""
    found = {str(p.relative_to(STEER)): len(re.findall(r"os\.(?:replace|rename)\(|\.rename\(", p.read_text()))
             for p in STEER.rglob("*.py")}
    assert {path: n for path, n in found.items() if n} == {"durable.py": 2, "data/cache.py": 1}


def test_a_file_system_that_cannot_flush_a_folder_still_commits_but_a_failing_file_flush_fails(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd: int, failing_files: bool = False) -> None:
        if failing_files or os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(errno.EIO if failing_files else errno.EINVAL, "I/O error" if failing_files else "no")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    durable.write_json(tmp_path / "a.json", [1])
    assert json.loads((tmp_path / "a.json").read_text()) == [1]
    monkeypatch.setattr(os, "fsync", lambda fd: fsync(fd, failing_files=True))
    with pytest.raises(OSError, match="I/O error"):
        durable.write_json(tmp_path / "b.json", [2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


# --- a full disk and a read-only folder -------------------------------------------------------------------

@pytest.fixture(scope="module")
def disk(tmp_path_factory, tiny_cache):
    """A 32 MB tmpfs holding a copy of the tiny cache and a run trained on it."""
    root = tmp_path_factory.mktemp("tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(root)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs at {root} ({mounted.stderr.strip() or 'mount failed'}): the full-disk "
                    "and read-only cases need root or CAP_SYS_ADMIN")
    try:
        shutil.copytree(tiny_cache.root, root / "cache")
        train(TrainConfig(cache=str(root / "cache"), out=str(root / "run"), **TINY))
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=True)


def _fill(root: Path) -> Path:
    """Take every free byte of `root`'s file system."""
    filler = root / ".filler"
    with filler.open("wb") as f:
        os.posix_fallocate(f.fileno(), 0, shutil.disk_usage(root).free)
    assert shutil.disk_usage(root).free == 0
    return filler


def _state(root: Path) -> dict[str, str]:
    """Every file under `root` and its sha256 (not the filler, nor the cache's lock file, which names the
    last process that held it)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in (".filler", ".lock")} | {
            str(p.relative_to(root)) + "/": "" for p in root.rglob("*") if p.is_dir()}


# verb: (its command line on the disk `d`, with `mode` telling runs apart; the folder its error names).
# Export's ONNX graph takes 5-9 s to build: its cases are slow.
CASES = {
    "import": (lambda d, mode, tmp: ["import", _sim(tmp / f"sim-{mode}", [_row(0), _row(100)]), "--out", d / "cache",
                                     "--processes", "1", "--size", "66x200", "--stretch"], "cache"),
    "world": (lambda d, mode, tmp: ["world", "--out", d / "cache", "--drives", "1", "--frames", "40", "--processes",
                                    "1", "--seed", str(len(mode))], "cache"),
    "train": (lambda d, mode, tmp: ["train", "--cache", d / "cache", "--out", d / f"run-{mode}", *ONE_EPOCH],
              {"full": "run-full", "read-only": ""}),  # read-only: the folder it would make run-... in
    "evaluate": (lambda d, mode, tmp: ["evaluate", "--run", d / "run", "--metrics-only"], "run"),
    "export": (lambda d, mode, tmp: ["export", "--checkpoint", d / "run" / "best", "--out", d / "run" / "step.onnx"],
               "run"),
    "inspect": (lambda d, mode, tmp: ["inspect", d / "cache", "--exclude", "frozen", "--drives", "world-7-000",
                                      "--out", tmp / "report"], "cache"),
}


def _refused(argv: list, capfd) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_.value.code == 1 and "Traceback" not in err and len(lines) <= 2, err  # export: onnx's one notice
    assert lines[-1].startswith(f"steer {argv[0]}: error: "), err
    return lines[-1]


@pytest.mark.parametrize("verb", [pytest.param(v, marks=pytest.mark.slow) if v == "export" else v for v in CASES])
@pytest.mark.parametrize("mode", ["full", "read-only"])
def test_a_full_disk_or_read_only_folder_is_one_line_and_changes_nothing(disk, verb, mode, tmp_path, capfd):
    command, named = CASES[verb]
    argv = command(disk, mode, tmp_path)
    folder = disk / (named[mode] if isinstance(named, dict) else named)
    before = _state(disk)
    if mode == "full":
        filler = _fill(disk)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        line = _refused(argv, capfd)
        assert _state(disk) == before, "a refused command changed the disk"
    finally:
        filler.unlink() if mode == "full" else subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    assert f"error: {folder}" in line and ".tmp" not in line, line
    if mode == "full":
        assert re.search(r"(needs [\d.]+ MB|the disk is full), 0\.0 MB free: free space", line), line
    else:
        assert f"{folder} is read-only: make it writable" in line, line
    assert line.endswith("or give another --out") == (verb != "inspect"), line  # inspect writes into the cache
    main([str(a) for a in argv])  # with the space back, the same command succeeds
    capfd.readouterr()


def test_a_checkpoint_that_does_not_fit_is_refused_before_writing_and_leaves_the_last(tmp_path, monkeypatch):
    model, optimizer = _tiny_model()
    save_checkpoint(tmp_path / "last", model, optimizer, {"epoch": 0})
    before = _state(tmp_path)
    monkeypatch.setattr(durable, "free_bytes", lambda folder: 1000)
    with pytest.raises(durable.NoRoom, match=r"needs [\d.]+ MB, 0\.0 MB free: free space or give another --out"):
        save_checkpoint(tmp_path / "last", model, optimizer, {"epoch": 1})
    assert _state(tmp_path) == before
    kept = load_model(tmp_path / "last").state_dict()
    assert all(torch.equal(kept[k], v) for k, v in model.state_dict().items())
