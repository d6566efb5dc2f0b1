"""Running a model over a whole drive, chunk by chunk, with its state carried between chunks."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from steer.data.cache import CachedDrive
from steer.models.base import SteerModel


def autocast(precision: str, device: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for `bf16`, nothing for `fp32`: training and evaluation of a run share it."""
    return torch.autocast(torch.device(device).type, torch.bfloat16, enabled=precision == "bf16")


def predict_drive(model: SteerModel, drive: CachedDrive, device: str = "cpu", precision: str = "fp32") -> np.ndarray:
    """Predictions (N, K) for a cached drive. A part of a drive (a block of a split by time) is predicted
    after the frames before it have run through the model, as in a car that drove the whole drive: a
    temporal model starts the block warm. The lead-in's targets are never used."""
    lead_in = model.inputs_of(drive.lead_in) if drive.lead_in is not None and model.streamable else None
    return predict_sequence(model, model.inputs_of(drive), device=device, lead_in=lead_in, precision=precision)


@torch.no_grad()
def predict_sequence(model: SteerModel, frames: np.ndarray, chunk: int = 64, device: str = "cpu",
                     lead_in: np.ndarray | None = None, precision: str = "fp32") -> np.ndarray:
    """Predictions (N, K) in the targets' units for a drive's inputs in time order (frames (N, C, H, W)
    uint8, or what `model.inputs_of` gives), after `lead_in` (inputs before them, predictions unused)
    has set the state; a model that cannot stream (bidirectional) sees the whole drive at once.
    `precision` is `fp32` or `bf16` (autocast; the predictions come back in fp32)."""
    model.eval()
    chunk = chunk if model.streamable else max(len(frames), 1)

    def chunks(inputs: np.ndarray):
        for start in range(0, len(inputs), chunk):
            yield torch.from_numpy(np.array(inputs[start:start + chunk]))[None].to(device)  # out of the memmap

    def step(x: torch.Tensor, state):
        with autocast(precision, device):
            preds, state = model(x, state)
        return preds.float(), state

    state, out = None, []
    for x in chunks(lead_in if lead_in is not None else frames[:0]):
        _, state = step(x, state)
    for x in chunks(frames):
        preds, state = step(x, state)
        out.append(model.to_units(preds[0]).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.targets)), np.float32)
