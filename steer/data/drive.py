"""A drive: camera frames, their timestamps and named signals with units.

Every source (the synthetic world, a recording importer) produces Drives, and everything downstream
(the frame cache, training, evaluation) consumes them, so this is the one place where the shape of
driving data is defined.
"""
from __future__ import annotations

import math
import re
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

# A signal `<name>_meant` is the command a driver meant where `<name>` is what was in force (the synthetic
# world's driver records both: see steer/world/driver.py); training takes it as the label by default.
MEANT = "_meant"

# The largest magnitude of a signal in a unit that a car can produce: beyond it the value is almost
# surely in another unit (degrees read as radians, km/h as m/s), so it is refused unless the user
# widens the range. A steering wheel locks within two turns each way; a normalised steering value
# lies in -1..1, plus a side camera's correction; throttle is -1..1 (negative: reverse, as donkeycar
# records it), brake 0..1.
LIMITS = {("steering", "rad"): 4 * np.pi, ("steering", "1"): 2.0, ("speed", "m/s"): 100.0,
          ("throttle", "1"): 1.0, ("brake", "1"): 1.0}
SHORT_FRAMES = 8  # the default training window: a drive with fewer frames gives no window to train on


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
            if bad := not_finite(signal.values):
                raise ValueError(f"drive {self.name!r}: signal {key!r} is {bad[1]} at frame {bad[0]}")

    def __len__(self) -> int:
        return len(self.timestamps_s)


# A number as a careful reader takes one from a text file: decimal, optionally signed, with an exponent;
# not Python's extras ("1_000", "infinity"), which no logger or spreadsheet writes for a value.
NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def finite_number(text: str) -> float | None:
    """The finite number `text` spells (see NUMBER), or None."""
    value = float(text) if NUMBER.fullmatch(text) else None
    return value if value is not None and math.isfinite(value) else None


def not_finite(values: np.ndarray) -> tuple[int, str] | None:
    """The first value that is not finite, as (row, "NaN", "inf" or "-inf"), or None."""
    bad = np.flatnonzero(~np.isfinite(values))
    if not len(bad):
        return None
    value = float(values[bad[0]])
    return int(bad[0]), "NaN" if np.isnan(value) else str(value)


def out_of_range(signals: dict[str, Signal], limits: dict[str, float] | None = None) -> tuple[str, int, float] | None:
    """The first signal value beyond its physical range (LIMITS, or `limits` by signal name, which
    widen or narrow it) as (signal, row, limit), or None."""
    for key, signal in signals.items():
        limit = (limits or {}).get(key, LIMITS.get((key.removesuffix(MEANT), signal.unit)))
        beyond = np.flatnonzero(np.abs(signal.values) > limit) if limit is not None else []
        if len(beyond):
            return key, int(beyond[0]), limit
    return None


def range_message(key: str, signal: Signal, row: int, limit: float, hint: str | None) -> str:
    """Why a value beyond its range is refused and the two ways on: the unit flag, or a wider range."""
    value, unit = signal.values[row], "" if signal.unit == "1" else f" {signal.unit}"  # "1": a plain number
    what = (f"a steering wheel's lock (±{limit:.4g} rad, ±{np.degrees(limit):.0f}°)"
            if (key, signal.unit) == ("steering", "rad") else f"its range (±{limit:g}{unit})")
    fix = f"say so ({hint})" if hint else "convert it"
    return (f"{key} is {value:g}{unit}, beyond {what}: if the log is in another unit, {fix}; "
            f"if the value is real, widen the range with --limits {key}={np.ceil(abs(value)):g}")
