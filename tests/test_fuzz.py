"""Fuzzed readers (Hypothesis): every text file steer reads, damaged as files get damaged (cut short at any
length, a byte flipped, a cell or line replaced by garbage, re-encoded, other line endings, a column twice
or missing), either reads as a careful reader would or is refused with a user error naming the file; never
another exception (a traceback), a hang (each case has a deadline) or a different value read silently.

The default suite runs a fixed, derandomized budget (a few hundred cases); `pytest -m slow` runs 20 times
as many."""
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_airsim import _recording
from test_sources import _catalog, _challenge2, _jpeg, _row, _sim

from steer.data.cache import FrameCache, read_manifest
from steer.data.drive import finite_number
from steer.data.exclusions import Exclusions
from steer.errors import SteerError
from steer.evaluate.score import score_files
from steer.models import create_model, load_model
from steer.sources.registry import reader
from steer.sources.table import check_table
from steer.train.checkpoint import load_optimizer, read_run, save_checkpoint

USER_ERRORS = (SteerError, ValueError, FileNotFoundError)  # what steer's readers refuse with, as one line
BUDGETS = [pytest.param(2000, marks=pytest.mark.slow, id="slow"), pytest.param(40, id="default")]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16"]


def fuzz(budget: int, strategy, check) -> None:
    """Run `check` on `budget` cases drawn from `strategy`, derandomized, each within 5 s."""
    settings(max_examples=budget, derandomize=True, deadline=5000, database=None,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(given(strategy)(check))()


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """`data` damaged one way: cut short, a byte flipped, a span replaced by random bytes or text, a line
    doubled or dropped, other line endings, another encoding."""
    lines = data.split(b"\n")
    way = draw(st.sampled_from(["cut", "flip", "bytes", "text", "line twice", "line gone", "endings", "encoding"]))
    at = draw(st.integers(0, max(len(data) - 1, 0)))
    if way == "cut":
        return data[:at]
    if way == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if way in ("bytes", "text"):
        new = draw(st.binary(max_size=12) if way == "bytes" else st.text(max_size=12).map(str.encode))
        return data[:at] + new + data[at + draw(st.integers(0, 12)):]
    if way in ("line twice", "line gone"):
        k = draw(st.integers(0, len(lines) - 1))
        return b"\n".join(lines[:k] + lines[k:k + 1] * (way == "line twice") + lines[k + 1:])
    if way == "endings":
        return data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\n"])))
    return data.decode().encode(draw(st.sampled_from(ENCODINGS)))


def _refused_or_read(path: Path, read) -> object:
    """What `read()` returns, or None where it refused naming `path`'s file; any other error fails the case."""
    try:
        return read()
    except USER_ERRORS as error:
        assert path.name in str(error) or path.parent.name in str(error), f"{path.name} not named in: {error}"
        assert "\n" not in str(error).strip(), error
        return None


# --- source readers: their log files --------------------------------------------------------------------

def _generic(folder: Path) -> Path:
    (folder / "frames").mkdir(parents=True)
    lines = ["frame,t,wheel,v"]
    for i in range(4):
        _jpeg(folder / "frames" / f"{i}.jpg", size=(48, 64))
        lines.append(f"{i}.jpg,{0.05 * i:.2f},{-3.0 + i},{10 + i}")
    (folder / "log.csv").write_text("\n".join(lines) + "\n")
    return folder


def _sully(folder: Path) -> Path:
    for i in range(3):
        _jpeg(folder / f"{i}.jpg", size=(48, 64))
    (folder / "data.txt").write_text("0.jpg 1.5,2018-07-01 17:09:44:912\n1.jpg -3.0,2018-07-01 17:09:45:11\n"
                                     "2.jpg 0.0,2018-07-01 17:09:45:71\n")
    return folder


def _donkey(folder: Path) -> Path:
    records = []
    for i in range(4):
        _jpeg(folder / "images" / f"{i}_cam.jpg", size=(48, 64))
        records.append({"_index": i, "_timestamp_ms": 1_610_000_000_000 + 50 * i, "cam/image_array": f"{i}_cam.jpg",
                        "user/angle": 0.1 * i, "user/throttle": 0.3, "user/mode": "user"})
    return _catalog(folder, records, [])


# format: (how a valid recording is written into a folder, its log file, the reader's options)
SOURCES = {
    "udacity-sim": (lambda f: _sim(f, [_row(0), _row(100), _row(200)]), "driving_log.csv", {}),
    "generic": (_generic, "log.csv", {"signals": "steering=wheel:deg,speed=v:m/s", "frames": "frames", "time": "t"}),
    "sullychen": (_sully, "data.txt", {}),
    "donkey": (_donkey, "catalog_0.catalog", {}),
    "donkey-manifest": (_donkey, "manifest.json", {}),
    "airsim": (_recording, "airsim_rec.txt", {}),
    "udacity": (lambda f: _challenge2(f, images=True), "interpolated.csv", {}),
}


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("name", SOURCES)
def test_a_damaged_log_is_read_or_refused_naming_it(name, budget, tmp_path):
    write, log, options = SOURCES[name]
    folder = write(tmp_path / "source")
    path = folder / log
    good = path.read_bytes()
    fmt = name.split("-manifest")[0]

    def check(data: bytes) -> None:
        path.write_bytes(data)
        tables = _refused_or_read(path, lambda: [check_table(t) for t in reader(fmt).tables(folder, **options)])
        for table in tables or []:  # what is read is finite and one value per row
            assert np.isfinite(table.timestamps_s).all()
            assert all(len(s.values) == len(table.timestamps_s) for s in table.signals.values())

    fuzz(budget, damaged(good), check)


# --- the frame cache: manifest, signals, exclusions --------------------------------------------------------

@pytest.fixture
def cache(tiny_cache, tmp_path) -> Path:
    return shutil.copytree(tiny_cache.root, tmp_path / "cache")


@pytest.mark.parametrize("budget", BUDGETS)
def test_a_damaged_manifest_is_read_or_refused_naming_it(cache, budget):
    path = cache / "manifest.json"
    good = path.read_bytes()

    def check(data: bytes) -> None:
        path.write_bytes(data)
        manifest = _refused_or_read(path, lambda: read_manifest(cache))
        if manifest is not None and manifest["drives"]:  # what opens holds the files' drives, or is refused
            opened = _refused_or_read(path, lambda: FrameCache(cache))
            assert opened is None or [d.name for d in opened.drives] == [e["name"] for e in manifest["drives"]]

    fuzz(budget // 2, damaged(good), check)


def _reference_signals(text: str) -> np.ndarray | None:
    """signals.csv as a careful reader takes it: a header, then rows of as many finite numbers; None if not.
    Lines end at \\n, \\r\\n or \\r (a text file's endings), not at the other characters str.splitlines takes."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    header = lines[0].split(",") if lines else []
    rows = [line.split(",") for line in lines[1:] if line]
    if not header or header[0] != "time_s" or len(set(header)) < len(header) or \
            any(len(r) != len(header) or None in map(finite_number, r) for r in rows):
        return None
    return np.array([[float(c) for c in r] for r in rows]).reshape(len(rows), len(header))


@pytest.mark.parametrize("budget", BUDGETS)
def test_a_damaged_signals_file_is_read_as_written_or_refused_naming_the_drive(cache, budget):
    entry = read_manifest(cache)["drives"][0]
    path = cache / "drives" / entry["name"] / "signals.csv"
    good = path.read_bytes()

    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            opened = FrameCache(cache)
        except SteerError as error:
            assert entry["name"] in str(error) and path.name in str(error), error
            return
        expected = _reference_signals(data.decode())
        assert expected is not None, "a file a careful reader refuses was read"
        drive = opened.drives[0]
        assert np.array_equal(drive.timestamps_s, expected[:, 0])

    fuzz(budget, damaged(good), check)


@pytest.mark.parametrize("budget", BUDGETS)
def test_damaged_exclusions_are_read_or_refused_naming_them(cache, budget):
    name = read_manifest(cache)["drives"][0]["name"]
    path = cache / "exclusions.json"
    good = json.dumps({"ranges": [{"drive": name, "start": 2, "end": 5, "reason": "gap"}]}, indent=1).encode()

    def check(data: bytes) -> None:
        path.write_bytes(data)
        found = _refused_or_read(path, lambda: Exclusions.of(cache))
        for entry in found.ranges if found else []:  # what is read is within the drive it names
            assert 0 <= entry["start"] < entry["end"] <= 40

    fuzz(budget, damaged(good), check)


# --- checkpoints' JSON ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("cnn-lstm", targets=["steering"], frame_shape=(3, 66, 200), hidden=8, features=16)
    optimizer = torch.optim.Adam(model.parameters())
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(run / "last", model, optimizer, {"epoch": 0, "best_score": [1.0], "bad_epochs": 0})
    (run / "run.json").write_text(json.dumps({"config": {"model": "cnn-lstm"}, "split": {"train": ["a"]}}))
    return run


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("name", ["last/model.json", "last/progress.json", "run.json"])
def test_a_damaged_checkpoint_file_is_read_or_refused_naming_it(checkpoint, name, budget, tmp_path):
    run = shutil.copytree(checkpoint, tmp_path / "run")
    path = run / name
    good = path.read_bytes()
    model = load_model(run / "last")
    read = {"last/model.json": lambda: load_model(run / "last"), "run.json": lambda: read_run(run),
            "last/progress.json": lambda: load_optimizer(run / "last", torch.optim.Adam(model.parameters()))}[name]

    def check(data: bytes) -> None:
        path.write_bytes(data)
        _refused_or_read(path, read)

    fuzz(budget // 2, damaged(good), check)


# --- the predictions scorer: against a reference reader ---------------------------------------------------

def _reference(text: str, key: str, columns: list[str]) -> dict[str, list[float]] | None:
    """A CSV as a careful reader takes it: a header naming `key` and `columns` and no name twice, rows with
    a cell in each of those, distinct keys, finite numbers in `columns`; None where it is not that."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = (rows[0], [r for r in rows[1:] if r]) if rows else ([], [])
    named = [c for c in header if c]
    if not set([key, *columns]) <= set(header) or len(set(named)) < len(named) or not body:
        return None
    at = [header.index(c) for c in [key, *columns]]
    if any(len(r) <= max(at) for r in body):
        return None
    found = {r[at[0]]: [finite_number(r[i]) for i in at[1:]] for r in body}
    if len(found) < len(body) or any(None in v for v in found.values()):
        return None
    return found


CELLS = st.one_of(st.floats(-10, 10, allow_nan=False).map(repr), st.sampled_from(["nan", "inf", "", " 1 ", "1_0",
                                                                                  "1e999", "x", "0x1", "-0"]))


@st.composite
def scored_files(draw) -> tuple[str, str, int]:
    """A truth and a predictions CSV of steering for the same frames, in any order and line endings,
    with cells drawn from numbers and what is not one, and now and then a column twice or missing."""
    n = draw(st.integers(1, 6))
    ids = [str(i) for i in range(n)]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    preds_header = draw(st.sampled_from([["frame_id", "steering"], ["steering", "frame_id"],
                                         ["frame_id", "steering", "steering"], ["frame_id"], ["frame_id", "x"]]))
    order = draw(st.permutations(ids))
    body = [[i if c == "frame_id" else draw(CELLS) for c in preds_header] for i in order]
    truth = newline.join(["frame_id,steering", *(f"{i},{0.1 * int(i)}" for i in ids)]) + newline
    preds = newline.join(",".join(r) for r in [preds_header, *body]) + draw(st.sampled_from(["", newline]))
    return truth, preds, n


@pytest.mark.parametrize("budget", BUDGETS)
def test_a_predictions_file_is_scored_as_a_careful_reader_reads_it_or_refused_naming_the_line(budget, tmp_path):
    truth_path, preds_path = tmp_path / "truth.csv", tmp_path / "preds.csv"

    def check(files: tuple[str, str, int]) -> None:
        truth, preds, n = files
        truth_path.write_text(truth, newline="")
        preds_path.write_text(preds, newline="")
        result = _refused_or_read(preds_path, lambda: score_files(preds_path, truth_path, key="frame_id"))
        expected = _reference(preds, "frame_id", ["steering"])
        if expected is None:
            assert result is None, f"scored a file a careful reader refuses: {preds!r}"
            return
        assert result is not None, f"refused a file a careful reader reads: {preds!r}"
        truth_values = np.array([0.1 * i for i in range(n)])
        model = np.array([expected[str(i)][0] for i in range(n)])
        rmse = float(np.sqrt(np.mean((model - truth_values) ** 2)))
        assert result["scores"]["all"]["model"]["steering"]["rmse"] == pytest.approx(rmse, rel=1e-12, abs=1e-15)

    fuzz(budget * 2, scored_files(), check)
