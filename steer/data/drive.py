"""A drive: camera frames, their timestamps and named signals with units.

Every source (the synthetic world, a recording importer) produces Drives, and everything downstream
(the frame cache, training, evaluation) consumes them, so this is the one place where the shape of
driving data is defined.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Units of the signals steer knows by name; a source converts to these on the way in.
SIGNAL_UNITS = {
    "steering": "rad",  # steering-wheel angle, positive = left (counter-clockwise)
    "speed": "m/s",
    "throttle": "1",  # 0..1
    "brake": "1",  # 0..1
    "glitch": "code",  # 0 clean, 1 dropped (black) frame, 2 noise burst
}


@dataclass
class Signal:
    values: np.ndarray  # float64, one value per frame
    unit: str


@dataclass
class Drive:
    name: str
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB; (0, H, W, 3) for a signal-only drive
    timestamps_s: np.ndarray  # (N,) float64, strictly increasing
    signals: dict[str, Signal] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    # A .npy file holding exactly these frames, channels first (N, 3, H, W), that the frame cache moves
    # into place rather than writing the frames again (see steer.data.cache.stage_frames).
    frames_file: Path | None = None

    def __post_init__(self) -> None:
        self.timestamps_s = np.asarray(self.timestamps_s, dtype=np.float64)
        n = len(self.timestamps_s)
        if n == 0:
            raise ValueError(f"drive {self.name!r} is empty: it has no frames or rows")
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"drive {self.name!r}: frames must be uint8 (N, H, W, 3), got "
                             f"{self.frames.dtype} {self.frames.shape}")
        if len(self.frames) not in (0, n):
            raise ValueError(f"drive {self.name!r}: {len(self.frames)} frames but {n} timestamps")
        steps = np.diff(self.timestamps_s)
        if np.any(~np.isfinite(self.timestamps_s)) or np.any(steps <= 0):
            bad = int(np.argmax(~np.isfinite(self.timestamps_s[1:]) | (steps <= 0))) + 1
            raise ValueError(f"drive {self.name!r}: timestamps must increase, frame {bad} has "
                             f"{self.timestamps_s[bad]!r} after {self.timestamps_s[bad - 1]!r}")
        for key, signal in self.signals.items():
            signal.values = np.asarray(signal.values, dtype=np.float64)
            if signal.values.shape != (n,):
                raise ValueError(f"drive {self.name!r}: signal {key!r} has shape "
                                 f"{signal.values.shape}, expected ({n},)")
            if np.isnan(signal.values).any():
                row = int(np.argmax(np.isnan(signal.values)))
                raise ValueError(f"drive {self.name!r}: signal {key!r} is NaN at frame {row}")

    def __len__(self) -> int:
        return len(self.timestamps_s)
