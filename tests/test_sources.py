import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED

from steer.data.cache import FrameCache
from steer.sources import deeptesla, donkey, generic, sullychen, udacity, udacity_sim
from steer.sources.images import BadImage
from steer.sources.importer import import_recording
from steer.sources.table import split_points

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real recordings not found at {SHARED} "
                                  "(set STEER_SHARED_DATA to the shared/data folder)")


def _jpeg(path: Path, value: int = 100, size=(160, 320)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*size, 3), value, np.uint8))


def _sim(folder: Path, rows: list[str], header: str | None = None) -> Path:
    for row in rows:
        for name in row.split(",")[:3]:
            _jpeg(folder / "IMG" / name.strip().split("\\")[-1])
    (folder / "driving_log.csv").write_text("\n".join(([header] if header else []) + rows) + "\n")
    return folder


def _row(ms: int, steering="0.1", speed="10") -> str:
    t = f"2016_12_01_13_39_{56 + ms // 1000:02d}_{ms % 1000:03d}"
    return f"center_{t}.jpg,left_{t}.jpg,right_{t}.jpg,{steering},0.5,0,{speed}"


def test_udacity_sim_units_sign_and_time(tmp_path):
    folder = _sim(tmp_path / "sim", [_row(0, "0.25", "30"), _row(100), _row(200)],
                  header="Center,Left,Right,SteeringAngle,Throttle,Brake,Speed")
    table = udacity_sim.read(folder)
    assert np.allclose(np.diff(table.timestamps_s), 0.1)
    assert table.signals["steering"].values[0] == pytest.approx(-0.25)  # positive = left in steer
    assert table.signals["speed"].values[0] == pytest.approx(30 * 0.44704)  # mph to m/s
    left = udacity_sim.read(folder, camera="left", side_correction=0.2, steering_rad_per_unit=0.5)
    assert left.signals["steering"].values[0] == pytest.approx(-(0.25 + 0.2) * 0.5)
    assert left.signals["steering"].unit == "rad" and left.name == "sim-left"


def test_udacity_sim_bad_rows_name_the_line(tmp_path):
    folder = _sim(tmp_path / "a", [_row(0), _row(100)])
    (folder / "IMG" / (_row(100).split(",")[0])).unlink()
    with pytest.raises(FileNotFoundError, match="driving_log.csv line 2"):
        udacity_sim.read(folder)
    folder = _sim(tmp_path / "b", [_row(0), _row(100, steering="nan")])
    with pytest.raises(ValueError, match="line 2: steering is NaN"):
        udacity_sim.read(folder)
    folder = _sim(tmp_path / "c", [_row(0), _row(100, speed="fast")])
    with pytest.raises(ValueError, match="line 2: a signal is not a number"):
        udacity_sim.read(folder)


def test_corrupt_image_names_the_file_and_nothing_is_written(tmp_path):
    folder = _sim(tmp_path / "sim", [_row(0), _row(100)])
    broken = folder / "IMG" / _row(100).split(",")[0]
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(BadImage, match=broken.name):
        import_recording(folder, tmp_path / "cache")
    assert not (tmp_path / "cache" / "manifest.json").exists()


def test_drives_split_at_gaps_and_backward_steps():
    times = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 1.0, 1.1])
    assert split_points(times, max_gap_s=1.0) == [3, 5]


def test_import_twice_is_a_no_op(tmp_path):
    folder = _sim(tmp_path / "sim", [_row(0), _row(100), _row(200)])
    first = import_recording(folder, tmp_path / "cache", size=(33, 100), stretch=True)
    assert first["frames"] == 3
    assert FrameCache(tmp_path / "cache").drives[0].frames.shape == (3, 3, 33, 100)
    again = import_recording(folder, tmp_path / "cache", size=(33, 100), stretch=True)
    assert again["skipped"] == "already in the cache"


def _tub_v2(folder: Path, deleted: list[int]) -> Path:
    records = []
    for i in range(5, 10):
        name = f"{i}_cam_image_array_.jpg"
        _jpeg(folder / "images" / name, size=(96, 160))
        records.append({"_index": i, "_timestamp_ms": 1_610_000_000_000 + 50 * i, "cam/image_array": name,
                        "user/angle": 0.5, "user/throttle": -0.3, "user/mode": "user"})
    (folder / "images" / "9_cam_image_array_.jpg").write_bytes(b"")
    return _catalog(folder, records, deleted)


def _catalog(folder: Path, records: list[dict], deleted: list[int]) -> Path:
    (folder / "catalog_0.catalog").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    (folder / "manifest.json").write_text("\n".join([
        "[]", "[]", "{}", "{}", json.dumps({"paths": ["catalog_0.catalog"], "deleted_indexes": deleted})]))
    return folder


def test_decoding_on_two_processes_equals_one_and_a_bad_image_leaves_nothing(tmp_path):
    from steer.cli import main

    records = []
    for i in range(300):  # enough for two processes; a 5 s gap splits it into two drives
        name = f"{i}_cam_image_array_.jpg"
        _jpeg(tmp_path / "tub" / "images" / name, value=i % 250, size=(24, 32))
        records.append({"_index": i, "_timestamp_ms": 1_610_000_000_000 + 50 * i + 5000 * (i >= 180),
                        "cam/image_array": name, "user/angle": 0.1, "user/throttle": 0.2})
    folder = _catalog(tmp_path / "tub", records, [])
    cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (999, 999))  # OpenCV's threads run before the fork
    caches = [tmp_path / f"cache{n}" for n in (1, 2)]
    for n, cache in zip((1, 2), caches):
        main(["import", str(folder), "--out", str(cache), "--size", "12x16", "--stretch", "--processes", str(n)])
    one, two = (FrameCache(c).drives for c in caches)
    assert [(d.name, len(d)) for d in two] == [("tub-00", 180), ("tub-01", 120)]
    for a, b in zip(one, two):
        assert np.array_equal(a.frames, b.frames)
    assert np.allclose(two[1].frames.mean(axis=(1, 2, 3)), np.arange(180, 300) % 250, atol=2)  # in order
    assert FrameCache(caches[0]).hashes() == FrameCache(caches[1]).hashes()
    broken = folder / "images" / "290_cam_image_array_.jpg"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(BadImage, match=broken.name):
        import_recording(folder, tmp_path / "cache3", size=(12, 16), processes=2, stretch=True)
    assert list((tmp_path / "cache3").rglob("*")) == []  # no manifest, no staged frames


def test_donkey_v2_deletions_by_index_and_empty_images(tmp_path):
    folder = _tub_v2(tmp_path / "tub", deleted=[6])
    table = donkey.read(folder)
    assert [p.name.split("_")[0] for p in table.images] == ["5", "7", "8"]  # by _index, not line number
    assert table.dropped == {"deleted records": 1, "records whose image file is empty": 1}
    assert table.signals["steering"].values[0] == pytest.approx(-0.5)
    assert len(donkey.read(folder, keep_deleted=True).images) == 4
    assert donkey.read(folder, throttle_scale=-1).signals["throttle"].values[0] == pytest.approx(0.3)


def test_donkey_bad_catalog_line_is_named(tmp_path):
    folder = _tub_v2(tmp_path / "tub", deleted=[])
    with (folder / "catalog_0.catalog").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match="catalog_0.catalog line 6: not JSON"):
        donkey.read(folder)


@needs_shared
def test_udacity_sim_real_logs():
    windows = udacity_sim.read(SHARED / "udacity-sim" / "appended-sessions-windows")
    assert len(windows.images) == 350
    assert split_points(windows.timestamps_s, 1.0) == [175]  # the second session goes back in time
    header = udacity_sim.read(SHARED / "udacity-sim" / "sample-data-header")
    assert len(header.images) == 350 and split_points(header.timestamps_s, 1.0) == [175]  # the 29 s gap
    assert windows.signals["speed"].values.max() == pytest.approx(30.19 * 0.44704, abs=0.01)


@needs_shared
def test_donkey_real_tubs(tmp_path):
    track = donkey.read(SHARED / "donkey" / "track")
    assert len(track.images) == 2115 - 189  # live records minus those with 0-byte images
    assert track.dropped == {"deleted records": 300, "records whose image file is empty": 189}
    garage = donkey.read(SHARED / "donkey" / "garage")
    assert len(garage.images) == 383 and garage.dropped == {"records driven by the autopilot (local)": 17}
    report = import_recording(SHARED / "donkey" / "garage", tmp_path / "cache")
    cache = FrameCache(tmp_path / "cache")
    assert report["frames"] == 383 and all(d.frames.shape[1:] == (3, 66, 88) for d in cache.drives)  # 160x120 kept
    assert len(cache.drives) > 1  # several drives appended under one numbering


def _video_log(folder: Path, frames_in_video: int, rows: int, tesla: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / ("epoch01_front.avi" if tesla else "out-video.avi")
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(frames_in_video):
        writer.write(np.full((48, 64, 3), 10 * i % 250, np.uint8))
    writer.release()
    log = folder / ("epoch01_steering.csv" if tesla else "out-key.csv")
    first = 1_464_303_685_025_141 if tesla else 1_650_231_487_551  # microseconds / milliseconds
    step = 33_333 if tesla else 50
    lines = [f"{first + i * step},{i if tesla else i + 1},{6.0 if tesla else -0.5}" for i in range(rows)]
    log.write_text(f"ts_micro,{'frame_index' if tesla else 'frame'},wheel\n" + "\n".join(lines) + "\n")
    return folder


def test_deeppicar_time_in_milliseconds_and_unreferenced_frames_counted(tmp_path):
    folder = _video_log(tmp_path / "picar", frames_in_video=12, rows=10)
    table, = deeptesla.read(folder)
    assert np.allclose(np.diff(table.timestamps_s), 0.05)  # 'ts_micro' holds milliseconds here
    assert table.signals["steering"].values[0] == -0.5 and table.dropped == {"video frames no row refers to": 2}
    report = import_recording(folder, tmp_path / "cache", size=(24, 32))
    frames = FrameCache(tmp_path / "cache").drives[0].frames
    assert report["frames"] == 10 and frames[3].mean() == pytest.approx(30, abs=3)  # frame 4 of the log


def test_deeptesla_microseconds_and_degrees(tmp_path):
    table, = deeptesla.read(_video_log(tmp_path / "tesla", frames_in_video=5, rows=5, tesla=True))
    assert np.allclose(np.diff(table.timestamps_s), 1 / 30, atol=1e-6)
    assert table.signals["steering"].values[0] == pytest.approx(np.radians(6.0))


def test_truncated_video_names_the_frame_where_it_breaks(tmp_path):
    folder = _video_log(tmp_path / "picar", frames_in_video=8, rows=10)
    with pytest.raises(BadImage, match="breaks off at frame 8"):
        import_recording(folder, tmp_path / "cache", size=(24, 32))
    assert not (tmp_path / "cache" / "manifest.json").exists()


@needs_shared
def test_deeppicar_real_log(tmp_path):
    report = import_recording(SHARED / "deeppicar" / "kucsl-Apr2022", tmp_path / "cache")
    drive = FrameCache(tmp_path / "cache").drives[0]
    assert report["frames"] == 1000 and len(FrameCache(tmp_path / "cache").drives) == 1
    assert np.median(np.diff(drive.timestamps_s)) == pytest.approx(0.05, abs=1e-3)  # 20 Hz, not the header's 30
    assert set(np.round(drive.signals["steering"], 4)) == {0.0, -0.5236}


def test_sullychen_2018_times_with_unpadded_milliseconds(tmp_path):
    folder = tmp_path / "sully"
    for i in range(3):
        _jpeg(folder / f"{i}.jpg", size=(64, 114))
    (folder / "data.txt").write_text("0.jpg 1.5,2018-07-01 17:09:44:912\n1.jpg -3.0,2018-07-01 17:09:45:11\n"
                                     "2.jpg 0.0,2018-07-01 17:09:45:71")  # no newline at the end
    table = sullychen.read(folder)
    assert np.allclose(np.diff(table.timestamps_s), [0.099, 0.060])
    assert table.signals["steering"].values[1] == pytest.approx(np.radians(-3.0))


def test_sullychen_without_times_needs_a_frame_rate(tmp_path):
    folder = tmp_path / "sully"
    _jpeg(folder / "0.jpg")
    (folder / "data.txt").write_text("0.jpg 1.5\n")
    with pytest.raises(ValueError, match="has no times: give the frame rate"):
        sullychen.read(folder)
    assert sullychen.read(folder, fps=30).timestamps_s[0] == 0.0


def test_options_of_another_format_are_refused(tmp_path):
    folder = _sim(tmp_path / "sim", [_row(0)])
    with pytest.raises(ValueError, match="takes no option \\['fps'\\]"):
        import_recording(folder, tmp_path / "cache", fps=30)


@needs_shared
def test_sullychen_real_folder(tmp_path):
    report = import_recording(SHARED / "sullychen" / "driving_dataset", tmp_path / "cache", fps=30)
    assert report["frames"] == 101


def test_two_sources_with_the_same_drive_names_are_refused(tmp_path):
    first = _sim(tmp_path / "a" / "sim", [_row(0), _row(100)])
    second = _sim(tmp_path / "b" / "sim", [_row(0), _row(100), _row(200)])
    import_recording(first, tmp_path / "cache", size=(33, 100), stretch=True)
    with pytest.raises(ValueError, match="already holds drives named \\['sim'\\]"):
        import_recording(second, tmp_path / "cache", size=(33, 100), stretch=True)
    assert len(FrameCache(tmp_path / "cache").drives[0]) == 2  # the first import is untouched


def _challenge2(folder: Path, images: bool) -> Path:
    folder.mkdir(parents=True)
    lines = ["index,timestamp,width,height,frame_id,filename,angle,torque,speed,lat,long,alt"]
    for i in range(4):
        for cam, offset in (("left", 0), ("center", 3_000_000), ("right", 1_000_000)):
            stamp = 1_479_424_215_873_184_606 + i * 50_000_000 + offset
            lines.append(f"x,{stamp},640,480,{cam}_camera,{cam}/{stamp}.jpg,{0.01 * i},0.375,{20 + i},0,0,0")
            if images:
                _jpeg(folder / cam / f"{stamp}.jpg", size=(48, 64))
    (folder / "interpolated.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_udacity_challenge2_reads_one_camera_of_the_interleaved_rows(tmp_path):
    table = udacity.read(_challenge2(tmp_path / "hmb", images=True))
    assert len(table.images) == 4 and all(p.parent.name == "center" for p in table.images)
    assert np.allclose(np.diff(table.timestamps_s), 0.05)
    assert table.signals["speed"].values[-1] == 23 and table.signals["torque"].unit == "N*m"
    assert table.dropped == {"rows of other cameras (left_camera)": 4, "rows of other cameras (right_camera)": 4}


def test_signal_only_drives_import_without_frames_and_are_not_trained_on(tmp_path):
    report = import_recording(_challenge2(tmp_path / "hmb", images=False), tmp_path / "cache", signals_only=True)
    assert report["rows"] == 4 and report["frames"] == 0
    drive = FrameCache(tmp_path / "cache").drives[0]
    assert drive.frames.shape == (0, 3, 66, 200) and len(drive) == 4
    from steer.train.config import TrainConfig
    from steer.train.loop import train

    with pytest.raises(ValueError, match="no drive with frames"):
        train(TrainConfig(cache=str(tmp_path / "cache"), out=str(tmp_path / "run")))


@needs_shared
def test_signal_only_logs_real(tmp_path):
    tesla = import_recording(SHARED / "signals-only" / "tesla", tmp_path / "cache", signals_only=True)
    assert tesla["rows"] == 1500 + 3900 + 7 * 2700 and tesla["frames"] == 0
    drive = FrameCache(tmp_path / "cache").by_name(["epoch04_steering"])[0]
    assert np.median(np.diff(drive.timestamps_s)) == pytest.approx(1 / 30, abs=1e-4)  # real microseconds
    assert drive.signals["steering"].min() == pytest.approx(np.radians(-18))  # degrees in the file
    challenge = import_recording(SHARED / "signals-only" / "challenge2", tmp_path / "cache", signals_only=True)
    assert challenge["rows"] == 1500  # the centre camera's rows of 4,500
    picar = import_recording(SHARED / "signals-only" / "deeppicar-v2", tmp_path / "cache", signals_only=True)
    assert picar["rows"] == 3000 and set(picar["drives"]) == {"out-key-1-00", "out-key-1-01", "out-key-2", "out-key-6"}


@needs_shared
def test_sullychen_2018_log_without_images(tmp_path):
    report = import_recording(SHARED / "signals-only" / "sullychen-2018", tmp_path / "cache", signals_only=True,
                              max_gap_s=5.0)
    assert report["rows"] == 5000 and report["frames"] == 0
    drive = FrameCache(tmp_path / "cache").drives[0]
    assert np.median(np.diff(drive.timestamps_s)) == pytest.approx(0.057, abs=0.002)  # about 17.5 Hz


def test_world_replays_a_signal_only_import(tmp_path):
    from steer.cli import main

    import_recording(_challenge2(tmp_path / "hmb", images=False), tmp_path / "signals", signals_only=True)
    main(["world", "--replay", str(tmp_path / "signals"), "--out", str(tmp_path / "rendered")])
    drive = FrameCache(tmp_path / "rendered").drives[0]
    assert drive.frames.shape == (4, 3, 66, 200) and drive.name == "hmb-center"
    assert np.allclose(drive.signals["speed"], [20, 21, 22, 23])


def test_generic_video_with_columns_and_units_from_the_command_line(tmp_path, capsys):
    from steer.cli import main

    folder = _video_log(tmp_path / "rec", frames_in_video=6, rows=6)
    (folder / "out-key.csv").rename(folder / "log.csv")
    text = (folder / "log.csv").read_text().replace("ts_micro,frame,wheel", "t_ms,n,angle_deg")
    (folder / "log.csv").write_text(text)
    main(["import", str(folder), "--out", str(tmp_path / "cache"), "--format", "generic", "--frames", "out-video.avi",
          "--frame", "n", "--frame-base", "1", "--time", "t_ms", "--time-unit", "ms",
          "--signals", "steering=angle_deg:deg", "--size", "24x32"])
    drive = FrameCache(tmp_path / "cache").drives[0]
    assert len(drive.frames) == 6 and np.allclose(np.diff(drive.timestamps_s), 0.05)
    assert drive.signals["steering"][0] == pytest.approx(np.radians(-0.5)) and drive.units["steering"] == "rad"


def test_generic_images_and_bad_specs(tmp_path):
    folder = tmp_path / "rec"
    for i in range(3):
        _jpeg(folder / "img" / f"f{i}.jpg", size=(40, 60))
    (folder / "log.csv").write_text("file,kmh,steer\nf0.jpg,36,0.1\nf1.jpg,72,0.2\nf2.jpg,x,0.3\n")
    with pytest.raises(ValueError, match="line 4: kmh is not a number"):
        generic.read(folder, signals="speed=kmh:km/h", frames="img", frame="file", fps=10)
    (folder / "log.csv").write_text("file,kmh,steer\nf0.jpg,36,0.1\nf1.jpg,72,0.2\nf2.jpg,0,0.3\n")
    table = generic.read(folder, signals="speed=kmh:km/h,steering=steer:rad", frames="img", frame="file", fps=10)
    assert np.allclose(table.signals["speed"].values, [10, 20, 0]) and len(table.images) == 3
    with pytest.raises(ValueError, match="unknown unit 'furlong'"):
        generic.read(folder, signals="speed=kmh:furlong", fps=10, signals_only=True)
    with pytest.raises(ValueError, match="no column \\['wheel'\\]"):
        generic.read(folder, signals="steering=wheel:deg", fps=10, signals_only=True)
    with pytest.raises(ValueError, match="time column or the frame rate"):
        generic.read(folder, signals="steering=steer:rad", signals_only=True)


def test_an_interrupted_import_is_done_again(tmp_path, monkeypatch):
    from steer.data import cache as cache_module

    folder = _sim(tmp_path / "sim", [_row(0), _row(100), _row(3000), _row(3100)])  # two drives (a gap)
    commit = cache_module._commit
    calls = []

    def crash_on_second(root, staged, entry):
        calls.append(entry["name"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return commit(root, staged, entry)

    monkeypatch.setattr(cache_module, "_commit", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        import_recording(folder, tmp_path / "cache", size=(33, 100), stretch=True)
    monkeypatch.setattr(cache_module, "_commit", commit)
    assert [d.name for d in FrameCache(tmp_path / "cache").drives] == ["sim-00"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".lock", "drives", "manifest.json"]
    assert sorted(p.name for p in (tmp_path / "cache" / "drives").iterdir()) == ["sim-00"]  # nothing staged left
    report = import_recording(folder, tmp_path / "cache", size=(33, 100), stretch=True)
    assert report["frames"] == 4 and len(FrameCache(tmp_path / "cache").drives) == 2
    assert "skipped" in import_recording(folder, tmp_path / "cache", size=(33, 100), stretch=True)


def test_udacity_raw_export_interpolates_steering_onto_frame_times(tmp_path):
    folder = tmp_path / "raw"
    start = 1_479_424_215_000_000_000
    camera = ["timestamp,width,height,frame_id,filename"]
    for i in range(5):  # 20 Hz frames, the first before the steering log starts
        stamp = start - 10_000_000 + i * 50_000_000
        camera.append(f"{stamp},64,48,center_camera,center/{stamp}.jpg")
        _jpeg(folder / "center" / f"{stamp}.jpg", size=(48, 64))
    (folder / "camera.csv").write_text("\n".join(camera) + "\n")
    steering = ["timestamp,angle,torque,speed"] + [
        f"{start + i * 20_000_000},{0.001 * i},0.1,{20 + 0.01 * i}" for i in range(12)]  # 50 Hz
    (folder / "steering.csv").write_text("\n".join(steering) + "\n")
    table = udacity.read(folder)
    assert len(table.images) == 4 and table.dropped == {"frames outside the steering log's time span": 1}
    # the frame 40 ms after the log starts sits between the rows at 40 and 60 ms: angle 0.002
    assert table.signals["steering"].values[0] == pytest.approx(0.002)
    (folder / "steering.csv").write_text("\n".join(steering[:3] + steering[2:3] + steering[3:]) + "\n")
    with pytest.raises(ValueError, match="steering.csv line 4: time does not increase"):
        udacity.read(folder)


def _episodes(folder: Path, count: int) -> list[Path]:
    """`count` episode folders of 3 PNG frames (96x96) and a CSV each, as a user saves an env's episodes."""
    found = []
    for k in range(count):
        episode = folder / f"ep{k}"
        for i in range(3):
            _jpeg(episode / "img" / f"{i}.png", value=40 * i, size=(96, 96))
        (episode / "log.csv").write_text("file,t,steer\n0.png,0,0.1\n1.png,0.02,0.2\n2.png,0.04,0.3\n")
        found.append(episode)
    return found


GENERIC_EPISODE = ["--format", "generic", "--frames", "img", "--frame", "file", "--time", "t",
                   "--signals", "steering=steer:rad", "--processes", "1"]


def test_import_keeps_the_aspect_refuses_a_stretch_unless_asked_and_sums_up_several_sources(tmp_path, refuse,
                                                                                            capfd):
    from steer.cli import main

    episodes = _episodes(tmp_path / "rec", 2)
    refuse(["import", episodes[0], "--out", tmp_path / "c", "--size", "66x200", "--crop", "0,0.125", *GENERIC_EPISODE],
           tmp_path, "--size 66x200", "96x96", "--size 66x75", "--stretch")
    main(["import", *map(str, episodes), "--out", str(tmp_path / "c"), "--crop", "0,0.125", *GENERIC_EPISODE])
    out = capfd.readouterr().out
    assert out.strip().splitlines()[-1] == (f"2 sources into {tmp_path / 'c'}: 2 drives, 6 rows, 6 frames, 0 rows "
                                            "left out on purpose, 0 sources already in the cache")
    cache = FrameCache(tmp_path / "c")
    assert {d.frames.shape[1:] for d in cache.drives} == {(3, 66, 75)}  # 96x84 after the crop, its aspect kept
    assert all(e["meta"]["source_shape"] == [96, 96] for e in cache.manifest["drives"])
    main(["import", str(episodes[0]), "--out", str(tmp_path / "s"), "--size", "66x200", "--stretch",
          *GENERIC_EPISODE])
    assert FrameCache(tmp_path / "s").drives[0].frames.shape[1:] == (3, 66, 200)


def test_generic_without_frames_is_refused_unless_signals_only_and_then_the_manifest_says_so(tmp_path, refuse):
    from steer.cli import main

    episode, = _episodes(tmp_path / "rec", 1)
    signals = ["--format", "generic", "--time", "t", "--signals", "steering=steer:rad"]
    refuse(["import", episode, "--out", tmp_path / "c", *signals], tmp_path, "--frames", "--signals-only")
    main(["import", str(episode), "--out", str(tmp_path / "c"), *signals, "--signals-only"])
    entry, = FrameCache(tmp_path / "c").manifest["drives"]
    assert entry["meta"]["signals_only"] is True and entry["frames"] == 3
    refuse(["import", tmp_path / "rec", "--out", tmp_path / "d", *signals, "--signals-only"], tmp_path,
           "no CSV file, but folders holding one", "give each folder as its own source")
    (episode / "other.csv").write_text("t\n0\n")
    refuse(["import", episode, "--out", tmp_path / "d", *signals, "--signals-only"], tmp_path, "--csv-file")
