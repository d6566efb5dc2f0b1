"""The contract every steer model follows.

    forward(frames, state, teacher=None) -> (preds, state)

- frames: (B, T, C, H, W) uint8 RGB, exactly as stored in the frame cache; each model normalises its
  own input, so training, evaluation and streaming share one preprocessing path;
- state: None to start from zero, else what the previous call returned; a tuple of tensors, each
  (layers, B, hidden) with the batch in dimension 1, or None for a model without memory;
- teacher: in training, the true targets (B, T, K) normalised, for a model that feeds its own previous
  predictions back in and learns from a mix of those and the truth; other models ignore it;
- preds: (B, T, K), the targets in normalised units (z-scores); `to_units` turns them into the
  targets' own units with the statistics the model keeps as buffers (saved with its weights).

The input pipeline is shared too: `inputs` picks what the network sees, the frames, their difference
from the previous frame (Team Rambo's input in Udacity's challenge: what moved), or both stacked as
channels. A model that uses differences carries the previous frame at the end of its state, so a
window continues exactly where the last one ended; a first frame gets a zero difference. A subclass
implements `predict` (and `core_state` if it has memory of its own).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from steer.data.cache import CachedDrive

State = tuple[torch.Tensor, ...] | None
INPUTS = ("frames", "difference", "both")


class SteerModel(nn.Module):
    registry_name = ""
    # the CPU bf16 extensions (as torch's cpuinfo names them) with which bf16 autocast trains it faster than
    # fp32; `auto` reads it on a CPU
    cpu_bf16: tuple[str, ...] = ("amx_bf16", "avx512_bf16")

    def __init__(self, targets: list[str], frame_shape: tuple[int, int, int], inputs: str = "frames"):
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"unknown inputs {inputs!r}; choose from {', '.join(INPUTS)}")
        self.targets = list(targets)
        self.frame_shape = tuple(frame_shape)
        self.inputs = inputs
        # how the training cache made its frames from the camera's (steer.data.cache.frames_made), saved
        # beside the weights so that `Pilot` makes them the same way
        self.preprocess: dict | None = None
        self.register_buffer("target_mean", torch.zeros(len(targets)))
        self.register_buffer("target_std", torch.ones(len(targets)))

    def config(self) -> dict:
        """The keyword arguments that rebuild this model with `create_model`."""
        return {"targets": self.targets, "frame_shape": list(self.frame_shape), "inputs": self.inputs}

    @property
    def input_channels(self) -> int:
        return self.frame_shape[0] * (2 if self.inputs == "both" else 1)

    @property
    def carries_frame(self) -> bool:
        """Whether the previous frame travels at the end of the state."""
        return self.inputs != "frames"

    @property
    def streamable(self) -> bool:
        """Whether the model can run one frame at a time (a bidirectional core cannot: it needs the future)."""
        return True

    def inputs_of(self, drive: CachedDrive) -> np.ndarray:
        """What training and offline evaluation feed the model for a cached drive, time first: its frames;
        a model with a frozen encoder feeds its stored features instead."""
        return drive.frames

    def require_streamable(self, use: str) -> None:
        if not self.streamable:
            raise ValueError(f"{use}: this {self.registry_name} model is bidirectional, it needs the frames after "
                             "each one, so it cannot run frame by frame; evaluate it offline (steer evaluate)")

    def require_exportable(self) -> None:
        """Refuse, with the reason, where one streaming step cannot become an ONNX graph."""
        self.require_streamable("ONNX export of one step")

    def core_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """The model's own memory at the start of a sequence (what `None` stands for); none by default."""
        return ()

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """The whole state a sequence starts from, as explicit tensors: for export."""
        frame = (torch.zeros(1, batch_size, self.frame_shape[0] * self.frame_shape[1] * self.frame_shape[2]),
                 torch.zeros(1, batch_size, 1))
        return self.core_state(batch_size) + (frame if self.carries_frame else ())

    def predict(self, x: torch.Tensor, diffs: torch.Tensor | None, state: State,
                teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """preds (B, T, K) and the core state from x (B, T, input_channels, H, W) scaled to -1..1, the
        frame differences (B, T, C, H, W) when the model carries frames, the core state and the teacher."""
        raise NotImplementedError

    def prepare(self, frames: torch.Tensor, carried: State) -> tuple[torch.Tensor, torch.Tensor | None, tuple]:
        """The network's input x for uint8 frames (B, T, C, H, W), the frame differences (None unless the
        model carries frames) and the state entries carrying the last frame on (`carried` before)."""
        x = self.scale_frames(frames)
        if not self.carries_frame:
            return x, None, ()
        diffs, carried = frame_differences(x, carried)
        if self.inputs != "frames":
            x = diffs if self.inputs == "difference" else torch.cat([x, diffs], dim=2)
        return x, diffs, carried

    def forward(self, frames: torch.Tensor, state: State = None,
                teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        if not self.carries_frame:
            return self.predict(self.scale_frames(frames), None, state, teacher)
        x, diffs, carried = self.prepare(frames, state[-2:] if state else None)
        preds, core = self.predict(x, diffs, state[:-2] if state else None, teacher)
        return preds, (*(core or ()), *carried)

    def set_target_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.target_mean.copy_(torch.as_tensor(mean))
        self.target_std.copy_(torch.as_tensor(std).clamp_min(1e-6))

    def normalise(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - self.target_mean) / self.target_std

    def to_units(self, preds: torch.Tensor) -> torch.Tensor:
        return preds * self.target_std + self.target_mean

    @staticmethod
    def scale_frames(frames: torch.Tensor) -> torch.Tensor:
        """uint8 0..255 to float -1..1, the normalisation inside every model: one new tensor, scaled in place
        (a new tensor for each operation cost 1.5-3x as much: bench/README.md)."""
        return frames.to(torch.float32, copy=True).div_(127.5).sub_(1.0)


def frame_differences(x: torch.Tensor, carried: State) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Differences of scaled frames x (B, T, C, H, W) from the frame before, and the state entries
    that carry the last frame on: (1, B, C*H*W) and a (1, B, 1) flag saying it is there."""
    b = x.shape[0]
    first = x[:, :1]
    if carried is not None:
        has = carried[1][0].view(b, 1, 1, 1, 1)
        first = first + has * (carried[0][0].view_as(x[:, 0])[:, None] - first)  # no previous frame: itself
    diffs = x - (first if x.shape[1] == 1 else torch.cat([first, x[:, :-1]], dim=1))  # one frame: streaming
    return diffs, (x[:, -1].reshape(1, b, -1), torch.ones(1, b, 1, device=x.device))


def reset_state(state: State, keep: torch.Tensor) -> State:
    """Zero the state of the batch rows where `keep` (B,) is False."""
    if state is None:
        return None
    return tuple(s * keep.to(s.dtype).view(1, -1, *([1] * (s.dim() - 2))) for s in state)


def detach_state(state: State) -> State:
    return None if state is None else tuple(s.detach() for s in state)
