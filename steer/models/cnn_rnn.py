"""A per-frame convolutional encoder feeding a recurrent core: the model that can see through time.

The encoder has PilotNet's five convolutions, with batch normalisation, projected to `features` units.
With `motion` on (the default) a second stack of convolutions, averaged over the image, sees the
difference of each frame from the previous one, as Team Rambo did in Udacity's challenge: the
difference shows what moved, which is how a model can tell speed. The core is an LSTM, GRU or plain
RNN of `layers` layers (`bidirectional` for offline evaluation only); a linear head makes one output
per target from the core's output and the frame's own features.
"""
from __future__ import annotations

import torch
from torch import nn

from steer.models.base import State
from steer.models.layout import BatchNorm2d
from steer.models.pilotnet import trunk_features
from steer.models.recurrent import RecurrentCore, RecurrentModel
from steer.models.registry import register_model


def conv_stack(channels: int) -> nn.Sequential:
    """PilotNet's five convolutions, with batch normalisation."""
    layers, widths = [], [channels, 24, 36, 48, 64, 64]
    for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Conv2d(cin, cout, 5 if i < 3 else 3, stride=2 if i < 3 else 1, bias=False),
                   BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*layers)


class FrameEncoder(nn.Module):
    """Appearance of the input (flattened feature map: where the road goes) and, with `motion`, how much
    moved since the previous frame (feature map of the difference averaged over the image: a measure
    that cannot memorise a place, so it has to learn motion)."""

    def __init__(self, input_shape: tuple[int, int, int], features: int, motion_channels: int):
        super().__init__()
        self.appearance = nn.Sequential(conv_stack(input_shape[0]), nn.Flatten())
        flat = trunk_features(self.appearance, input_shape)
        self.project = nn.Sequential(nn.Linear(flat, features), nn.ReLU())
        self.motion = (nn.Sequential(conv_stack(motion_channels), nn.AdaptiveAvgPool2d(1), nn.Flatten())
                       if motion_channels else None)
        self.width = features + (64 if motion_channels else 0)

    def forward(self, x: torch.Tensor, diffs: torch.Tensor | None) -> torch.Tensor:
        feats = self.project(self.appearance(x))
        return feats if self.motion is None else torch.cat([feats, self.motion(diffs)], dim=1)


@register_model("cnn-lstm")
class CnnRnn(RecurrentModel):
    def __init__(self, targets: list[str], frame_shape=(3, 66, 200), cell: str = "lstm", layers: int = 1,
                 hidden: int = 64, features: int = 128, dropout: float = 0.0, bidirectional: bool = False,
                 motion: bool = True, inputs: str = "frames"):
        super().__init__(targets, frame_shape, inputs)
        self.features, self.motion = features, motion
        self.encoder = FrameEncoder((self.input_channels, *frame_shape[1:]), features, frame_shape[0] if motion else 0)
        self.core = RecurrentCore(self.encoder.width, cell, hidden, layers, dropout, bidirectional)
        self.head = nn.Linear(self.core.width + self.encoder.width, len(targets))

    def config(self) -> dict:
        return {**super().config(), **self.core.config(), "features": self.features, "motion": self.motion}

    @property
    def carries_frame(self) -> bool:
        return self.motion or super().carries_frame

    def predict(self, x: torch.Tensor, diffs: torch.Tensor | None, state: State,
                teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        b, t = x.shape[:2]
        diffs = diffs.flatten(0, 1) if self.motion else None
        feats = self.encoder(x.flatten(0, 1), diffs).view(b, t, -1)
        out, state = self.core(feats, state)
        return self.head(torch.cat([out, feats], dim=-1)), state
