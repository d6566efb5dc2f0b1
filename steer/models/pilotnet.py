"""NVIDIA's PilotNet (Bojarski et al., 2016): one frame in, one prediction out, no memory.

Five convolutions (24, 36, 48 with 5x5 kernels and stride 2; 64, 64 with 3x3) and fully connected
layers of 100, 50 and 10 units; about 250K parameters at its 66x200 input.
"""
from __future__ import annotations

import torch
from torch import nn

from steer.models.base import State, SteerModel
from steer.models.registry import register_model


def pilotnet_trunk(channels: int = 3) -> nn.Sequential:
    """The convolutional part, shared with models that put memory behind it."""
    layers, widths = [], [channels, 24, 36, 48, 64, 64]
    for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Conv2d(cin, cout, 5 if i < 3 else 3, stride=2 if i < 3 else 1), nn.ELU()]
    return nn.Sequential(*layers, nn.Flatten())


def trunk_features(trunk: nn.Module, frame_shape: tuple[int, int, int]) -> int:
    """Width of the trunk's flat output for one frame (in eval mode: no batch statistics are touched)."""
    was_training = trunk.training
    with torch.no_grad():
        width = trunk.eval()(torch.zeros(1, *frame_shape)).shape[1]
    trunk.train(was_training)
    return width


@register_model("pilotnet")
class PilotNet(SteerModel):
    def __init__(self, targets: list[str], frame_shape=(3, 66, 200), dropout: float = 0.0, inputs: str = "frames"):
        super().__init__(targets, frame_shape, inputs)
        self.dropout = dropout
        self.trunk = pilotnet_trunk(self.input_channels)
        width = trunk_features(self.trunk, (self.input_channels, *frame_shape[1:]))
        self.head = nn.Sequential(
            nn.Linear(width, 100), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(100, 50), nn.ELU(), nn.Linear(50, 10), nn.ELU(), nn.Linear(10, len(targets)))

    def config(self) -> dict:
        return {**super().config(), "dropout": self.dropout}

    def predict(self, x: torch.Tensor, diffs: torch.Tensor | None, state: State,
                teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        b, t = x.shape[:2]
        return self.head(self.trunk(x.flatten(0, 1))).view(b, t, -1), None
