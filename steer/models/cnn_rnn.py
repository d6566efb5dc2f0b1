"""A per-frame convolutional encoder feeding a recurrent core: the model that can see through time.

The encoder has PilotNet's five convolutions, with batch normalisation, and projects both the flattened
feature map (where things are: the road ahead) and its spatial average (how much of something there
is, wherever it is: motion) to `features` units. With `motion`
on (the default) it sees each frame beside its difference from the previous frame, as Team Rambo did
in Udacity's challenge: the difference shows what moved, which is how a model can tell speed. The
previous frame is part of the carried state, so a window continues exactly where the last one ended.
The core is an LSTM, GRU or plain RNN of `layers` layers; a linear head makes one output per target
from the core's output and the frame's own features.
"""
from __future__ import annotations

import torch
from torch import nn

from steer.models.base import SteerModel, State
from steer.models.pilotnet import trunk_features
from steer.models.registry import register_model

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class FrameEncoder(nn.Module):
    def __init__(self, channels: int, frame_shape: tuple[int, int, int], features: int):
        super().__init__()
        layers, widths = [], [channels, 24, 36, 48, 64, 64]
        for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
            layers += [nn.Conv2d(cin, cout, 5 if i < 3 else 3, stride=2 if i < 3 else 1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        flat = trunk_features(nn.Sequential(self.convs, nn.Flatten()), (channels, *frame_shape[1:]))
        self.project = nn.Sequential(nn.Linear(flat + widths[-1], features), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.convs(x)
        return self.project(torch.cat([maps.flatten(1), maps.mean(dim=(2, 3))], dim=1))


@register_model("cnn-lstm")
class CnnRnn(SteerModel):
    def __init__(self, targets: list[str], frame_shape=(3, 66, 200), cell: str = "lstm", layers: int = 1,
                 hidden: int = 64, features: int = 128, dropout: float = 0.0, motion: bool = True):
        super().__init__(targets, frame_shape)
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
        self.cell, self.layers, self.hidden, self.features = cell, layers, hidden, features
        self.dropout, self.motion = dropout, motion
        channels = frame_shape[0] * (2 if motion else 1)
        self.encoder = FrameEncoder(channels, frame_shape, features)
        self.core = CELLS[cell](features, hidden, num_layers=layers, batch_first=True,
                                dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden + features, len(targets))

    def config(self) -> dict:
        return {"targets": self.targets, "frame_shape": list(self.frame_shape), "cell": self.cell,
                "layers": self.layers, "hidden": self.hidden, "features": self.features,
                "dropout": self.dropout, "motion": self.motion}

    def _with_motion(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames (B, T, C, H, W) scaled, joined by their differences from the previous frame; the first
        frame of a sequence with no previous one gets a zero difference."""
        b = x.shape[0]
        if state is None:
            previous, has_previous = x[:, :1], torch.zeros(b, device=x.device)
        else:
            previous, has_previous = state[-2][0].view_as(x[:, 0])[:, None], state[-1][0, :, 0]
        previous = torch.where(has_previous.view(b, 1, 1, 1, 1) > 0, previous, x[:, :1])
        diff = x - torch.cat([previous, x[:, :-1]], dim=1)
        carried = (x[:, -1].reshape(1, b, -1), torch.ones(1, b, 1, device=x.device))
        return torch.cat([x, diff], dim=2), *carried

    def forward(self, frames: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        b, t = frames.shape[:2]
        x = self.scale_frames(frames)
        carried: tuple[torch.Tensor, ...] = ()
        if self.motion:
            x, *carried = self._with_motion(x, state)
            state = state[:-2] if state is not None else None
        feats = self.encoder(x.flatten(0, 1)).view(b, t, -1)
        if state is not None and self.cell != "lstm":
            state = state[0]
        out, core_state = self.core(feats, state)
        core_state = core_state if isinstance(core_state, tuple) else (core_state,)
        return self.head(torch.cat([out, feats], dim=-1)), (*core_state, *carried)
