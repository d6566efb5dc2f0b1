"""CARLA's imitation-learning HDF5 files, written here with h5py in the data set's layout."""
import h5py
import numpy as np
import pytest

from steer.cli import main
from steer.data.cache import FrameCache
from steer.sources import carla


def _h5(path, rows, first_ms=1_000, images="rgb", rng=None):
    """`rows` frames whose grey level counts them; targets with steer, gas, brake, speed and game time at
    CARLA's documented indices, random elsewhere."""
    rng = rng or np.random.default_rng(0)
    targets = rng.normal(size=(rows, 28)).astype(np.float32)
    targets[:, 0] = np.linspace(-0.5, 0.5, rows)  # steer, positive = right
    targets[:, 1], targets[:, 2] = 0.7, 0.1  # gas, brake
    targets[:, 10] = 36.0  # km/h
    targets[:, 20] = first_ms + 100 * np.arange(rows)  # game time, ms
    targets[:, 24] = 3  # command: left
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        if images:
            f[images] = np.stack([np.full((88, 200, 3), 10 * i, np.uint8) for i in range(rows)])
        f["targets"] = targets
    return path


def test_files_in_name_order_with_units_and_sign(tmp_path):
    _h5(tmp_path / "il" / "data_00001.h5", 5, first_ms=1_500)
    _h5(tmp_path / "il" / "data_00000.h5", 5, images="images_center")
    table = carla.read(tmp_path / "il")
    assert np.allclose(table.timestamps_s, 1 + 0.1 * np.arange(10))
    assert table.signals["steering"].values[0] == pytest.approx(0.5) and table.signals["steering"].unit == "1"
    assert np.allclose(table.signals["speed"].values, 10) and table.signals["speed"].unit == "m/s"
    assert np.allclose(table.signals["throttle"].values, 0.7) and np.all(table.signals["command"].values == 3)
    assert str(table.rows[5]) == f"{tmp_path / 'il' / 'data_00001.h5'} row 0"
    some = table.decode(table.video_frames[[1, 6, 7]], (22, 50), (0, 0), 1)  # the rows a check left, say
    assert np.array_equal(some[:, 0, 0, 0], [10, 10, 20])
    main(["import", str(tmp_path / "il"), "--out", str(tmp_path / "cache"), "--size", "22x50", "--stretch"])
    drive, = FrameCache(tmp_path / "cache").drives
    assert np.array_equal(drive.frames[:, 0, 0, 0], 10 * np.tile(np.arange(5), 2))


def test_bad_files_are_refused_naming_the_file(tmp_path, refuse):
    bare = _h5(tmp_path / "a" / "data_00000.h5", 3, images=None)
    refuse(["import", bare.parent, "--out", tmp_path / "cache"], tmp_path, bare, "no data set rgb or images_center")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "data_00000.h5").write_bytes(b"not hdf5")
    refuse(["import", tmp_path / "b", "--out", tmp_path / "cache"], tmp_path, tmp_path / "b" / "data_00000.h5",
           "not an HDF5 file")
