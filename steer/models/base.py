"""The contract every steer model follows.

    forward(frames, state) -> (preds, state)

- frames: (B, T, C, H, W) uint8 RGB, exactly as stored in the frame cache; each model normalises its
  own input, so training, evaluation and streaming share one preprocessing path;
- state: None to start from zero, else what the previous call returned; a tuple of tensors, each
  (layers, B, hidden) with the batch in dimension 1, or None for a model without memory;
- preds: (B, T, K), the targets in normalised units (z-scores); `to_units` turns them into the
  targets' own units with the statistics the model keeps as buffers (saved with its weights).
"""
from __future__ import annotations

import torch
from torch import nn

State = tuple[torch.Tensor, ...] | None


class SteerModel(nn.Module):
    registry_name = ""

    def __init__(self, targets: list[str], frame_shape: tuple[int, int, int]):
        super().__init__()
        self.targets = list(targets)
        self.frame_shape = tuple(frame_shape)
        self.register_buffer("target_mean", torch.zeros(len(targets)))
        self.register_buffer("target_std", torch.ones(len(targets)))

    def config(self) -> dict:
        """The keyword arguments that rebuild this model with `create_model`."""
        raise NotImplementedError

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """The state a sequence starts from, as explicit tensors (what `None` stands for): for export."""
        return ()

    def set_target_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.target_mean.copy_(torch.as_tensor(mean))
        self.target_std.copy_(torch.as_tensor(std).clamp_min(1e-6))

    def normalise(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - self.target_mean) / self.target_std

    def to_units(self, preds: torch.Tensor) -> torch.Tensor:
        return preds * self.target_std + self.target_mean

    @staticmethod
    def scale_frames(frames: torch.Tensor) -> torch.Tensor:
        """uint8 0..255 to float -1..1, the normalisation inside every model."""
        return frames.float() / 127.5 - 1.0


def reset_state(state: State, keep: torch.Tensor) -> State:
    """Zero the state of the batch rows where `keep` (B,) is False."""
    if state is None:
        return None
    return tuple(s * keep.to(s.dtype).view(1, -1, *([1] * (s.dim() - 2))) for s in state)


def detach_state(state: State) -> State:
    return None if state is None else tuple(s.detach() for s in state)
