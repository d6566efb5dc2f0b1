"""Turning a list of windows into tensors, straight from the memory-mapped cache into a reused buffer."""
from __future__ import annotations

import numpy as np
import torch

from steer.data.windows import Window


class BatchLoader:
    def __init__(self, inputs: list[np.ndarray], targets: list[np.ndarray], window: int):
        """Per drive: the model's inputs (frames, or features) and targets (N, K), time first."""
        self.frames, self.targets, self.window = inputs, targets, window
        self.buffer: np.ndarray | None = None

    def load(self, batch: list[Window]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """inputs (B, T, ...) (frames: uint8 (B, T, C, H, W)), targets (B, T, K), weights (B,), reset (B,) bool."""
        t = self.window
        shape = (len(batch), t) + self.frames[0].shape[1:]
        if self.buffer is None or self.buffer.shape[0] < len(batch):
            self.buffer = np.empty(shape, self.frames[0].dtype)
        frames = self.buffer[:len(batch)]
        for i, w in enumerate(batch):
            frames[i] = self.frames[w.drive][w.start:w.start + t]
        targets = np.stack([self.targets[w.drive][w.start:w.start + t] for w in batch])
        weights = torch.tensor([w.weight for w in batch], dtype=torch.float32)
        reset = torch.tensor([w.reset for w in batch])
        return torch.from_numpy(frames), torch.from_numpy(targets), weights, reset
