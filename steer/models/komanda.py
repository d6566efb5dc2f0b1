"""Team Komanda's model from Udacity's Challenge 2, small enough to train on a CPU.

A 3D convolution whose temporal kernel spans a clip of `clip` frames (the current one and the
`clip - 1` before it) turns each clip into one feature map; PilotNet-like strided 2D convolutions, with
batch normalisation, shrink that; a linear layer projects it to `features` units, two residual
fully connected blocks with layer norm refine them; a recurrent core (`cell`, `hidden`, `layers`,
`dropout`, `bidirectional`: the same options as cnn-lstm's) carries them through time, and a linear
head makes one output per target (steering, speed, throttle or torque: whatever the targets are) from
the core's output and the clip's features.

With `feedback` on, the core also sees its own previous prediction (normalised), as Komanda fed its
previous outputs back in. In training, with the true targets given as `teacher`, the value fed back at
each step and row is the true previous target with probability `teacher_ratio`, else the model's own
prediction (drawn from torch's global generator, so a seeded run is repeatable); in eval mode, or
without a teacher, it is always the model's own. Feedback makes the core run one step at a time; with
it off the core runs over the whole window at once.

The state carries everything a stream needs to go on exactly as one pass over the drive would: the
core's state; the last `clip - 1` inputs (after the `inputs` choice, so C is the input channels) as a
(clip - 1, B, C*H*W) tensor with a (1, B, 1) flag saying they are there; and, with feedback, the value to
feed back at the next step (1, B, K). A sequence start has no past frames: its first frame stands in
for them (repeated), the choice the shared frame differences make too (a first frame differs from
nothing), so the clip sees a still scene rather than black frames it never trains on otherwise.
The value fed back at a start is 0, the training mean of every target. A zeroed state (`reset_state`)
is a start in every part.
"""
from __future__ import annotations

import torch
from torch import nn

from steer.models.base import State
from steer.models.layout import BatchNorm2d
from steer.models.pilotnet import trunk_features
from steer.models.recurrent import RecurrentCore, RecurrentModel
from steer.models.registry import register_model


class ClipEncoder(nn.Module):
    """A (B, C, clip - 1 + T, H, W) run of inputs to (B*T, width) features, one per clip ending at each
    of the last T frames: the 3D convolution's temporal kernel spans the clip without padding, so its
    output has exactly T steps; the rest are 2D convolutions per step."""

    def __init__(self, channels: int, clip: int, size: tuple[int, int]):
        super().__init__()
        self.clip = nn.Sequential(nn.Conv3d(channels, 24, (clip, 5, 5), stride=(1, 2, 2), bias=False),
                                  nn.BatchNorm3d(24), nn.ReLU())
        layers, widths = [], [24, 36, 48, 64, 64]
        for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
            layers += [nn.Conv2d(cin, cout, 5 if i < 2 else 3, stride=2 if i < 2 else 1, bias=False),
                       BatchNorm2d(cout), nn.ReLU()]
        self.frame = nn.Sequential(*layers, nn.Flatten())
        h, w = ((s - 5) // 2 + 1 for s in size)
        self.width = trunk_features(self.frame, (24, h, w))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        maps = self.clip(clips)  # (B, 24, T, h, w)
        return self.frame(maps.transpose(1, 2).flatten(0, 1))


class ResidualBlock(nn.Module):
    """x + W2 relu(W1 layernorm(x)): a pre-norm fully connected block."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_model("komanda")
class Komanda(RecurrentModel):
    # its 3-d convolutions trained slower at bf16 than at fp32 with AVX512-BF16 alone in two of three quiet
    # runs of bench/train.py (238 vs 315 frames/s), faster in one (478 vs 348); with AMX 1.7x faster (949 vs
    # 555): see bench/README.md
    cpu_bf16 = ("amx_bf16",)

    def __init__(self, targets: list[str], frame_shape=(3, 66, 200), clip: int = 4, cell: str = "lstm",
                 layers: int = 1, hidden: int = 64, features: int = 128, dropout: float = 0.0,
                 bidirectional: bool = False, feedback: bool = False, teacher_ratio: float = 0.5,
                 inputs: str = "frames"):
        super().__init__(targets, frame_shape, inputs)
        if isinstance(clip, bool) or not isinstance(clip, int) or clip < 1:
            raise ValueError(f"clip must be a whole number of frames, 1 or more (the current frame and clip - 1 "
                             f"before it), got {clip!r}")
        if not 0.0 <= teacher_ratio <= 1.0:
            raise ValueError(f"teacher_ratio is a probability, in [0, 1], got {teacher_ratio}")
        if feedback and bidirectional:
            raise ValueError("feedback runs the core one step at a time on its own past outputs: it cannot be "
                             "bidirectional")
        self.clip, self.features, self.feedback, self.teacher_ratio = clip, features, feedback, teacher_ratio
        self.encoder = ClipEncoder(self.input_channels, clip, frame_shape[1:])
        self.fc = nn.Sequential(nn.Linear(self.encoder.width, features), nn.ReLU(),
                                ResidualBlock(features), ResidualBlock(features), nn.LayerNorm(features))
        self.core = RecurrentCore(features + (len(targets) if feedback else 0), cell, hidden, layers, dropout,
                                  bidirectional)
        self.head = nn.Linear(self.core.width + features, len(targets))

    def config(self) -> dict:
        return {**super().config(), **self.core.config(), "clip": self.clip, "features": self.features,
                "feedback": self.feedback, "teacher_ratio": self.teacher_ratio}

    @property
    def _frame_size(self) -> int:
        return self.input_channels * self.frame_shape[1] * self.frame_shape[2]

    def core_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        past = ((torch.zeros(self.clip - 1, batch_size, self._frame_size), torch.zeros(1, batch_size, 1))
                if self.clip > 1 else ())
        fed = (torch.zeros(1, batch_size, len(self.targets)),) if self.feedback else ()
        return super().core_state(batch_size) + past + fed

    def predict(self, x: torch.Tensor, diffs: torch.Tensor | None, state: State,
                teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        b, t = x.shape[:2]
        if state is None:
            state = tuple(s.to(x.device) for s in self.core_state(b))
        core, rest = state[:self.core.state_size], state[self.core.state_size:]
        clips, past = self._clips(x, rest[:2] if self.clip > 1 else None)
        feats = self.fc(self.encoder(clips.transpose(1, 2))).view(b, t, -1)
        if not self.feedback:
            out, core = self.core(feats, core)
            return self.head(torch.cat([out, feats], dim=-1)), (*core, *past)
        fed, preds = rest[-1][0], []
        mix = self.training and teacher is not None
        for step in range(t):
            out, core = self.core(torch.cat([feats[:, step], fed], dim=-1)[:, None], core)
            pred = self.head(torch.cat([out[:, 0], feats[:, step]], dim=-1))
            preds.append(pred)
            # Fed back detached: a prediction is trained to match its own step's target only. Its use as the
            # next input is treated as a given, like the teacher's value it stands in for (scheduled
            # sampling), so no gradient asks for predictions that are easy inputs rather than right ones,
            # and the output-to-input loop adds no second path for gradients to grow through time.
            fed = pred.detach()
            if mix:
                true = torch.rand(b, 1, device=x.device) < self.teacher_ratio
                fed = torch.where(true, teacher[:, step].to(fed.dtype), fed)
        return torch.stack(preds, dim=1), (*core, *past, fed[None])

    def _clips(self, x: torch.Tensor, carried: State) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The inputs x (B, T, C, H, W) behind the clip - 1 carried before them (B, clip - 1 + T, C, H, W),
        and the state entries carrying the last clip - 1 on. Straight-line tensor code, no branch on values:
        the step graph exports as it is."""
        if carried is None:
            return x, ()
        b, k = x.shape[0], self.clip - 1
        first = x[:, :1].expand(-1, k, -1, -1, -1)
        past = carried[0].view(k, b, *x.shape[2:]).transpose(0, 1)
        has = carried[1][0].view(b, 1, 1, 1, 1)
        run = torch.cat([first + has * (past - first), x], dim=1)  # no past yet: the first frame, repeated
        last = run[:, -k:].transpose(0, 1).reshape(k, b, -1)
        return run, (last, torch.ones(1, b, 1, device=x.device, dtype=x.dtype))
