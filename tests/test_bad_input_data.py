"""Bad input to `steer import` and `steer world`, each case built from a small recording the test writes:
every one is refused by the `refuse` fixture (non-zero exit, one `steer <verb>: error:` line naming the
file and line, frame, drive or flag, no traceback, nothing new or changed on disk). The positive cases
at the end hold the options that accept such input on purpose, and a BOM."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_sources import _catalog, _challenge2, _jpeg, _row, _sim, _video_log

from steer.cli import main
from steer.data.cache import FrameCache

TINY = ["--size", "12x16", "--stretch", "--processes", "1"]


def _sim_rows(tmp: Path, *rows: str, header: str | None = None) -> Path:
    (tmp / "sim").mkdir()
    return _sim(tmp / "sim", list(rows), header)


def _log(tmp: Path) -> Path:
    return tmp / "sim" / "driving_log.csv"


def _tub(tmp: Path, n: int = 4, **fields) -> Path:
    records = []
    for i in range(n):
        name = f"{i}_cam_image_array_.jpg"
        _jpeg(tmp / "tub" / "images" / name, size=(24, 32))
        record = {"_index": i, "_timestamp_ms": 1_610_000_000_000 + 50 * i, "cam/image_array": name,
                  "user/angle": 0.1, "user/throttle": 0.2, "user/mode": "user"}
        records.append({**record, **{k: v for k, v in fields.items() if i == n - 1}})
    return _catalog(tmp / "tub", records, [])


def _generic(tmp: Path, lines: list[str], header: str = "t,wheel,v,thr") -> Path:
    folder = tmp / "rec"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "log.csv").write_text("\n".join([header] + lines) + "\n")
    return folder


GENERIC = ["--format", "generic", "--time", "t", "--signals", "steering=wheel:rad,speed=v:m/s,throttle=thr:1",
           "--signals-only"]


def _sully(tmp: Path, lines: list[str]) -> Path:
    folder = tmp / "sully"
    for i in range(len(lines)):
        _jpeg(folder / f"{i}.jpg", size=(24, 32))
    (folder / "data.txt").write_bytes("\n".join(lines).encode() if isinstance(lines[0], str) else b"\n".join(lines))
    return folder


def _cache_with_manifest(tmp: Path, text: bytes) -> Path:
    folder = _sim_rows(tmp, _row(0), _row(100))
    main(["import", str(folder), "--out", str(tmp / "cache"), *TINY])
    (tmp / "cache" / "manifest.json").write_bytes(text)
    return folder


# Each case: (name, build(tmp) -> (argv after `steer`, the names the error line must hold)).
def _nan(tmp):
    return ["import", _sim_rows(tmp, _row(0), _row(100, steering="nan"))], ("driving_log.csv line 2", "NaN")


def _inf(tmp):
    return ["import", _sim_rows(tmp, _row(0), _row(100, speed="inf"))], ("driving_log.csv line 2", "inf")


def _minus_inf(tmp):
    return ["import", _sim_rows(tmp, _row(0, steering="-inf"))], ("driving_log.csv line 1", "steering is inf")


def _degrees_as_units(tmp):  # a simulator fork that logs degrees
    return (["import", _sim_rows(tmp, _row(0, steering="25"))],
            ("driving_log.csv line 1", "--steering-rad-per-unit", "--limits steering=25"))


def _degrees_as_rad(tmp):
    folder = _generic(tmp, ["0,0.1,10,0.2", "0.05,90,10,0.2"])
    return ["import", folder, *GENERIC], ("log.csv line 3", "steering is 90 rad", "--signals steering=wheel:UNIT")


def _degrees_as_rad_after_conversion(tmp):  # radians per unit given where the log holds degrees
    return (["import", _sim_rows(tmp, _row(0, steering="0.9")), "--steering-rad-per-unit", "20"],
            ("driving_log.csv line 1", "steering wheel's lock", "720"))


def _deeppicar_degrees(tmp):
    folder = _video_log(tmp / "picar", frames_in_video=3, rows=3)
    (folder / "out-key.csv").write_text((folder / "out-key.csv").read_text().replace("-0.5", "30"))
    return ["import", folder], ("out-key.csv line 2", "--wheel-unit deg")


def _speed_in_kmh(tmp):
    folder = _generic(tmp, ["0,0.1,10,0.2", "0.05,0.1,130,0.2"])
    return ["import", folder, *GENERIC], ("log.csv line 3", "speed is 130 m/s", "--signals speed=v:UNIT")


def _throttle_in_percent(tmp):
    folder = _generic(tmp, ["0,0.1,10,80"])
    return ["import", folder, *GENERIC], ("log.csv line 2", "throttle is 80,", "--signals throttle=thr:UNIT")


def _donkey_throttle(tmp):
    return ["import", _tub(tmp, **{"user/throttle": 3.0})], ("catalog_0.catalog line 4", "--throttle-scale")


def _repeated_times(tmp):
    return (["import", _sim_rows(tmp, _row(0), _row(100), _row(100), _row(200))],
            ("driving_log.csv line 3", "--repeated-times drop"))


def _repeated_times_generic(tmp):
    folder = _generic(tmp, [f"{t},0.1,10,0.2" for t in (0, 0.05, 0.05, 0.05, 0.05, 0.1)])
    return ["import", folder, *GENERIC], ("log.csv line 4", "3 such rows", "--repeated-times drop")


def _odd_frame_size(tmp):
    folder = _sim_rows(tmp, _row(0), _row(100), _row(200))
    odd = folder / "IMG" / _row(100).split(",")[0]
    _jpeg(odd, size=(120, 160))
    return ["import", folder], (odd.name, "160x120", "--odd-frames resize")


def _odd_png_size(tmp):
    folder = tmp / "rec"
    for i, size in enumerate([(24, 32), (24, 32), (30, 32)]):
        folder.joinpath("img").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / "img" / f"{i}.png"), np.zeros((*size, 3), np.uint8))
    (folder / "log.csv").write_text("f,wheel\n0.png,0\n1.png,0\n2.png,0\n")
    return (["import", folder, "--format", "generic", "--frames", "img", "--frame", "f", "--fps", "10",
             "--signals", "steering=wheel:rad"], ("2.png", "--odd-frames"))


def _header_only_sim(tmp):
    return ["import", _sim_rows(tmp, header="center,left,right,steering,throttle,brake,speed")], (
        "driving_log.csv", "no rows")


def _header_only_csv(tmp):
    return ["import", _generic(tmp, []), *GENERIC], ("log.csv", "no rows")


def _empty_log(tmp):
    folder = _sim_rows(tmp)
    return ["import", folder], ("driving_log.csv", "empty log")


def _bad_bytes_sim(tmp):
    folder = _sim_rows(tmp, _row(0), _row(100))
    _log(tmp).write_bytes(_log(tmp).read_bytes().replace(b"0.5", b"0\xff5", 2)[::1])
    return ["import", folder], ("driving_log.csv line 1", "0xff", "UTF-8")


def _bad_bytes_sully(tmp):
    return ["import", _sully(tmp, [b"0.jpg 1.5", b"1.jpg 2\xe9"]), "--fps", "30"], ("data.txt line 2", "0xe9")


def _bad_bytes_catalog(tmp):
    folder = _tub(tmp)
    catalog = folder / "catalog_0.catalog"
    catalog.write_bytes(catalog.read_bytes().replace(b"user", b"us\xc3\x28r", 1))
    return ["import", folder], ("catalog_0.catalog line 1", "not UTF-8")


def _bad_bytes_generic(tmp):
    folder = _generic(tmp, ["0,0.1,10,0.2", "0.05,0.1,10,0.2"])
    (folder / "log.csv").write_bytes((folder / "log.csv").read_bytes() + b"0.1,\x80,1,1\n")
    return ["import", folder, *GENERIC], ("log.csv line 4", "0x80")


def _corrupt_jpeg(tmp):
    folder = _sim_rows(tmp, _row(0), _row(100))
    broken = folder / "IMG" / _row(100).split(",")[0]
    broken.write_bytes(broken.read_bytes()[:200])
    return ["import", folder], (broken.name, "cannot decode")


def _corrupt_jpeg_in_a_worker(tmp):
    records = []
    for i in range(140):  # enough for two processes
        name = f"{i}_cam_image_array_.jpg"
        _jpeg(tmp / "tub" / "images" / name, size=(24, 32))
        records.append({"_index": i, "_timestamp_ms": 1_610_000_000_000 + 50 * i, "cam/image_array": name,
                        "user/angle": 0.1, "user/throttle": 0.2})
    folder = _catalog(tmp / "tub", records, [])
    (folder / "images" / "120_cam_image_array_.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return ["import", folder, "--size", "12x16", "--stretch", "--processes", "2"], ("120_cam_image_array_.jpg",)


def _empty_image(tmp):
    folder = _sim_rows(tmp, _row(0), _row(100))
    (folder / "IMG" / _row(100).split(",")[0]).write_bytes(b"")
    return ["import", folder], (_row(100).split(",")[0], "empty file")


def _missing_image(tmp):
    folder = _sim_rows(tmp, _row(0), _row(100))
    (folder / "IMG" / _row(100).split(",")[0]).unlink()
    return ["import", folder], ("driving_log.csv line 2", _row(100).split(",")[0])


def _missing_image_donkey(tmp):
    folder = _tub(tmp)
    (folder / "images" / "2_cam_image_array_.jpg").unlink()
    return ["import", folder], ("catalog_0.catalog line 3", "2_cam_image_array_.jpg")


def _impossible_time(tmp):
    folder = _sim_rows(tmp, _row(0), _row(100))
    _log(tmp).write_text(_log(tmp).read_text().replace("13_39_56_100", "13_39_76_100"))
    image = folder / "IMG" / _row(100).split(",")[0]
    image.rename(image.with_name(image.name.replace("13_39_56_100", "13_39_76_100")))
    return ["import", folder], ("driving_log.csv line 2", "not a date")


def _not_a_number(tmp):
    return ["import", _sim_rows(tmp, _row(0), _row(100, speed="fast"))], ("driving_log.csv line 2",)


def _short_row(tmp):
    folder = _sim_rows(tmp, _row(0), _row(100))
    _log(tmp).write_text(_row(0) + "\n" + ",".join(_row(100).split(",")[:4]) + "\n")
    return ["import", folder], ("driving_log.csv line 2", "4 fields")


def _donkey_field_missing(tmp):
    return ["import", _tub(tmp, **{"user/angle": None})], ("catalog_0.catalog line 4", "user/angle")


def _donkey_no_time(tmp):
    folder = _tub(tmp)
    catalog = folder / "catalog_0.catalog"
    catalog.write_text(catalog.read_text().replace('"_timestamp_ms"', '"_time"', 1))
    return ["import", folder], ("catalog_0.catalog line 1", "_timestamp_ms")


def _donkey_not_json(tmp):
    folder = _tub(tmp)
    with (folder / "catalog_0.catalog").open("a") as f:
        f.write("{not json\n")
    return ["import", folder], ("catalog_0.catalog line 5", "not JSON")


def _donkey_manifest(tmp):
    folder = _tub(tmp)
    (folder / "manifest.json").write_text('[]\n{"paths": ')
    return ["import", folder], ("manifest.json",)


def _sully_line(tmp):
    return ["import", _sully(tmp, ["0.jpg 1.5", "1.jpg"]), "--fps", "30"], ("data.txt line 2", "expected")


def _sully_date(tmp):
    return ["import", _sully(tmp, ["0.jpg 1.5,2018-07-01 17:09:44:912", "1.jpg 1,2018-13-01 17:09:45:11"])], (
        "data.txt line 2", "not a date")


def _donkey_v1_time(tmp):
    folder = tmp / "tub"
    _jpeg(folder / "1.jpg", size=(24, 32))
    (folder / "meta.json").write_text("{}")
    (folder / "record_1.json").write_text(json.dumps({"cam/image_array": "1.jpg", "user/angle": 0, "user/throttle": 0,
                                                      "timestamp": "yesterday"}))
    return ["import", folder], ("record_1.json", "yesterday")


def _sully_nan(tmp):
    return ["import", _sully(tmp, ["0.jpg 1.5", "1.jpg nan"]), "--fps", "30"], ("data.txt line 2", "NaN")


def _generic_missing_column(tmp):
    folder = _generic(tmp, ["0,0.1,10,0.2"], header="t,angle,v,thr")
    return ["import", folder, *GENERIC], ("log.csv", "wheel")


def _generic_time_not_a_number(tmp):
    return ["import", _generic(tmp, ["0,0.1,10,0.2", "soon,0.1,10,0.2"]), *GENERIC], ("log.csv line 3", "t ")


def _generic_time_infinite(tmp):
    return ["import", _generic(tmp, ["0,0.1,10,0.2", "inf,0.1,10,0.2"]), *GENERIC], ("log.csv line 3", "infinite")


def _generic_missing_image(tmp):
    folder = tmp / "rec"
    _jpeg(folder / "img" / "a.jpg", size=(24, 32))
    (folder / "log.csv").write_text("f,wheel\na.jpg,0\nb.jpg,0\n")
    return (["import", folder, "--format", "generic", "--frames", "img", "--frame", "f", "--fps", "10",
             "--signals", "steering=wheel:rad"], ("log.csv line 3", "b.jpg"))


def _truncated_video(tmp):
    return ["import", _video_log(tmp / "picar", frames_in_video=4, rows=6)], ("out-video.avi", "frame 4")


def _challenge2_time_backwards(tmp):
    folder = tmp / "raw"
    folder.mkdir()
    (folder / "camera.csv").write_text("timestamp,width,height,frame_id,filename\n")
    (folder / "steering.csv").write_text("timestamp,angle,torque,speed\n10,0,0,1\n20,0,0,1\n20,0,0,1\n")
    return ["import", folder, "--signals-only"], ("steering.csv line 4", "does not increase")


def _truncated_manifest(tmp):
    folder = _cache_with_manifest(tmp, b'{"version": 1, "drives": [{"name": "sim", "fr')
    return ["import", folder, "--out", tmp / "cache"], ("manifest.json line 1", "truncated")


def _garbled_manifest(tmp):
    folder = _cache_with_manifest(tmp, b"\x00\x93garbage")
    return ["import", folder, "--out", tmp / "cache"], ("manifest.json",)


def _manifest_without_drives(tmp):
    folder = _cache_with_manifest(tmp, b'{"version": 1}')
    return ["import", folder, "--out", tmp / "cache"], ("manifest.json", "no list of drives")


def _foreign_option(tmp):
    return ["import", _sim_rows(tmp, _row(0)), "--fps", "30"], ("fps",)


def _bad_limits_flag(tmp):
    return ["import", _sim_rows(tmp, _row(0)), "--limits", "steering"], ("--limits", "NAME=MAX")


def _same_names_other_source(tmp):
    main(["import", str(_sim(tmp / "a" / "sim", [_row(0)])), "--out", str(tmp / "cache"), *TINY])
    return ["import", _sim(tmp / "b" / "sim", [_row(0), _row(100)]), "--out", tmp / "cache"], (
        "already holds drives named ['sim']",)


def _world_fps(tmp):
    return ["world", "--fps", "0", "--drives", "1", "--frames", "4"], ("--fps 0",)


def _world_fps_nan(tmp):
    return ["world", "--fps", "nan", "--drives", "1", "--frames", "4"], ("--fps nan",)


def _world_frames(tmp):
    return ["world", "--frames", "1", "--drives", "1"], ("--frames 1",)


def _world_drop_rate(tmp):
    return ["world", "--drop-rate", "1.5", "--drives", "1", "--frames", "4"], ("--drop-rate 1.5",)


def _world_drives(tmp):
    return ["world", "--drives", "0"], ("--drives 0",)


def _world_seed(tmp):
    return ["world", "--seed", "-3", "--drives", "1", "--frames", "4"], ("--seed -3",)


def _signals(tmp: Path) -> Path:
    from steer.sources.importer import import_recording

    import_recording(_challenge2(tmp / "hmb", images=False), tmp / "signals", signals_only=True)
    return tmp / "signals"


def _world_speed(tmp):
    return ["world", "--replay", _signals(tmp), "--speed-mps", "250"], ("--speed-mps 250", "100")


def _edit_signals(cache: Path, old: str, new: str) -> None:
    path = next((cache / "drives").iterdir()) / "signals.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")


def _world_replay_inf(tmp):
    cache = _signals(tmp)
    _edit_signals(cache, ",21,", ",inf,")
    # the cache refuses its own damaged signals.csv first, naming the drive, file and line
    return ["world", "--replay", cache], ("drive 'hmb-center'", "signals.csv line 3", "not 4 finite numbers")


def _world_replay_degrees(tmp):
    cache = _signals(tmp)
    _edit_signals(cache, ",0.01", ",57.3")
    return ["world", "--replay", cache], ("drive hmb-center frame 1", "steering wheel's lock", "--limits steering=")


def _world_replay_no_speed(tmp):  # DeepPicar logs steering only
    cache = tmp / "signals"
    main(["import", str(_video_log(tmp / "picar", frames_in_video=3, rows=3)), "--out", str(cache), "--signals-only"])
    return ["world", "--replay", cache], ("drive out-key", "--speed-mps")


def _world_replay_normalised_steering(tmp):
    cache = tmp / "signals"
    main(["import", str(_sim_rows(tmp, _row(0), _row(100))), "--out", str(cache), "--size", "12x16", "--stretch"])
    return ["world", "--replay", cache], ("drive sim", "--steering-rad-per-unit")


def _world_replay_damaged(tmp):
    cache = _signals(tmp)
    (next((cache / "drives").iterdir()) / "frames.npy").unlink()
    return ["world", "--replay", cache], ("hmb-center", "frames.npy", "import")


def _world_replay_truncated_manifest(tmp):
    cache = _signals(tmp)
    (cache / "manifest.json").write_text((cache / "manifest.json").read_text()[:50])
    return ["world", "--replay", cache], ("manifest.json line",)


def _world_replay_missing(tmp):
    return ["world", "--replay", tmp / "nowhere"], ("nowhere", "not a frame cache")


def _world_out_garbled(tmp):
    (tmp / "cache").mkdir()
    (tmp / "cache" / "manifest.json").write_text("{")
    return ["world", "--out", tmp / "cache", "--drives", "1", "--frames", "4"], ("manifest.json",)


CASES = [_nan, _inf, _minus_inf, _degrees_as_units, _degrees_as_rad, _degrees_as_rad_after_conversion,
         _deeppicar_degrees, _speed_in_kmh, _throttle_in_percent, _donkey_throttle, _repeated_times,
         _repeated_times_generic, _odd_frame_size, _odd_png_size, _header_only_sim, _header_only_csv, _empty_log,
         _bad_bytes_sim, _bad_bytes_sully, _bad_bytes_catalog, _bad_bytes_generic, _corrupt_jpeg,
         _corrupt_jpeg_in_a_worker, _empty_image, _missing_image, _missing_image_donkey, _impossible_time,
         _not_a_number, _short_row,
         _donkey_field_missing, _donkey_no_time, _donkey_not_json, _donkey_manifest,
         _sully_line, _sully_date, _donkey_v1_time, _sully_nan,
         _generic_missing_column, _generic_time_not_a_number, _generic_time_infinite, _generic_missing_image,
         _truncated_video, _challenge2_time_backwards, _truncated_manifest, _garbled_manifest,
         _manifest_without_drives, _foreign_option, _bad_limits_flag, _same_names_other_source,
         _world_fps, _world_fps_nan, _world_frames, _world_drop_rate, _world_drives, _world_seed, _world_speed,
         _world_replay_inf, _world_replay_degrees, _world_replay_no_speed, _world_replay_normalised_steering,
         _world_replay_damaged, _world_replay_truncated_manifest,
         _world_replay_missing, _world_out_garbled]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__.strip("_"))
def test_bad_input_is_refused(case, tmp_path, refuse):
    argv, names = case(tmp_path)
    if "--out" not in argv:
        argv = [*argv, "--out", tmp_path / "cache"]
    if argv[0] == "import" and "--processes" not in argv:
        argv = [*argv, "--processes", "1"]
    refuse(argv, tmp_path, *names)


def test_a_bom_is_accepted(tmp_path):
    folder = _sim_rows(tmp_path, _row(0), _row(100), header="center,left,right,steering,throttle,brake,speed")
    _log(tmp_path).write_bytes(b"\xef\xbb\xbf" + _log(tmp_path).read_bytes())
    main(["import", str(folder), "--out", str(tmp_path / "cache"), *TINY])
    rec = _generic(tmp_path, ["0,0.1,10,0.2", "0.05,0.2,10,0.2"])
    (rec / "log.csv").write_bytes(b"\xef\xbb\xbf" + (rec / "log.csv").read_bytes())
    main(["import", str(rec), "--out", str(tmp_path / "cache"), *GENERIC, *TINY])
    drives = {d.name: d for d in FrameCache(tmp_path / "cache").drives}
    assert len(drives["sim"]) == 2 and np.allclose(drives["rec"].signals["steering"], [0.1, 0.2])


def test_repeated_times_dropped_on_request_are_counted(tmp_path, capsys):
    folder = _sim_rows(tmp_path, _row(0), _row(100), _row(100), _row(100), _row(200))
    main(["import", str(folder), "--out", str(tmp_path / "cache"), "--repeated-times", "drop", *TINY])
    report = json.loads(capsys.readouterr().out)
    assert report["dropped"] == {"rows repeating the time of the row before": 2}
    assert list(report["drives"].values()) == [3]  # one drive, not three


def test_odd_frames_resized_on_request_are_counted(tmp_path, capsys):
    folder = _sim_rows(tmp_path, _row(0), _row(100), _row(200))
    _jpeg(folder / "IMG" / _row(100).split(",")[0], value=200, size=(120, 160))
    main(["import", str(folder), "--out", str(tmp_path / "cache"), "--odd-frames", "resize", *TINY])
    assert json.loads(capsys.readouterr().out)["odd_frames_resized"] == 1
    frames = FrameCache(tmp_path / "cache").drives[0].frames
    assert frames.shape == (3, 3, 12, 16) and frames[1].mean() == pytest.approx(200, abs=2)


def test_a_wider_range_on_request_and_short_drives_reported(tmp_path, capsys):
    folder = _sim_rows(tmp_path, _row(0, steering="25"), _row(100, steering="-3"))
    main(["import", str(folder), "--out", str(tmp_path / "cache"), "--limits", "steering=30", *TINY])
    report = json.loads(capsys.readouterr().out)
    assert report["short_drives"] == {"sim": 2}  # fewer frames than one training window
    assert FrameCache(tmp_path / "cache").drives[0].signals["steering"].tolist() == [-25, 3]
