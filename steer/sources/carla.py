"""CARLA's imitation-learning data set (Codevilla et al., 2018): HDF5 files (`data_00000.h5`, ...) of
200 rows each, the camera in `rgb` (or `images_center`), (rows, 88, 200, 3) uint8, and the measurements
in `targets`, (rows, 28) float32, at the indices its README documents (below).

A source is one file or a folder of them, read as one table in name order; the episodes it holds start
where the game time goes back, which splits drives. Steering is CARLA's normalised value, positive =
right: steer stores the opposite sign (positive = left), unit `1`; gas and brake as recorded (0..1);
speed from km/h to m/s; the high-level command (2 follow lane, 3 left, 4 right, 5 straight) as a code.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from steer.data.drive import Signal
from steer.sources.images import fit
from steer.sources.registry import Reader, Where
from steer.sources.table import FrameTable

IMAGES = ("rgb", "images_center")
STEER, GAS, BRAKE, SPEED_KMH, GAME_TIME_MS, COMMAND = 0, 1, 2, 10, 20, 24  # columns of `targets`


def files(source: Path) -> list[Path]:
    found = [source] if source.is_file() else sorted(source.glob("*.h5")) + sorted(source.glob("*.hdf5"))
    if not found:
        raise FileNotFoundError(f"{source}: no .h5 files")
    return found


def _datasets(h5, path: Path) -> tuple[str, np.ndarray]:
    """The name of the file's image data set and its `targets`, checked."""
    name = next((n for n in IMAGES if n in h5), None)
    if name is None or "targets" not in h5:
        raise ValueError(f"{path}: no data set {'targets' if name else ' or '.join(IMAGES)}; it has {sorted(h5)}")
    targets = h5["targets"][()]
    if targets.ndim != 2 or targets.shape[1] <= COMMAND:
        raise ValueError(f"{path}: targets has shape {targets.shape}; CARLA's has {COMMAND + 1} columns or more")
    images = h5[name]
    if images.ndim != 4 or images.shape[0] != len(targets) or images.shape[3] != 3:
        raise ValueError(f"{path}: {name} has shape {images.shape}, not ({len(targets)}, height, width, 3)")
    return name, targets


def read(source: str | Path) -> FrameTable:
    import h5py

    paths = files(Path(source))
    targets, rows, names = [], [], []
    for path in paths:
        try:
            with h5py.File(path, "r") as h5:
                name, values = _datasets(h5, path)
        except OSError as error:
            raise OSError(f"{path}: not an HDF5 file that h5py can open ({error})") from None
        targets.append(values.astype(np.float64))
        rows += [Where(path, i, "row") for i in range(len(values))]
        names.append(name)
    t = np.concatenate(targets)
    signals = {"steering": Signal(-t[:, STEER], "1"), "throttle": Signal(t[:, GAS], "1"),
               "brake": Signal(t[:, BRAKE], "1"), "speed": Signal(t[:, SPEED_KMH] / 3.6, "m/s"),
               "command": Signal(t[:, COMMAND], "code")}
    name = Path(source).stem if Path(source).is_file() else Path(source).name
    return FrameTable(name, [], t[:, GAME_TIME_MS] / 1000, signals, rows, video_frames=np.arange(len(rows)),
                      decode=partial(decode, paths, names))


def decode(paths: list[Path], names: list[str], wanted: np.ndarray, size: tuple[int, int], crop: tuple[float, float],
           processes: int | None = None) -> np.ndarray:
    """Rows numbered `wanted` of the files' images (counting through the files), cropped and resized; in
    this process, since they need no decoding."""
    import h5py

    out, first, row = np.empty((len(wanted), *size, 3), np.uint8), 0, 0
    for path, name in zip(paths, names):
        with h5py.File(path, "r") as h5:
            images = h5[name][()]  # one file's 200 frames at 88x200: 10 MB
        for k in wanted[(wanted >= first) & (wanted < first + len(images))] - first:
            fit(images[k], size, crop, out[row])
            row += 1
        first += len(images)
    return out


READER = Reader("carla", "CARLA imitation learning: HDF5 files of rgb (or images_center) and targets",
                lambda path: path.suffix in (".h5", ".hdf5") or any(path.glob("*.h5")), read)
