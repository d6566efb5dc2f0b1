"""Running a model over a whole drive, chunk by chunk, with its state carried between chunks."""
from __future__ import annotations

import numpy as np
import torch

from steer.models.base import SteerModel


@torch.no_grad()
def predict_sequence(model: SteerModel, frames: np.ndarray, chunk: int = 64, device: str = "cpu") -> np.ndarray:
    """Predictions (N, K) in the targets' units for a drive's inputs in time order (frames (N, C, H, W)
    uint8, or what `model.inputs_of` gives); a model
    that cannot stream (bidirectional) sees the whole drive at once."""
    model.eval()
    chunk = chunk if model.streamable else max(len(frames), 1)
    state, out = None, []
    for start in range(0, len(frames), chunk):
        x = torch.from_numpy(np.array(frames[start:start + chunk]))[None].to(device)  # copy out of the memmap
        preds, state = model(x, state)
        out.append(model.to_units(preds[0]).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.targets)), np.float32)
