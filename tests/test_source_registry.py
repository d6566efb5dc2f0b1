"""The readers' declarations are the one place a layout is described: detection, flags and --help come from them."""
from pathlib import Path

import pytest

from steer.cli import build_parser, main
from steer.sources.registry import Where, detect, readers


def test_every_reader_and_its_options_are_in_import_help(capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, layout in readers().items():
        assert f"{name} {' '.join(layout.help.split())}" in text, name
        for option in layout.options:
            flag = "--" + option.name.replace("_", "-")
            assert flag in text, f"{name}: {flag}"


def test_each_declared_option_is_a_working_flag():
    parser = build_parser()
    for name, layout in readers().items():
        for option in layout.options:
            value = [] if option.type is bool else [option.choices[0] if option.choices else "1"]
            args = parser.parse_args(["import", "x", "--out", "y", "--" + option.name.replace("_", "-"), *value])
            assert getattr(args, option.name) not in (None, False), f"{name}: {option.name}"


def test_detection_by_declaration(tmp_path):
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "driving_log.csv").write_text("")
    assert detect(tmp_path / "sim") == "udacity-sim"
    (tmp_path / "sim" / "data.txt").write_text("")  # now two layouts claim it
    with pytest.raises(ValueError, match=r"each of \['sullychen', 'udacity-sim'\]\); give --format"):
        detect(tmp_path / "sim")
    with pytest.raises(ValueError, match="matches none"):
        detect(tmp_path)


def test_provenance_is_a_file_and_a_number_not_text():
    log = Path("log.csv")
    where = Where(log, 12)
    assert (where.file, where.number, str(where)) == (log, 12, "log.csv line 12")
    assert str(Where(log, 3, "message")) == "log.csv message 3" and str(Where(log)) == "log.csv"
