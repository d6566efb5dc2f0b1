"""comma2k19 segments: an HEVC video written here with PyAV beside numpy logs in comma2k19's layout."""
import av
import numpy as np
import pytest
from conftest import SHARED

from steer.cli import main
from steer.data.cache import FrameCache
from steer.sources import comma2k19

BOOT = 46_408.5  # s since the device booted, as comma2k19's clocks count


def _npy(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:  # no .npy suffix, as in the data set
        np.save(f, array)


def _video(path, values, size=(48, 64)):
    with av.open(str(path), "w", format="hevc") as container:
        stream = container.add_stream("libx265", rate=20)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        stream.options = {"x265-params": "log-level=none"}
        for value in values:
            frame = av.VideoFrame.from_ndarray(np.full((*size, 3), value, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _segment(folder, first_frame, frames, rng, video_frames=None):
    """`frames` frame times at 20 Hz from frame number `first_frame` on, CAN at ~89 Hz a little beyond them."""
    times = BOOT + (first_frame + np.arange(frames)) * 0.05 + rng.uniform(0, 1e-3, frames)
    can_t = np.sort(rng.uniform(times[0] - 0.03, times[-1] + 0.06, int(frames * 4.5)))
    _npy(folder / "global_pose" / "frame_times", times)
    _npy(folder / "processed_log" / "CAN" / "steering_angle" / "t", can_t)
    _npy(folder / "processed_log" / "CAN" / "steering_angle" / "value", np.round(rng.normal(0, 3, len(can_t)), 1))
    _npy(folder / "processed_log" / "CAN" / "speed" / "t", can_t)
    _npy(folder / "processed_log" / "CAN" / "speed" / "value", rng.uniform(8, 20, (len(can_t), 1)))  # a column
    if video_frames != 0:
        _video(folder / "video.hevc", [(20 * (first_frame + i)) % 250 for i in range(video_frames or frames)])
    return folder


def _can(route, name):
    load = [(np.load(s / "processed_log" / "CAN" / name / "t"), np.load(s / "processed_log" / "CAN" / name / "value"))
            for s in sorted(route.iterdir(), key=lambda p: int(p.name))]
    t, v = np.concatenate([t for t, _ in load]), np.concatenate([v.ravel() for _, v in load])
    return t[np.argsort(t)], v[np.argsort(t)]  # the segments' logs overlap here


def test_a_route_of_two_segments_is_one_drive_with_frames_in_order(tmp_path, rng):
    route = tmp_path / "dongle|2018-08-02--08-34-47"
    _segment(route / "7", 0, 6, rng)
    _segment(route / "8", 6, 5, rng)
    table, = comma2k19.read(route)
    frame_t = np.concatenate([np.load(route / s / "global_pose" / "frame_times") for s in ("7", "8")])
    assert np.array_equal(table.timestamps_s, frame_t) and table.name == "dongle_2018-08-02--08-34-47"
    t, degrees = _can(route, "steering_angle")
    assert np.abs(table.signals["steering"].values - np.radians(np.interp(frame_t, t, degrees))).max() < 1e-12
    t, speed = _can(route, "speed")
    assert np.abs(table.signals["speed"].values - np.interp(frame_t, t, speed)).max() < 1e-12
    assert (table.signals["steering"].unit, table.signals["speed"].unit) == ("rad", "m/s")
    assert str(table.rows[6]) == f"{route / '8' / 'global_pose' / 'frame_times'} frame 0"
    main(["import", str(route), "--out", str(tmp_path / "cache"), "--size", "12x16", "--stretch"])
    drive, = FrameCache(tmp_path / "cache").drives
    grey = drive.frames.astype(float).mean(axis=(1, 2, 3))
    assert np.abs(grey - 20 * np.arange(11) % 250).max() < 4  # every frame of both videos, in order


def test_frames_beyond_the_can_log_are_left_out_and_counted(tmp_path, rng):
    segment = _segment(tmp_path / "route" / "0", 0, 8, rng, video_frames=0)
    t = np.load(segment / "global_pose" / "frame_times")
    _npy(segment / "global_pose" / "frame_times", np.append(t, t[-1] + 1.0))  # a frame 1 s after the CAN log ends
    table, = comma2k19.read(segment, signals_only=True)
    assert len(table.timestamps_s) == 8 and table.dropped == {"frames more than 0.1 s outside the CAN log": 1}


def test_bad_segments_are_refused_naming_the_file_and_frame(tmp_path, rng, refuse):
    short = _segment(tmp_path / "short" / "0", 0, 8, rng, video_frames=5)
    refuse(["import", short, "--out", tmp_path / "cache"], tmp_path, short / "video.hevc", "breaks off at frame 5")
    missing = _segment(tmp_path / "missing" / "0", 0, 4, rng, video_frames=0)
    refuse(["import", missing, "--out", tmp_path / "cache"], tmp_path, missing / "video.hevc", "--signals-only")
    (missing / "processed_log" / "CAN" / "speed" / "value").unlink()
    refuse(["import", missing, "--out", tmp_path / "cache", "--signals-only"], tmp_path,
           missing / "processed_log" / "CAN" / "speed" / "value", "missing")


@pytest.mark.skipif(not (SHARED / "signals-only" / "comma2k19").is_dir(), reason=f"no comma2k19 segment in {SHARED}")
def test_the_real_segment_imports_signals_only_and_the_world_drives_it(tmp_path):
    report = main(["import", str(SHARED / "signals-only" / "comma2k19"), "--signals-only", "--out",
                   str(tmp_path / "signals")])
    drive, = FrameCache(tmp_path / "signals").drives
    assert report is None and len(drive) == 1200 and drive.units == {"steering": "rad", "speed": "m/s"}
    assert np.degrees(drive.signals["steering"]).min() == pytest.approx(-4.6)  # the log's degrees, as radians
    assert 7.97 <= drive.signals["speed"].min() and drive.signals["speed"].max() <= 19.84  # m/s, as logged
    main(["world", "--replay", str(tmp_path / "signals"), "--out", str(tmp_path / "rendered"), "--size", "12x32"])
    rendered, = FrameCache(tmp_path / "rendered").drives
    assert rendered.frames.shape == (1200, 3, 12, 32) and np.allclose(rendered.signals["speed"], drive.signals["speed"])
