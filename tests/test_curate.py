"""steer inspect finds what was planted in a drive and nothing in a clean one; exclusions cut exactly their frames."""
import json

import numpy as np
import pytest

from steer.cli import main
from steer.data.cache import FrameCache
from steer.data.drive import Drive, Signal
from steer.data.exclusions import Exclusions, kept_parts
from steer.sources.curate import exclude, flag_cache

N = 200


def _drive(name, rng, planted: bool) -> Drive:
    """20 Hz frames of noise; steering 0.3 rad sin, speed 10 m/s; `planted`: frozen frames 30-31 and 90,
    gaps before 50 and 120, a spike at 150, a stop of 1.25 s at 160-185 (and one of 0.25 s at 5-10, too short
    to flag), steering held at 0.9 rad for frames 60-79, reached and left in ramps the wheel can follow."""
    frames = rng.integers(0, 256, (N, 8, 8, 3), dtype=np.uint8)
    steps = np.full(N, 0.05)
    t = np.arange(N) * 0.05
    steering, speed = 0.3 * np.sin(2 * np.pi * t / 4), np.full(N, 10.0)
    if planted:
        frames[30] = frames[31] = frames[29]
        frames[90] = frames[89]
        steps[50], steps[120] = 0.15, 0.1
        steering[55:60] = np.linspace(steering[55], 0.9, 6)[:-1]
        steering[60:80] = 0.9
        steering[80:85] = np.linspace(0.9, steering[84], 6)[1:]
        steering[150] += 0.6
        speed[160:186] = 0.0
        speed[5:11] = 0.0
    times = 1000 + np.concatenate([[0], np.cumsum(steps[1:])])
    return Drive(name, frames, times, {"steering": Signal(steering, "rad"), "speed": Signal(speed, "m/s")})


@pytest.fixture
def cache(tmp_path, rng):
    return FrameCache.create(tmp_path / "cache", [_drive("dirty", rng, True), _drive("clean", rng, False)])


def test_every_planted_flag_is_found_and_none_in_a_clean_drive(cache):
    flags = flag_cache(cache.drives)
    found = sorted((f.kind, f.start, f.end) for f in flags if f.drive == "dirty")
    assert found == [("frozen", 30, 32), ("frozen", 90, 91), ("gap", 50, 51), ("gap", 120, 121),
                     ("saturated", 60, 80), ("spike", 150, 151), ("standstill", 160, 186)]
    assert [f for f in flags if f.drive == "clean"] == []
    assert flag_cache(cache.by_name(["clean"])) == []  # alone, its own largest steering is not held


def test_exclusion_ranges_remove_exactly_their_frames(cache):
    flags = [f for f in flag_cache(cache.drives) if f.kind in ("frozen", "spike")]
    ranges = exclude(cache.root, flags)
    assert exclude(cache.root, flags) == ranges == Exclusions.of(cache.root).ranges  # added once
    dirty, clean = cache.drives
    kept = np.concatenate([np.arange(*map(int, p.name.split("@")[1].split(":"))) for p in kept_parts(dirty, ranges)])
    assert np.array_equal(kept, np.setdiff1d(np.arange(N), [30, 31, 90, 150]))
    assert [p.name for p in kept_parts(clean, ranges)] == ["clean"]
    assert np.array_equal(kept_parts(dirty, ranges)[1].frames, dirty.frames[32:90])


def test_inspect_verb_writes_plots_and_exclusions(cache, tmp_path, capfd, refuse):
    main(["inspect", str(cache.root), "--exclude", "gap,standstill", "--out", str(tmp_path / "report")])
    out = capfd.readouterr().out
    assert "dirty: 200 frames; 2 frozen, 2 gap, 1 saturated, 1 spike, 1 standstill" in out
    assert "clean: 200 frames; nothing flagged" in out
    assert {p.name for p in (tmp_path / "report").iterdir()} == {
        "flags.json", "steering-histogram.png", "timeline-dirty.png", "timeline-clean.png", "inspect.html"}
    reasons = [r["reason"] for r in json.loads((cache.root / "exclusions.json").read_text())["ranges"]]
    assert sorted(reasons) == ["gap", "gap", "standstill"]
    refuse(["inspect", cache.root, "--exclude", "blurry"], tmp_path, "--exclude", "unknown kind ['blurry']")


def test_a_plot_cut_short_leaves_the_one_before_it_whole_and_no_temporary_file(cache, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from steer.sources.curate import write_report

    out = tmp_path / "report"
    write_report(out, cache.drives, flag_cache(cache.drives))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full_disk(fig, path, **kwargs):
        open(path, "wb").write(b"half a png")
        raise OSError("No space left on device")
    monkeypatch.setattr(Figure, "savefig", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_report(out, cache.drives, flag_cache(cache.drives))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
