"""A memory task: the answer lies in the far past. Each frame is a uniform grey whose level shows the
car's speed; the speed holds for a few frames, then may change. After a stretch of visible frames the
camera may lose a run of 1 to `max_gap` frames while the car keeps the speed it had: to tell it, a
model must remember the last frame it saw, `k` frames back.

A lost frame is either black (`lost="black"`, glitch code DROPPED) or snow (`lost="snow"`, code NOISE):
pixel noise over a brightness that flickers from frame to frame, as an analog FPV link shows when it
drops out. Black frames are all alike, so a plain RNN can hold a value through them by sitting still;
snow changes every frame, so a core must also shut its input out while it holds, which an LSTM's or a
GRU's gates can and a plain RNN's single tanh cannot. Tiny frames and a few thousand of them: the study
(examples/memory_study.py) trains in minutes on a CPU.
"""
from __future__ import annotations

import numpy as np

from steer.data.drive import SIGNAL_UNITS, Drive, Signal
from steer.world.glitches import CLEAN, DROPPED, NOISE

SPEED_MPS = (5.0, 30.0)
GREY = (40, 240)  # levels for the slowest and fastest speed: never black, which is a dropped frame
LOST = {"black": DROPPED, "snow": NOISE}
SNOW_STD = 60.0  # pixel noise of a snow frame, about the world's noise bursts (glitches.py)


def memory_drive(seed: int, frames: int = 400, max_gap: int = 20, size: tuple[int, int] = (64, 64),
                 hold: tuple[int, int] = (3, 8), drop_chance: float = 0.6, fps: float = 20.0,
                 name: str | None = None, lost: str = "black", min_gap: int = 1) -> Drive:
    """One drive of the task; the same arguments always give the same drive."""
    if lost not in LOST:
        raise ValueError(f"lost frames are one of {', '.join(LOST)}, not {lost!r}")
    if not 1 <= min_gap <= max_gap:
        raise ValueError(f"lost runs of {min_gap} to {max_gap} frames: give 1 <= min_gap <= max_gap")
    rng = np.random.default_rng(seed)
    speed, glitch = np.empty(frames), np.full(frames, CLEAN)
    i = 0
    while i < frames:
        seen = rng.integers(hold[0], hold[1] + 1)
        speed[i:i + seen] = rng.uniform(*SPEED_MPS)
        i += seen
        if i < frames and rng.random() < drop_chance:
            gap = rng.integers(min_gap, max_gap + 1)
            speed[i:i + gap], glitch[i:i + gap] = speed[i - 1], LOST[lost]
            i += gap
    fraction = (speed - SPEED_MPS[0]) / (SPEED_MPS[1] - SPEED_MPS[0])
    level = np.round(GREY[0] + fraction * (GREY[1] - GREY[0]))
    images = np.broadcast_to(level[:, None, None, None], (frames, *size, 3)).astype(np.float32)
    gone = glitch != CLEAN
    if lost == "snow":
        flicker = rng.uniform(0, 255, (gone.sum(), 1, 1, 1))
        images[gone] = flicker + rng.normal(0, SNOW_STD, (gone.sum(), *size, 3))
    else:
        images[gone] = 0
    signals = {"speed": Signal(speed, SIGNAL_UNITS["speed"]),
               "glitch": Signal(glitch.astype(np.float64), SIGNAL_UNITS["glitch"])}
    return Drive(name or f"memory-{seed}", np.clip(images, 0, 255).astype(np.uint8), np.arange(frames) / fps,
                 signals, meta={"source": "world.memory", "seed": seed, "max_gap": max_gap, "lost": lost})


def frames_unseen(glitch: np.ndarray) -> np.ndarray:
    """Per frame, how many frames back the last visible one is: 0 on a visible frame, k on the k-th
    frame of a lost run (a run at the start of a drive counts from before it)."""
    since, count = np.zeros(len(glitch), np.int64), 0
    for i, code in enumerate(glitch):
        count = count + 1 if code != CLEAN else 0
        since[i] = count
    return since
