"""AirSim's airsim_rec.txt beside images/, written here as AirSim writes it."""
import cv2
import numpy as np
import pytest

from steer.sources import airsim

HEADER = "\t".join(["VehicleName", "TimeStamp", "POS_X", "POS_Y", "POS_Z", "Q_W", "Q_X", "Q_Y", "Q_Z", "Throttle",
                    "Steering", "Brake", "Gear", "Handbrake", "RPM", "Speed", "ImageFile"])


def _recording(folder, rows=3):
    (folder / "images").mkdir(parents=True)
    lines = [HEADER]
    for i in range(rows):
        stamp = 1_565_000_000_000 + 50 * i
        names = [f"img_PhysXCar_0_0_{stamp}.png", f"img_PhysXCar_1_0_{stamp}.png"]
        for k, name in enumerate(names):
            cv2.imwrite(str(folder / "images" / name), np.full((36, 64, 3), 40 * k + i, np.uint8))
        fields = ["PhysXCar", stamp, 0, 0, 0, 1, 0, 0, 0, 0.5, 0.1 * i, 0, 1, 0, 1000, 5 + i, ";".join(names)]
        lines.append("\t".join(map(str, fields)))
    (folder / "airsim_rec.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_units_sign_and_which_image(tmp_path):
    table = airsim.read(_recording(tmp_path / "rec"))
    assert np.allclose(np.diff(table.timestamps_s), 0.05)  # Unix ms
    assert table.signals["steering"].values[2] == pytest.approx(-0.2)  # positive = left in steer
    assert np.allclose(table.signals["speed"].values, [5, 6, 7]) and table.images[0].name.startswith("img_PhysXCar_0")
    assert airsim.read(tmp_path / "rec", image=1).images[0].name.startswith("img_PhysXCar_1")


def test_bad_rows_are_refused_naming_the_line(tmp_path, refuse):
    folder = _recording(tmp_path / "rec")
    next((folder / "images").glob("img_PhysXCar_0_0_1565000000050.png")).unlink()
    refuse(["import", folder, "--out", tmp_path / "cache"], tmp_path, "airsim_rec.txt line 3",
           "img_PhysXCar_0_0_1565000000050.png")
    refuse(["import", folder, "--out", tmp_path / "cache", "--image", "2"], tmp_path, "airsim_rec.txt line 2",
           "no image 2")
