"""A video of an episode in an environment: each frame as the env rendered it, enlarged, with the
steering the driver asked for (red, inner wheel) and the expert's at the same state (green, outer),
the return and lane departures so far."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from steer.envs.loop import Episode, departures
from steer.evaluate.video import PRED, TEXT, TRUE, _wheel, write_drawn


def episode_frame(episode: Episode, i: int, scale: int = 4) -> np.ndarray:
    image = cv2.resize(cv2.cvtColor(episode.frames[i], cv2.COLOR_RGB2BGR), None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_NEAREST)
    h = image.shape[0]
    radius = max(h // 8, 12)
    centre = (radius + 20, h - radius - 14)
    if np.isfinite(episode.expert_rad[i]):
        _wheel(image, centre, radius + 5, float(episode.expert_rad[i]), TRUE)
    _wheel(image, centre, radius, float(episode.asked_rad[i]), PRED)
    text = f"step {i}  return {episode.rewards[: i + 1].sum():7.1f}"
    if episode.departed is not None:
        text += f"  departures {departures(episode.departed[: i + 1])}"
    cv2.putText(image, text, (10, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT, 1, cv2.LINE_AA)
    return image


def write_episode(path: str | Path, episode: Episode, fps: float) -> None:
    """MP4 (or WebM, by the suffix) of an episode kept with its frames; a PNG still of its middle frame beside it."""
    write_drawn(path, len(episode.frames), lambda i: episode_frame(episode, i), fps, Path(path).with_suffix(".png"))
