"""ROS bags in Udacity Challenge 2's layout, written here with rosbags, read back exactly."""
import numpy as np
import pytest
from bags import jpeg, write_bag

from steer.cli import main
from steer.data.cache import FrameCache
from steer.sources import rosbag

START = 1_479_424_215_000_000_000  # ns, November 2016
CAMERA = "/center_camera/image_color/compressed"


def _recording(rng, frames=40, start=START):
    """20 Hz frames whose grey level counts them; steering at irregular ~50 Hz, throttle and brake at ~30 Hz,
    the reports starting after the first frame (which is left out) and ending after the last."""
    frame_ns = start + np.arange(frames) * 50_000_000 + rng.integers(0, 2_000_000, frames)
    steer_ns = np.cumsum(rng.integers(15_000_000, 25_000_000, 3 * frames)) + start + 10_000_000
    pedal_ns = np.cumsum(rng.integers(25_000_000, 40_000_000, 2 * frames)) + start + 5_000_000
    steering = rng.normal(0, 0.3, len(steer_ns)).astype(np.float32)
    pedals = rng.uniform(0.15, 0.8, (2, len(pedal_ns))).astype(np.float32)
    reports = {
        "/vehicle/steering_report": [(int(t), {"steering_wheel_angle": s, "steering_wheel_torque": 0.5 + s,
                                               "speed": 20 + s}) for t, s in zip(steer_ns, steering)],
        "/vehicle/throttle_report": [(int(t), {"pedal_input": p}) for t, p in zip(pedal_ns, pedals[0])],
        "/vehicle/brake_report": [(int(t), {"pedal_input": p}) for t, p in zip(pedal_ns, pedals[1])]}
    images = [(int(t), jpeg(5 * i % 250)) for i, t in enumerate(frame_ns)]
    return frame_ns, (steer_ns, steering), (pedal_ns, pedals), images, reports


def _frames(table, size):
    """The table's frames as the import decodes them, in one process."""
    return table.decode(table.video_frames, size, (0, 0), 1)


def _expected(frame_ns, stamps, values):
    """numpy's interpolation of the written values, in ns from START: Unix ns as float64 are rounded to 256 ns,
    Unix s to 240 ns, and a wheel turning at 15 rad/s moves 4e-6 rad in that."""
    return np.interp(frame_ns - START, stamps - START, values.astype(np.float64))


def test_two_bags_of_one_drive_read_as_one_with_every_report_interpolated(tmp_path, rng):
    frame_ns, (steer_ns, steering), (pedal_ns, pedals), images, reports = _recording(rng, frames=140)
    half = len(images) // 2
    for part, keep in (("a", lambda t: t < frame_ns[half]), ("b", lambda t: t >= frame_ns[half])):
        write_bag(tmp_path / "drive" / f"2016-11-18-part-{part}.bag", {CAMERA: [m for m in images if keep(m[0])]},
                  {topic: [m for m in items if keep(m[0])] for topic, items in reports.items()})
    table = rosbag.read(tmp_path / "drive")
    inside = frame_ns >= max(steer_ns[0], pedal_ns[0])
    assert table.dropped == {"frames outside the time span of the reports": int((~inside).sum())} and not inside[0]
    assert np.array_equal(table.timestamps_s, frame_ns[inside] / 1e9)
    for name, stamps, values in [("steering", steer_ns, steering), ("speed", steer_ns, 20 + steering),
                                 ("torque", steer_ns, 0.5 + steering), ("throttle", pedal_ns, pedals[0]),
                                 ("brake", pedal_ns, pedals[1])]:
        want = _expected(frame_ns[inside], stamps, (20 + steering).astype(np.float32) if name == "speed" else
                         (0.5 + steering).astype(np.float32) if name == "torque" else values)
        assert np.abs(table.signals[name].values - want).max() < 1e-9, name
    assert {table.signals[k].unit for k in ("steering", "speed", "torque", "throttle")} == {"rad", "m/s", "N*m", "1"}
    assert [(w.file.name, w.number) for w in table.rows[half - 2:half]] == [("2016-11-18-part-a.bag", half - 1),
                                                                            ("2016-11-18-part-b.bag", 0)]
    main(["import", str(tmp_path / "drive"), "--out", str(tmp_path / "cache"), "--size", "12x16", "--stretch",
          "--processes", "2"])
    drive, = FrameCache(tmp_path / "cache").drives
    assert np.array_equal(drive.frames, _frames(table, (12, 16)).transpose(0, 3, 1, 2))  # 2 processes = 1
    assert drive.name == "drive-center"
    grey = drive.frames.astype(float).mean(axis=(1, 2, 3))
    assert np.abs(grey - 5 * np.flatnonzero(inside) % 250).max() <= 2  # every kept frame, in time order


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_ros2_bags(tmp_path, rng, storage):
    frame_ns, (steer_ns, steering), _, images, reports = _recording(rng, frames=12)
    write_bag(tmp_path / "ros2", {CAMERA: images}, {"/vehicle/steering_report": reports["/vehicle/steering_report"]},
              ros2=storage)
    table = rosbag.read(tmp_path / "ros2")
    inside = frame_ns >= steer_ns[0]
    assert np.abs(table.signals["steering"].values - _expected(frame_ns[inside], steer_ns, steering)).max() < 1e-9
    assert "throttle" not in table.signals  # the bag has no throttle report
    assert np.abs(_frames(table, (12, 16)).mean(axis=(1, 2, 3)) - 5 * np.flatnonzero(inside) % 250).max() <= 2
    if storage == "mcap":  # a bare MCAP file, without its metadata.yaml, reads the same
        bare = rosbag.read(tmp_path / "ros2" / "ros2.mcap")
        assert np.array_equal(bare.signals["steering"].values, table.signals["steering"].values)


def test_raw_images_and_the_left_center_swap(tmp_path, rng):
    _, _, _, _, reports = _recording(rng, frames=6)
    stamps = [START + 60_000_000 + 50_000_000 * i for i in range(3)]
    raw = [(t, np.full((6, 8, 3), (200, 100, 0), np.uint8)) for t in stamps]  # an rgb8 Image
    write_bag(tmp_path / "2016-10-25.bag", {"/left_camera/image_color": raw,
                                            "/center_camera/image_color/compressed": [(t, jpeg(30)) for t in stamps]},
              {"/vehicle/steering_report": reports["/vehicle/steering_report"]})
    center = rosbag.read(tmp_path / "2016-10-25.bag", swap_left_center=True)  # reads the left topic
    assert center.name == "2016-10-25-center" and center.rows[0].unit == "/left_camera/image_color message"
    assert np.array_equal(_frames(center, (6, 8))[0, 0, 0], [200, 100, 0])  # RGB kept as RGB
    left = rosbag.read(tmp_path / "2016-10-25.bag", camera="left", swap_left_center=True)
    assert abs(_frames(left, (6, 8)).mean() - 30) < 2


def test_bad_bags_are_refused_naming_the_bag_and_nothing_is_written(tmp_path, rng, refuse):
    _, _, _, images, reports = _recording(rng, frames=8)
    bag = write_bag(tmp_path / "drive.bag", {CAMERA: images}, {"/vehicle/throttle_report":
                                                                reports["/vehicle/throttle_report"]})
    refuse(["import", bag, "--out", tmp_path / "cache"], tmp_path, "drive.bag", "no topic /vehicle/steering_report")
    refuse(["import", bag, "--out", tmp_path / "cache", "--camera", "right"], tmp_path, "drive.bag",
           "no camera topic /right_camera/image_color/compressed")
    steering = reports["/vehicle/steering_report"]
    twice = write_bag(tmp_path / "twice.bag", {CAMERA: images},
                      {"/vehicle/steering_report": steering[:5] + steering[4:]})  # message 5 repeats 4's stamp
    refuse(["import", twice, "--out", tmp_path / "cache"], tmp_path, "twice.bag /vehicle/steering_report message 5",
           "does not come after")
    whole = write_bag(tmp_path / "whole.bag", {CAMERA: images}, reports)
    cut = tmp_path / "cut.bag"
    cut.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) * 2 // 3])
    refuse(["import", cut, "--out", tmp_path / "cache"], tmp_path, "cut.bag", "cannot read the bag")
