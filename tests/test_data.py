import json

import numpy as np
import pytest

from steer.data.cache import FrameCache
from steer.data.drive import Drive, Signal
from steer.data.windows import split_by_drive, split_by_time, stateful_batches, stateless_batches, windows


def _drive(name="d", n=5, **changes):
    values = dict(frames=np.zeros((n, 4, 6, 3), np.uint8), timestamps_s=np.arange(n) * 0.05,
                  signals={"steering": Signal(np.linspace(-1, 1, n), "rad")})
    values.update(changes)
    return Drive(name, **values)


def test_bad_drives_are_refused_with_the_frame_named():
    with pytest.raises(ValueError, match="empty"):
        _drive(n=0)
    with pytest.raises(ValueError, match="frame 3"):
        _drive(timestamps_s=np.array([0.0, 0.1, 0.2, 0.15, 0.3]))
    with pytest.raises(ValueError, match="'steering' is NaN at frame 2"):
        _drive(signals={"steering": Signal(np.array([0, 1, np.nan, 0, 0.0]), "rad")})
    with pytest.raises(ValueError, match="shape"):
        _drive(signals={"steering": Signal(np.zeros(4), "rad")})


def test_cache_round_trip(tmp_path, rng):
    frames = rng.integers(0, 255, (7, 4, 6, 3), dtype=np.uint8)
    drive = _drive("a", n=7, frames=frames, timestamps_s=1.7e9 + np.arange(7) * 0.05)
    cache = FrameCache.create(tmp_path, [drive])
    again = FrameCache(tmp_path).drives[0]
    assert again.frames.shape == (7, 3, 4, 6)  # channels first, as models eat them
    assert np.array_equal(again.frames, frames.transpose(0, 3, 1, 2))
    assert np.array_equal(again.timestamps_s, drive.timestamps_s)  # full precision for epoch times
    assert np.allclose(again.signals["steering"], drive.signals["steering"].values)
    assert again.units == {"steering": "rad"}
    assert cache.hashes()["a"] == json.loads((tmp_path / "manifest.json").read_text())["drives"][0]["hash"]


def test_interrupted_cache_keeps_finished_drives(tmp_path):
    def drives():
        yield _drive("first")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        FrameCache.create(tmp_path, drives())
    assert [d.name for d in FrameCache(tmp_path).drives] == ["first"]
    FrameCache.create(tmp_path, [_drive("second")])
    assert [d.name for d in FrameCache(tmp_path).drives] == ["first", "second"]


def test_windows_never_cross_a_drive(rng):
    lengths = [int(n) for n in rng.integers(1, 60, 20)]
    for length, stride in [(1, 1), (10, 5), (10, 10), (7, 3)]:
        for w in windows(lengths, length, stride):
            assert 0 <= w.start and w.start + length <= lengths[w.drive]


def test_stateful_lanes_walk_each_drive_in_time_order(rng):
    lengths = [int(n) for n in rng.integers(5, 120, 13)]
    batches = stateful_batches(lengths, 10, 4, rng)
    lanes = list(zip(*batches))
    seen = []
    for lane in lanes:
        real = [w for w in lane if w.weight > 0]
        assert real[0].reset
        for before, after in zip(real, real[1:]):
            follows = after.drive == before.drive and after.start == before.start + 10
            assert follows or after.reset  # the state is only carried into the next window of a drive
        seen += [(w.drive, w.start) for w in real]
    assert sorted(seen) == sorted((w.drive, w.start) for w in windows(lengths, 10, 10))


def test_stateless_batches_cover_every_window_once(rng):
    lengths = [30, 12, 50]
    batches = stateless_batches(lengths, 5, 5, 4, rng)
    flat = [(w.drive, w.start) for b in batches for w in b if w.weight]
    assert sorted(flat) == sorted((w.drive, w.start) for w in windows(lengths, 5, 5))
    assert all(len(b) == 4 for b in batches)  # padded with weight-zero windows


def test_split_by_drive_is_disjoint_and_seeded():
    names = [f"d{i}" for i in range(10)]
    split = split_by_drive(names, (0.6, 0.2, 0.2), seed=1)
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(names)
    assert len(split["val"]) == 2 and len(split["test"]) == 2
    assert split == split_by_drive(names, (0.6, 0.2, 0.2), seed=1)
    with pytest.raises(ValueError, match="at least 3"):
        split_by_drive(["a", "b"], (0.6, 0.2, 0.2), seed=1)


def test_split_by_time_cuts_each_drive_into_contiguous_blocks(tmp_path):
    split = split_by_time({"a": 100, "b": 7}, (0.7, 0.15, 0.15))
    assert split == {"train": ["a@0:70", "b@0:5"], "val": ["a@70:85", "b@5:6"], "test": ["a@85:100", "b@6:7"]}
    cache = FrameCache.create(tmp_path, [_drive("a", n=10, timestamps_s=np.arange(10) * 0.1)])
    part, = cache.by_name(["a@3:6"])
    assert len(part) == 3 and part.timestamps_s[0] == pytest.approx(0.3) and part.frames.shape[0] == 3
    assert np.allclose(part.signals["steering"], cache.drives[0].signals["steering"][3:6])
    with pytest.raises(ValueError, match="no part 8:12"):
        cache.by_name(["a@8:12"])


def test_a_failed_write_leaves_neither_half_a_file_nor_its_temporary(tmp_path):
    from steer.durable import replacing, write_json

    write_json(tmp_path / "a.json", {"ok": 1})
    with pytest.raises(TypeError):
        write_json(tmp_path / "a.json", {"bad": object()})  # fails mid-write
    with pytest.raises(RuntimeError), replacing(tmp_path / "b.csv") as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"ok": 1}
