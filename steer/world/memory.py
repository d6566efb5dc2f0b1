"""A memory task: the answer lies in the far past. Each frame is a uniform grey whose level shows the
car's speed; the speed holds for a few frames, then may change. After a stretch of visible frames the
camera may drop a run of 1 to `max_gap` frames (black, glitch code 1) while the car keeps the speed it
had: to tell it, a model must remember the last frame it saw, `k` frames back. A plain RNN's gradient
through time fades within a few steps, so it cannot learn to hold a value far; LSTM and GRU gates can.
Tiny frames and a few thousand of them: the study (examples/memory_study.py) trains in minutes on a CPU.
"""
from __future__ import annotations

import numpy as np

from steer.data.drive import SIGNAL_UNITS, Drive, Signal
from steer.world.glitches import CLEAN, DROPPED

SPEED_MPS = (5.0, 30.0)
GREY = (40, 240)  # levels for the slowest and fastest speed: never black, which is a dropped frame


def memory_drive(seed: int, frames: int = 400, max_gap: int = 20, size: tuple[int, int] = (64, 64),
                 hold: tuple[int, int] = (3, 8), drop_chance: float = 0.6, fps: float = 20.0,
                 name: str | None = None) -> Drive:
    """One drive of the task; the same arguments always give the same drive."""
    rng = np.random.default_rng(seed)
    speed, glitch = np.empty(frames), np.full(frames, CLEAN)
    i = 0
    while i < frames:
        seen = rng.integers(hold[0], hold[1] + 1)
        speed[i:i + seen] = rng.uniform(*SPEED_MPS)
        i += seen
        if i < frames and rng.random() < drop_chance:
            gap = rng.integers(1, max_gap + 1)
            speed[i:i + gap], glitch[i:i + gap] = speed[i - 1], DROPPED
            i += gap
    fraction = (speed - SPEED_MPS[0]) / (SPEED_MPS[1] - SPEED_MPS[0])
    level = np.where(glitch == DROPPED, 0, np.round(GREY[0] + fraction * (GREY[1] - GREY[0]))).astype(np.uint8)
    images = np.broadcast_to(level[:, None, None, None], (frames, *size, 3)).copy()
    signals = {"speed": Signal(speed, SIGNAL_UNITS["speed"]),
               "glitch": Signal(glitch.astype(np.float64), SIGNAL_UNITS["glitch"])}
    return Drive(name or f"memory-{seed}", images, np.arange(frames) / fps, signals,
                 meta={"source": "world.memory", "seed": seed, "max_gap": max_gap})


def frames_unseen(glitch: np.ndarray) -> np.ndarray:
    """Per frame, how many frames back the last visible one is: 0 on a visible frame, k on the k-th
    frame of a dropped run (a run at the start of a drive counts from before it)."""
    since, count = np.zeros(len(glitch), np.int64), 0
    for i, code in enumerate(glitch):
        count = count + 1 if code == DROPPED else 0
        since[i] = count
    return since
