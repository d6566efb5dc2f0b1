"""Roads as a curvature profile along arc length: straights, gentle and sharp bends, S-curves.

Curvature changes linearly over a transition (a clothoid, as real roads are built), so the heading and
the centreline are smooth. The centreline is sampled every `ds_m` metres.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DS_M = 0.25
TRANSITION_M = 25.0
SHARPEST_SPAN = 1024  # samples: the table of bends answers stretches under twice this in two lookups


@dataclass
class Road:
    s_m: np.ndarray  # arc length of each centreline sample
    x_m: np.ndarray
    y_m: np.ndarray
    heading_rad: np.ndarray
    curvature_1pm: np.ndarray  # 1/m, positive = turning left

    def __post_init__(self) -> None:
        # the largest |curvature| over 2**k samples from each sample, level k: a stretch in two lookups
        # (the driver looks up to 290 samples ahead; longer stretches are a pass over them)
        self._sharpest = [np.abs(self.curvature_1pm)]
        while 2 ** len(self._sharpest) <= min(len(self.s_m), SHARPEST_SPAN):
            last, half = self._sharpest[-1], 2 ** (len(self._sharpest) - 1)
            self._sharpest.append(np.maximum(last[:-half], last[half:]))

    def sharpest_1pm(self, first: int, stop: int) -> float:
        """The largest |curvature| of samples first .. stop - 1 (0 where there are none), as
        np.abs(curvature_1pm[first:stop]).max(initial=0) finds it, without a pass over the stretch."""
        stop = min(stop, len(self.s_m))
        if stop <= first:
            return 0.0
        k = (stop - first).bit_length() - 1
        if k >= len(self._sharpest):
            return self._sharpest[0][first:stop].max()
        level = self._sharpest[k]
        return max(level[first], level[stop - 2**k])

    @property
    def length_m(self) -> float:
        return float(self.s_m[-1])

    def index_at(self, s_m: float) -> int:
        return int(np.clip(round(s_m / DS_M), 0, len(self.s_m) - 1))

    def project(self, x: float, y: float, hint: int) -> tuple[int, float]:
        """Nearest centreline sample to (x, y), searched around `hint`; returns (index, offset_left_m)."""
        lo, hi = max(hint - 40, 0), min(hint + 200, len(self.s_m))
        d2 = (self.x_m[lo:hi] - x) ** 2 + (self.y_m[lo:hi] - y) ** 2
        i = lo + int(np.argmin(d2))
        h = self.heading_rad[i]
        offset = -(x - self.x_m[i]) * math.sin(h) + (y - self.y_m[i]) * math.cos(h)
        return i, float(offset)


def _segment_curvatures(rng: np.random.Generator) -> list[tuple[float, float]]:
    """One piece of road as (curvature, length) pairs: a straight, a bend, or an S-curve."""
    kind = rng.choice(["straight", "gentle", "sharp", "s-curve"], p=[0.3, 0.3, 0.2, 0.2])
    side = rng.choice([-1.0, 1.0])
    if kind == "straight":
        return [(0.0, rng.uniform(40, 150))]
    if kind == "gentle":
        return [(side / rng.uniform(150, 400), rng.uniform(50, 200))]
    if kind == "sharp":
        return [(side / rng.uniform(55, 90), rng.uniform(25, 70))]
    radius = rng.uniform(70, 160)
    length = rng.uniform(30, 80)
    return [(side / radius, length), (-side / radius, length)]


def generate_road(rng: np.random.Generator, length_m: float) -> Road:
    """A random road at least `length_m` long, starting at the origin heading east on a straight."""
    plan = [(0.0, 60.0)]
    while sum(length for _, length in plan) < length_m + 100:
        plan += _segment_curvatures(rng)
    s = np.arange(0.0, sum(length for _, length in plan), DS_M)
    ends = np.cumsum([length for _, length in plan])
    target = np.array([k for k, _ in plan])[np.searchsorted(ends, s, side="right").clip(max=len(plan) - 1)]
    # A moving average of the step profile turns each jump into a linear ramp: a clothoid transition.
    width = int(TRANSITION_M / DS_M)
    padded = np.pad(target, (width // 2, width - width // 2 - 1), mode="edge")
    curvature = np.convolve(padded, np.ones(width) / width, mode="valid")
    heading = np.concatenate([[0.0], np.cumsum(curvature[:-1] * DS_M)])
    x = np.concatenate([[0.0], np.cumsum(np.cos(heading[:-1]) * DS_M)])
    y = np.concatenate([[0.0], np.cumsum(np.sin(heading[:-1]) * DS_M)])
    return Road(s, x, y, heading, curvature)
