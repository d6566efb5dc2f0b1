"""Sensor glitches: dropped (black) frames and bursts of noise, as real camera pipelines produce."""
from __future__ import annotations

import numpy as np

CLEAN, DROPPED, NOISE = 0, 1, 2


def apply_glitches(frames: np.ndarray, rng: np.random.Generator, drop_rate: float,
                   burst_rate: float, burst_frames: tuple[int, int] = (3, 8)) -> np.ndarray:
    """Corrupt `frames` in place; returns a glitch code per frame (CLEAN, DROPPED or NOISE).

    `drop_rate` is the chance that a frame is black, `burst_rate` the chance that a noise burst of
    `burst_frames` frames starts at a frame.
    """
    codes = np.full(len(frames), CLEAN, np.int64)
    for start in np.flatnonzero(rng.random(len(frames)) < burst_rate):
        stop = start + rng.integers(burst_frames[0], burst_frames[1] + 1)
        codes[start:stop] = NOISE
    codes[rng.random(len(frames)) < drop_rate] = DROPPED
    noisy = np.flatnonzero(codes == NOISE)
    if len(noisy):
        noise = rng.normal(0, 60, (len(noisy),) + frames.shape[1:])
        frames[noisy] = np.clip(frames[noisy] + noise, 0, 255).astype(np.uint8)
    frames[codes == DROPPED] = 0
    return codes
