"""Turning a list of windows into tensors, straight from the memory-mapped cache into a reused buffer."""
from __future__ import annotations

import numpy as np
import torch

from steer.data.windows import Window


def _marks(batch: list[Window]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's weight (0 for padding) and whether its state starts from zero."""
    return torch.tensor([w.weight for w in batch], dtype=torch.float32), torch.tensor([w.reset for w in batch])


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
        return torch.from_numpy(frames), torch.from_numpy(targets), *_marks(batch)


def fits_on_device(inputs: list[np.ndarray], device: str) -> bool:
    """Whether the inputs take under half the device's free memory (the rest is for the model)."""
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return sum(x.nbytes for x in inputs) < free / 2


class DeviceBatchLoader(BatchLoader):
    """The same batches, gathered from copies of the inputs held on the device: nothing crosses the
    bus during training, so loading cannot starve a GPU."""

    def __init__(self, inputs: list[np.ndarray], targets: list[np.ndarray], window: int, device: str):
        super().__init__([torch.from_numpy(np.array(x)).to(device) for x in inputs],  # read-only memmaps: copy
                         [torch.from_numpy(y).to(device) for y in targets], window)

    def load(self, batch: list[Window]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        t = self.window
        frames = torch.stack([self.frames[w.drive][w.start:w.start + t] for w in batch])
        targets = torch.stack([self.targets[w.drive][w.start:w.start + t] for w in batch])
        return frames, targets, *_marks(batch)
