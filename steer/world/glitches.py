"""Sensor glitches: dropped (black) frames and bursts of noise, as real camera pipelines produce."""
from __future__ import annotations

import numpy as np

CLEAN, DROPPED, NOISE = 0, 1, 2


def glitch_codes(count: int, rng: np.random.Generator, drop_rate: float, burst_rate: float,
                 burst_frames: tuple[int, int] = (3, 8)) -> np.ndarray:
    """A glitch code per frame (CLEAN, DROPPED or NOISE): `drop_rate` is the chance that a frame is black,
    `burst_rate` the chance that a noise burst of `burst_frames` frames starts at a frame."""
    codes = np.full(count, CLEAN, np.int64)
    for start in np.flatnonzero(rng.random(count) < burst_rate):
        stop = start + rng.integers(burst_frames[0], burst_frames[1] + 1)
        codes[start:stop] = NOISE
    codes[rng.random(count) < drop_rate] = DROPPED
    return codes


def glitch_frame(frame: np.ndarray, code: int, rng: np.random.Generator) -> np.ndarray:
    """One frame as the glitch `code` leaves it (a copy where it changes), for a camera in the loop."""
    if code == DROPPED:
        return np.zeros_like(frame)
    if code == NOISE:
        return noisy_frames(frame, rng.normal(0, 60, frame.shape))
    return frame


def noisy_frames(frames: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """uint8 `frames` plus float `noise`, clipped to 0..255 (in the noise's own memory: a clip into new
    arrays cost ten times as much)."""
    noise += frames
    return np.clip(noise, 0, 255, out=noise).astype(np.uint8)


def apply_glitches(frames: np.ndarray, rng: np.random.Generator, drop_rate: float,
                   burst_rate: float, burst_frames: tuple[int, int] = (3, 8)) -> np.ndarray:
    """Corrupt `frames` in place as `glitch_codes` draws; returns the codes."""
    codes = glitch_codes(len(frames), rng, drop_rate, burst_rate, burst_frames)
    noisy = np.flatnonzero(codes == NOISE)
    if len(noisy):
        frames[noisy] = noisy_frames(frames[noisy], rng.normal(0, 60, (len(noisy),) + frames.shape[1:]))
    frames[codes == DROPPED] = 0
    return codes
