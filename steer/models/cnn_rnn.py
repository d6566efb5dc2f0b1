"""A per-frame convolutional encoder feeding a recurrent core: the model that can see through time.

The encoder has PilotNet's five convolutions, with batch normalisation, projected to `features` units.
With `motion` on (the default) a second stack of convolutions, averaged over the image, sees the
difference of each frame from the previous one, as Team Rambo did in Udacity's challenge: the
difference shows what moved, which is how a model can tell speed. The previous frame is part of the
carried state, so a window continues exactly where the last one ended. The core is an LSTM, GRU or
plain RNN of `layers` layers; a linear head makes one output per target from the core's output and
the frame's own features.
"""
from __future__ import annotations

import torch
from torch import nn

from steer.models.base import State, SteerModel
from steer.models.pilotnet import trunk_features
from steer.models.registry import register_model

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def conv_stack(channels: int) -> nn.Sequential:
    """PilotNet's five convolutions, with batch normalisation."""
    layers, widths = [], [channels, 24, 36, 48, 64, 64]
    for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Conv2d(cin, cout, 5 if i < 3 else 3, stride=2 if i < 3 else 1, bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*layers)


class FrameEncoder(nn.Module):
    """Appearance of the frame (flattened feature map: where the road goes) and, with `motion`, how much
    moved since the previous frame (feature map of the difference averaged over the image: a measure
    that cannot memorise a place, so it has to learn motion)."""

    def __init__(self, frame_shape: tuple[int, int, int], features: int, motion: bool):
        super().__init__()
        self.appearance = nn.Sequential(conv_stack(frame_shape[0]), nn.Flatten())
        flat = trunk_features(self.appearance, frame_shape)
        self.project = nn.Sequential(nn.Linear(flat, features), nn.ReLU())
        pooled = nn.Sequential(conv_stack(frame_shape[0]), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.motion = pooled if motion else None
        self.width = features + (64 if motion else 0)

    def forward(self, frames: torch.Tensor, diffs: torch.Tensor | None) -> torch.Tensor:
        feats = self.project(self.appearance(frames))
        return feats if self.motion is None else torch.cat([feats, self.motion(diffs)], dim=1)


@register_model("cnn-lstm")
class CnnRnn(SteerModel):
    def __init__(self, targets: list[str], frame_shape=(3, 66, 200), cell: str = "lstm", layers: int = 1,
                 hidden: int = 64, features: int = 128, dropout: float = 0.0, motion: bool = True):
        super().__init__(targets, frame_shape)
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
        self.cell, self.layers, self.hidden, self.features = cell, layers, hidden, features
        self.dropout, self.motion = dropout, motion
        self.encoder = FrameEncoder(frame_shape, features, motion)
        self.core = CELLS[cell](self.encoder.width, hidden, num_layers=layers, batch_first=True,
                                dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden + self.encoder.width, len(targets))

    def config(self) -> dict:
        return {"targets": self.targets, "frame_shape": list(self.frame_shape), "cell": self.cell,
                "layers": self.layers, "hidden": self.hidden, "features": self.features,
                "dropout": self.dropout, "motion": self.motion}

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        core = torch.zeros(self.layers, batch_size, self.hidden)
        cells = (core, core.clone()) if self.cell == "lstm" else (core,)
        frame = (torch.zeros(1, batch_size, int(torch.tensor(self.frame_shape).prod())), torch.zeros(1, batch_size, 1))
        return cells + (frame if self.motion else ())

    def _differences(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Differences of scaled frames (B, T, C, H, W) from the previous frame, and the state entries
        that carry the last frame on; a first frame with no previous one gets a zero difference."""
        b = x.shape[0]
        if state is None:
            previous, has_previous = x[:, :1], torch.zeros(b, device=x.device)
        else:
            previous, has_previous = state[-2][0].view_as(x[:, 0])[:, None], state[-1][0, :, 0]
        previous = torch.where(has_previous.view(b, 1, 1, 1, 1) > 0, previous, x[:, :1])
        diff = x - torch.cat([previous, x[:, :-1]], dim=1)
        carried = (x[:, -1].reshape(1, b, -1), torch.ones(1, b, 1, device=x.device))
        return diff, *carried

    def forward(self, frames: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        b, t = frames.shape[:2]
        x = self.scale_frames(frames)
        core_state, diffs, carried = state, None, ()
        if self.motion:
            diffs, *carried = self._differences(x, state)
            diffs = diffs.flatten(0, 1)
            core_state = state[:-2] if state is not None else None
        if core_state is not None and self.cell != "lstm":
            core_state = core_state[0]  # GRU and RNN take a bare tensor
        feats = self.encoder(x.flatten(0, 1), diffs).view(b, t, -1)
        out, core_state = self.core(feats, core_state)
        core_state = core_state if isinstance(core_state, tuple) else (core_state,)
        return self.head(torch.cat([out, feats], dim=-1)), (*core_state, *carried)
