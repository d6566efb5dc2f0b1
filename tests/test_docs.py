"""The docs say what the code does: every `steer` command in a shell block of the README and the manual
parses with the real parser, every flag of every verb and every option of every format is named on its
page, the site's navigation lists every page and every relative link lands, and Getting started's path
runs as written on a small tub. `mkdocs build --strict` (rendering, anchors, the API page from
docstrings) runs in .ci/run, not here: it needs the docs extra and takes seconds of its own."""
import argparse
import re
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_sources import _catalog

from steer.cli import VERBS, build_parser, main
from steer.sources.registry import readers

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
GETTING_STARTED = DOCS / "getting-started.md"
PAGES = {"import": "import.md", "inspect": "import.md", "verify": "import.md", "world": "world.md",
         "train": "train.md", "compare": "train.md", "evaluate": "evaluate.md", "view": "evaluate.md",
         "explain": "evaluate.md", "diagnose": "evaluate.md", "run": "run-and-export.md",
         "export": "run-and-export.md", "drive": "drive.md", "dagger": "drive.md", "record": "simulators.md",
         "demo": "getting-started.md"}
SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def commands(path: Path) -> list[list[str]]:
    """The arguments of every `steer` command in the file's shell blocks (`steer ...`, `.venv/bin/steer ...`,
    or `... -m steer ...` as under torchrun), continuation lines joined."""
    found = []
    for block in SHELL_BLOCK.findall(path.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line)
            if words and Path(words[0]).name == "steer":
                found.append(words[1:])
            elif "steer" in words and words[words.index("steer") - 1] == "-m":
                found.append(words[words.index("steer") + 1:])
    return found


def has_flag(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def verb_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_steer_command_in_a_shell_block_parses_with_the_real_cli(parser, capsys):
    assert len(commands(README)) >= 6 and len(commands(GETTING_STARTED)) >= 6  # the blocks were found
    refused = []
    for path in markdown_files():
        for argv in commands(path):
            try:
                parser.parse_args(argv)
            except SystemExit:
                refused.append(f"{path.relative_to(ROOT)}: steer {shlex.join(argv)}: {capsys.readouterr().err.strip()}")
    assert not refused, "\n".join(refused)


def test_every_verb_has_a_page_naming_each_of_its_flags(parser):
    assert set(PAGES) == set(VERBS), "a verb without a page: add it to docs/ and to PAGES"
    missing = []
    for verb, sub in verb_parsers(parser).items():
        text = (DOCS / PAGES[verb]).read_text()
        missing += [f"{PAGES[verb]}: steer {verb} {flag}" for action in sub._actions for flag in action.option_strings
                    if flag not in ("-h", "--help") and not has_flag(text, flag)]
    assert not missing, "\n".join(missing)


def test_every_format_has_a_page_naming_each_of_its_options():
    missing = []
    for name, reader in readers().items():
        page = DOCS / "formats" / f"{name}.md"
        assert page.exists(), f"format {name} has no page docs/formats/{name}.md"
        missing += [f"{page.name}: --{o.name.replace('_', '-')}" for o in reader.options
                    if not has_flag(page.read_text(), f"--{o.name.replace('_', '-')}")]
    assert not missing, "\n".join(missing)


def test_the_site_lists_every_page_and_every_relative_link_lands():
    nav = set(re.findall(r"([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    assert nav == {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    broken = []
    for path in markdown_files():
        for target in LINK.findall(path.read_text()):
            file = target.split("#")[0]
            if file and "://" not in file and not (path.parent / file).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "\n".join(broken)


def test_the_readmes_own_recording_path_is_getting_starteds():
    """So the test below runs the README's commands too."""
    path = [argv for argv in commands(GETTING_STARTED) if argv[0] != "demo"]
    assert [argv for argv in commands(README) if argv[0] != "demo"] == path


def _tub(folder: Path, drives: int = 3, frames: int = 30) -> None:
    """A donkeycar v2 tub of `drives` drives (5 s apart) of textured 120x160 frames at 20 Hz."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(drives * frames):
        name = f"{i}_cam_image_array_.jpg"
        (folder / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / "images" / name), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
        records.append({"_index": i, "_timestamp_ms": 1_610_000_000_000 + 50 * i + 5000 * (i // frames),
                        "cam/image_array": name, "user/angle": float(np.sin(i / 9)), "user/throttle": 0.3,
                        "user/mode": "user"})
    _catalog(folder, records, [])


def test_getting_started_runs_as_written_on_a_small_tub(tmp_path, monkeypatch):
    """The page's path after set-up and the demo, on a tub of 90 frames in place of the shared one, from
    a folder whose ../shared/data holds it; training for 1 epoch. On one torch thread: on the shared 2 cores at
    a load of 5-7, two threads took 100 s over 180 frames, one took 12 s over these 90."""
    _tub(tmp_path / "shared" / "data" / "donkey" / "track")
    (tmp_path / "steer").mkdir()
    monkeypatch.chdir(tmp_path / "steer")
    path = [argv for argv in commands(GETTING_STARTED) if argv[0] != "demo"]
    assert [argv[0] for argv in path] == ["import", "inspect", "train", "evaluate", "run"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for argv in path:
            main(argv + (["--epochs", "1"] if argv[0] == "train" else []))
    finally:
        torch.set_num_threads(threads)
    for written in ("track/inspect/inspect.html", "track-cnn-lstm/best/model.json", "track-cnn-lstm/report.html",
                    "track-cnn-lstm/stream.csv"):
        assert (tmp_path / "steer" / "runs" / written).exists(), written
