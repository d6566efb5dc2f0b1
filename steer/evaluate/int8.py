"""What int8 quantisation costs in accuracy: the float and the int8 graph streamed over one drive."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from steer.data.cache import FrameCache
from steer.drive.pilot import Pilot


def int8_cost(checkpoint: str | Path, graph: str | Path, quantised: str | Path, cache: str | Path,
              drive_name: str) -> dict:
    """RMSE per target of the float and the int8 graph on one drive, streamed, and between the two."""
    drive, = FrameCache(cache).by_name([drive_name])
    runs = {}
    for label, path in (("float", graph), ("int8", quantised)):
        pilot = Pilot(checkpoint, onnx=path)
        runs[label] = np.array([list(pilot.step(np.asarray(f).transpose(1, 2, 0), t).values())
                                for f, t in zip(drive.frames, drive.timestamps_s)])
    truth = drive.targets(pilot.targets)
    rmse = lambda a, b: dict(zip(pilot.targets, np.sqrt(np.mean((a - b) ** 2, axis=0)).tolist()))  # noqa: E731
    return {"drive": drive_name, "frames": len(truth), "float_rmse": rmse(runs["float"], truth),
            "int8_rmse": rmse(runs["int8"], truth), "int8_vs_float_rmse": rmse(runs["int8"], runs["float"])}
