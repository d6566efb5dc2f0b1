"""Exclusion ranges beside a frame cache are honoured by training, evaluation and streaming: every frame
of a range is left out, a part starts fresh at a cut, and a cache without ranges behaves as before."""
import csv
import json
import shutil

import numpy as np
import pytest

from steer.cli import main
from steer.data.cache import FrameCache, file_sha256
from steer.data.drive import Drive, Signal
from steer.data.exclusions import Exclusions, add_ranges
from steer.data.windows import split_by_time
from steer.models import load_model
from steer.models.sequence import predict_sequence
from steer.train.batches import BatchLoader
from steer.train.config import TrainConfig
from steer.train.loop import train

N = 60
# drive a: two ranges in its training block (0:30), one in its test block (45:60); b: its first frames;
# c: its last frames
RANGES = [{"drive": "a", "start": 10, "end": 20, "reason": "gap"}, {"drive": "a", "start": 40, "end": 41,
          "reason": "spike"}, {"drive": "a", "start": 52, "end": 55, "reason": "frozen"},
          {"drive": "b", "start": 0, "end": 5, "reason": "standstill"}, {"drive": "c", "start": 50, "end": 60,
                                                                          "reason": "frozen"}]


def _drive(k: int, rng) -> Drive:
    """Frames that carry their own drive number and frame index in their first pixel (R, G)."""
    frames = rng.integers(0, 256, (N, 66, 200, 3), dtype=np.uint8)
    frames[:, 0, 0, 0], frames[:, 0, 0, 1] = k, np.arange(N)
    t = np.arange(N) * 0.05
    return Drive("abc"[k], frames, t, {"steering": Signal(0.2 * np.sin(t + k), "rad"),
                                       "speed": Signal(10 + t, "m/s")})


def _cache(root, excluded: bool) -> FrameCache:
    cache = FrameCache.create(root, [_drive(k, np.random.default_rng(k)) for k in range(3)])
    if excluded:
        add_ranges(root, RANGES)
    return cache


def _excluded(name: str) -> set[int]:
    return {i for r in RANGES if r["drive"] == name for i in range(r["start"], r["end"])}


def _frames_of(names: list[str], excluded: bool) -> set[tuple[str, int]]:
    """(drive, frame) of every frame of the named blocks `drive@start:stop`, less the ranges where `excluded`."""
    out = set()
    for name in names:
        drive, span = name.split("@")
        out |= {(drive, i) for i in range(*map(int, span.split(":"))) if not (excluded and i in _excluded(drive))}
    return out


def _config(cache, out, **changes) -> TrainConfig:
    values = dict(cache=str(cache.root), out=str(out), model="pilotnet", targets=["steering", "speed"], window=1,
                  stride=1, stateful=False, batch_size=8, epochs=1, split_by="time", split=[0.5, 0.25, 0.25], seed=0)
    return TrainConfig(**{**values, **changes})


def _drawn(monkeypatch) -> list[list[tuple[str, int]]]:
    """Every batch row the training loop loads, as the (drive, frame) its frames carry."""
    rows = []
    load = BatchLoader.load

    def spy(self, batch):
        frames, *rest = load(self, batch)
        rows.extend([("abc"[int(f[0, 0, 0])], int(f[1, 0, 0])) for f in row] for row in frames.numpy())
        return frames, *rest
    monkeypatch.setattr(BatchLoader, "load", spy)
    return rows


@pytest.mark.parametrize("excluded", [True, False])
def test_training_batches_hold_every_kept_training_frame_and_no_excluded_one(tmp_path, monkeypatch, excluded):
    cache = _cache(tmp_path / "cache", excluded)
    rows = _drawn(monkeypatch)
    run = train(_config(cache, tmp_path / "run"))
    info = json.loads((run / "run.json").read_text())
    plain = split_by_time({d: N for d in "abc"}, (0.5, 0.25, 0.25))
    assert {frame for row in rows for frame in row} == _frames_of(plain["train"], excluded)
    if excluded:
        assert info["split"]["train"] == ["a@0:10", "a@20:30", "b@5:30", "c@0:30"]
        assert info["exclusions"] == {"sha256": file_sha256(cache.root / "exclusions.json"), "ranges": RANGES}
    else:  # exactly as before there were exclusion ranges
        assert info["split"] == plain and info["exclusions"] is None


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small stateful cnn-lstm trained on a cache with exclusion ranges, and the batch rows it drew."""
    root = tmp_path_factory.mktemp("excluded")
    cache = _cache(root / "cache", excluded=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        rows = _drawn(monkeypatch)
        run = train(_config(cache, root / "run", model="cnn-lstm", model_args={"hidden": 8, "features": 16},
                            window=4, stateful=True, batch_size=2))
    return cache, run, rows


def test_stateful_windows_never_cross_an_excluded_range(trained):
    _, _, rows = trained
    assert rows
    for row in rows:
        (drive, first), frames = row[0], [i for _, i in row]
        assert {d for d, _ in row} == {drive} and frames == list(range(first, first + 4))
        assert not set(frames) & _excluded(drive)


def test_a_kept_part_starts_fresh_after_the_last_excluded_range_before_it(tmp_path):
    cache = _cache(tmp_path / "cache", excluded=True)
    excluded = Exclusions.of(cache.root)
    assert excluded.names(["a", "b@30:45", "c@45:60"]) == ["a@0:10", "a@20:40", "a@41:52", "a@55:60", "b@30:45",
                                                           "c@45:50"]
    parts = {d.name: d for d in excluded.drives(cache, ["a@30:60", "b@30:45"])}
    assert list(parts) == ["a@30:40", "a@41:52", "a@55:60", "b@30:45"]
    lead_ins = {name: d.lead_in and d.lead_in.frames[:, 1, 0, 0].tolist() for name, d in parts.items()}
    # a@41:52 and a@55:60 start where a range ends: nothing before them since the cut
    assert lead_ins == {"a@30:40": list(range(20, 30)), "a@41:52": None, "a@55:60": None,
                        "b@30:45": list(range(5, 30))}


def test_evaluation_scores_only_kept_frames_and_the_baselines_on_the_same_ones(trained, tmp_path):
    cache, run, _ = trained
    main(["evaluate", "--run", str(run), "--metrics-only", "--out", str(tmp_path / "eval")])
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    rows = list(csv.DictReader((tmp_path / "eval" / "predictions.csv").open()))
    scored = [(r["drive"].split("@")[0], int(r["drive"].split("@")[1].split(":")[0]) + int(r["frame"]))
              for r in rows]
    plain = split_by_time({d: N for d in "abc"}, (0.5, 0.25, 0.25))
    assert set(scored) == _frames_of(plain["test"], excluded=True) and len(scored) == len(set(scored))
    assert metrics["frames"] == len(rows) == 15 + 12 + 5
    truth = np.array([float(r["true_steering"]) for r in rows])
    assert metrics["zero"]["steering"]["rmse"] == pytest.approx(np.sqrt(np.mean(truth ** 2)), rel=1e-5)
    assert metrics["exclusions"]["ranges"] == RANGES


def test_streaming_a_drive_skips_its_excluded_frames_and_resets_the_state_at_each(trained, tmp_path):
    cache, run, _ = trained
    out = tmp_path / "stream.csv"
    main(["run", "--checkpoint", str(run / "best"), "--cache", str(cache.root), "--drive", "a", "--out", str(out)])
    rows = list(csv.DictReader(out.open()))
    assert sorted({r["drive"] for r in rows}) == ["a@0:10", "a@20:40", "a@41:52", "a@55:60"]
    assert len(rows) == N - 14
    model = load_model(run / "best")
    for part in Exclusions.of(cache.root).drives(cache, ["a"]):
        fresh = predict_sequence(model, np.asarray(part.frames))  # from a zero state
        streamed = np.array([[float(r[t]) for t in model.targets] for r in rows if r["drive"] == part.name])
        assert np.allclose(streamed, fresh, atol=1e-4), part.name


BAD = [("{\"ranges\": [", "line 1"),
       (json.dumps({"ranges": [RANGES[0], {"drive": "a", "start": 3}]}), "range 1"),
       (json.dumps({"ranges": [{**RANGES[0], "drive": "zebra"}]}), "no drive 'zebra'"),
       (json.dumps({"ranges": [{**RANGES[0], "end": N + 1}]}), "end <= 60"),
       (json.dumps({"spans": []}), "not steer's exclusion ranges")]


@pytest.mark.parametrize("text, named", BAD)
def test_a_malformed_exclusions_file_is_refused_naming_the_file_and_range(tmp_path, refuse, text, named):
    cache = _cache(tmp_path / "cache", excluded=False)
    (cache.root / "exclusions.json").write_text(text)
    refuse(["train", "--cache", cache.root, "--out", tmp_path / "run", "--model", "pilotnet", "--split-by", "time"],
           tmp_path, cache.root / "exclusions.json", named)


def test_evaluate_and_streaming_refuse_a_range_the_cache_has_no_frames_for(trained, tmp_path, refuse):
    cache, run, _ = trained
    other = tmp_path / "other"
    shutil.copytree(cache.root, other)
    (other / "exclusions.json").write_text(json.dumps({"ranges": [{**RANGES[0], "drive": "d"}]}))
    refuse(["evaluate", "--run", run, "--cache", other, "--out", tmp_path / "eval"], tmp_path,
           other / "exclusions.json", "range 0", "no drive 'd'")
    refuse(["run", "--checkpoint", run / "best", "--cache", other, "--drive", "a", "--out", tmp_path / "p.csv"],
           tmp_path, other / "exclusions.json", "range 0", "no drive 'd'")


def test_diagnose_cuts_drives_at_their_ranges_as_training_does_and_reads_kept_frames_alone(trained, tmp_path,
                                                                                          monkeypatch):
    import steer.evaluate.diagnose as diagnose

    cache, run, _ = trained
    windows, decay = [], diagnose.window_decay
    monkeypatch.setattr(diagnose, "window_decay", lambda model, x, y, state: windows.append(
        x[0, :, 1, 0, 0].tolist()) or decay(model, x, y, state))  # frame numbers, from the frames themselves
    main(["diagnose", "--run", str(run), "--drive", "a,b", "--window", "4", "--out", str(tmp_path / "d")])
    parts = ["a@0:10", "a@20:40", "a@41:52", "a@55:60", "b@5:60"]
    assert json.loads((tmp_path / "d" / "diagnose.json").read_text())["drives"] == parts
    spans = [tuple(map(int, p.split("@")[1].split(":"))) for p in parts]
    assert windows == [list(range(s, s + 4)) for start, stop in spans for s in range(start, stop - 3, 4)]


def test_int8_calibrates_on_the_kept_frames_alone_up_to_its_frames_per_drive(trained, tmp_path, monkeypatch):
    import steer.cli.export as export_cli
    import steer.drive.export as export

    cache, run, _ = trained
    streamed, quantise = [], export.quantise_int8
    monkeypatch.setattr(export_cli, "CALIBRATION_FRAMES", 25)
    monkeypatch.setattr(export, "quantise_int8", lambda model, graph, drives: streamed.extend(drives) or quantise(
        model, graph, drives))
    main(["export", "--checkpoint", str(run / "best"), "--int8", "--drive", "a", "--out", str(tmp_path / "step.onnx")])
    # a's first 25 kept frames, each part streamed on its own: 0-9, then 20-34 after the range 10-19
    assert [part[:, 1, 0, 0].tolist() for part in streamed] == [list(range(10)), list(range(20, 35))]


def test_verbs_that_read_a_drive_whole_are_told_what_exclusions_json_leaves_out(tmp_path):
    from steer.data.exclusions import excluded_note

    cache = _cache(tmp_path / "cache", excluded=True)
    note = excluded_note(cache, "a")
    assert "excludes 14 of the 60 frames of a" in note and "a@0:10, a@20:40, a@41:52, a@55:60" in note
    assert "excludes 3 of the 15 frames of a@45:60" in excluded_note(cache, "a@45:60")
    assert excluded_note(cache, "c@0:50") is None and excluded_note(cache, "b@5:60") is None
