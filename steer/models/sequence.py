"""Running a model over a whole drive, chunk by chunk, with its state carried between chunks."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from steer.data.cache import CachedDrive
from steer.models.base import State, SteerModel, reset_state


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


@torch.no_grad()
def predict_drives(model: SteerModel, drives: list[CachedDrive], device: str = "cpu", precision: str = "fp32",
                   rows: int = 16, chunk: int = 4) -> list[np.ndarray]:
    """Predictions (N, K) for each drive, as `predict_drive` gives them, with up to `rows` drives at once
    as the rows of a batch, `chunk` frames at a time: each row carries its own drive's state (after its
    lead-in) and takes the next drive, from a fresh state, at the chunk after its drive ended; the
    frames that pad a row out are dropped. A model that cannot stream sees each whole drive alone.
    About 64 frames a forward: on a CPU, 256 (8 x 32) ran pilotnet and cnn-lstm at half the speed, their
    activations no longer in the caches (bench/README.md)."""
    if not model.streamable:
        return [predict_drive(model, d, device, precision) for d in drives]
    model.eval()
    waiting = sorted((_Lane.of(model, d, i) for i, d in enumerate(drives)), key=lambda lane: -lane.left)
    lanes, waiting, state = waiting[:rows], waiting[rows:], None  # longest first: the rows end near together
    out = [[] for _ in drives]
    while lanes:
        x = np.zeros((len(lanes), min(chunk, max(lane.left for lane in lanes)), *lanes[0].inputs.shape[1:]),
                     lanes[0].inputs.dtype)
        kept = [lane.fill(row) for lane, row in zip(lanes, x)]
        with autocast(precision, device):
            preds, state = model(torch.from_numpy(x).to(device), state)
        preds = model.to_units(preds.float()).cpu().numpy()
        for lane, row, keep in zip(lanes, preds, kept):
            out[lane.drive].append(row[keep])
        lanes, state = _next_lanes(lanes, waiting, state)
    return [np.concatenate(p) for p in out]


@dataclass
class _Lane:
    """One drive in a row of predict_drives' batch: its lead-in's inputs (maybe none), then its own."""
    drive: int
    lead_in: np.ndarray
    inputs: np.ndarray
    at: int = 0  # frames run through, lead-in first

    @staticmethod
    def of(model: SteerModel, drive: CachedDrive, index: int) -> "_Lane":
        inputs = model.inputs_of(drive)
        lead_in = model.inputs_of(drive.lead_in) if drive.lead_in is not None else inputs[:0]
        return _Lane(index, lead_in, inputs)

    @property
    def left(self) -> int:
        return len(self.lead_in) + len(self.inputs) - self.at

    def fill(self, row: np.ndarray) -> slice:
        """Copy the next frames into `row` (out of the memmap), as many as fit; returns the slice of the
        row whose predictions are the drive's own (not its lead-in's, nor padding)."""
        lead, start = len(self.lead_in), self.at
        n = min(len(row), self.left)
        for part, offset in ((self.lead_in, 0), (self.inputs, lead)):
            lo, hi = max(start, offset), min(start + n, offset + len(part))
            if lo < hi:
                row[lo - start:hi - start] = part[lo - offset:hi - offset]
        self.at += n
        return slice(max(lead - start, 0), n)


def _next_lanes(lanes: list[_Lane], waiting: list[_Lane], state: State) -> tuple[list[_Lane], State]:
    """Each finished lane's row takes the next waiting drive, its state reset, or leaves the batch."""
    rows, keep, going = [], [], []
    for row, lane in enumerate(lanes):
        if lane.left == 0 and not waiting:
            continue
        fresh = lane.left == 0
        rows.append(row)
        keep.append(not fresh)
        going.append(waiting.pop(0) if fresh else lane)
    if state is not None and going:
        index = torch.tensor(rows, device=state[0].device)
        state = reset_state(tuple(s.index_select(1, index) for s in state), torch.tensor(keep, device=index.device))
    return going, state
