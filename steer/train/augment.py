"""Augmentation for training, consistent through time: one draw of every part per window, held across its
frames, and in stateful training across a lane's windows until the lane starts a drive (where its state is
reset), so the previous frame a model carries was transformed as the frames after it. A transform drawn
anew for every frame would be flicker and false motion, which a model of frame differences reads as speed.

Applied on the training device to uint8 batches (B, T, C, H, W) after loading, vectorised over the batch;
validation, evaluation and streaming never see it. The draws come from a generator seeded by the run's
seed, the epoch and the rank, so a run repeats them and a resumed run continues them.

Parts and what their strength is (`--augment-strengths`; 0 turns a part off):

- flip: the probability of a mirrored window; steering negated, speed, throttle and brake kept (a target
  whose sign under a mirror steer does not know is refused);
- brightness, contrast, saturation: a factor 1 +- s (contrast about the frame's mean grey, saturation away
  from its grey); hue: a turn of the colour wheel of up to +- s of a full turn; gamma: a gamma-like tone curve
  x + k x (1 - x), k up to +- s (black and white stay; a power costs a CPU several passes more);
- blur: up to s of each pixel replaced by the mean of it and its four neighbours; noise: grain of up to s of
  full scale, the same grain on every frame of a window (fresh grain each frame would be motion);
- shadow: half the time, one side of a random line across the image darkened by up to s;
- shift: the view moved sideways by up to +- s of its width; the documented rule: steering changes by
  -shift_steering times the fraction moved (content moving right means the road lies further right, so the
  car steers right: negative, as positive steering is to the left); a roll of up to +- rotate degrees says
  nothing about where the road goes, so steering is kept (off by default: resampling every pixel costs a CPU
  about as much as all the other parts together);
- cutout: half the time, a grey rectangle of up to s of the height and the width.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from steer.data.cache import CachedDrive
from steer.models import SteerModel
from steer.train.config import TrainConfig

STRENGTHS = {"flip": 0.5, "brightness": 0.25, "contrast": 0.25, "saturation": 0.25, "hue": 0.03, "gamma": 0.25,
             "blur": 0.5, "noise": 0.02, "shadow": 0.4, "shift": 0.05, "shift_steering": 1.0, "rotate": 0.0,
             "cutout": 0.2}
AT_MOST = {"flip": 1.0, "shadow": 1.0, "cutout": 1.0, "shift": 0.5, "hue": 0.5, "blur": 1.0, "gamma": 1.0}
SIGN_UNDER_FLIP = {"steering": -1.0, "speed": 1.0, "throttle": 1.0, "brake": 1.0}
GRAINS = 32  # grain images drawn once per epoch, each window taking one: a fresh draw per window costs much more
MOVES = ("flip", "shift")  # the parts that change a target: they must know every target
GREY = torch.tensor([0.299, 0.587, 0.114])
# RGB to YIQ: hue turns the chroma plane (I, Q) about the luma axis Y
YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def strengths_of(overrides: dict) -> dict[str, float]:
    """The defaults with `overrides` (from --augment-strengths) in place."""
    return {**STRENGTHS, **overrides}


def check_strengths(overrides: dict, targets: list[str]) -> None:
    """Refuse unknown parts, negative or too-large strengths, and moves of targets steer cannot move."""
    unknown = sorted(set(overrides) - set(STRENGTHS))
    if unknown:
        raise ValueError(f"--augment-strengths: no part {', '.join(unknown)}; parts: {', '.join(STRENGTHS)}")
    for part, value in overrides.items():
        if not isinstance(value, (int, float)) or not 0 <= value <= AT_MOST.get(part, math.inf):
            limit = f" and at most {AT_MOST[part]}" if part in AT_MOST else ""
            raise ValueError(f"--augment-strengths: {part} {value!r} must be a number of 0 or more{limit}")
    strengths, unknown = strengths_of(overrides), [t for t in targets if t not in SIGN_UNDER_FLIP]
    moving = [p for p in MOVES if strengths[p] > 0]
    if unknown and moving:
        raise ValueError(f"--augment-strengths: {' and '.join(moving)} would change targets, and steer does not know "
                         f"what they do to {', '.join(unknown)}: give "
                         + ", ".join(f'"{p}": 0' for p in moving))


def generator(seed: int, epoch: int, rank: int, device: str) -> torch.Generator:
    """The draws of one epoch of one rank: a resumed run starts its next epoch where the first run would have."""
    state = np.random.SeedSequence([seed, epoch, rank, 22]).generate_state(1)[0]
    return torch.Generator(device).manual_seed(int(state))


def check_augment(config: TrainConfig, model: SteerModel, drive: CachedDrive) -> None:
    """--augment transforms camera frames: a model fed stored features has none to transform."""
    if config.augment and model.inputs_of(drive).dtype != np.uint8:
        raise ValueError(f"--augment transforms camera frames, and {config.model} trains on stored features: "
                         "train it without --augment")


def for_epoch(config: TrainConfig, epoch: int, rank: int) -> Augmenter | None:
    """The epoch's augmentation, or None without --augment."""
    if not config.augment:
        return None
    gen = generator(config.seed, epoch, rank, config.device)
    return Augmenter(strengths_of(config.augment_strengths), config.targets, gen)


def write_grid(out: Path, config: TrainConfig, drive: CachedDrive, span: int) -> None:
    """augment.png: the first training window (at least 4 frames, to show the draw held through time)
    under each part of the augmentation."""
    n = min(max(span, 4), len(drive))
    steering = drive.targets(["steering"])[:n, 0] if "steering" in config.targets else None
    grid_image(out / "augment.png", drive.frames[:n], steering, strengths_of(config.augment_strengths), config.seed)


class Augmenter:
    """Draws per batch row, kept while the row's state is carried and drawn again where it is reset."""

    def __init__(self, strengths: dict[str, float], targets: list[str], gen: torch.Generator):
        self.s, self.gen, self.held, self.bank = strengths, gen, None, None
        self.signs = torch.tensor([SIGN_UNDER_FLIP.get(t, 1.0) for t in targets])
        self.steering = targets.index("steering") if "steering" in targets else None

    def __call__(self, frames: torch.Tensor, targets: torch.Tensor,
                 reset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented uint8 frames (B, T, C, H, W) and their targets (B, T, K); rows where `reset` is True
        (a window from zero, a lane starting a drive) take a new draw, the others keep theirs."""
        if self.bank is None or self.bank.shape[1:] != frames.shape[2:]:
            self.bank = 255 * torch.randn(GRAINS, *frames.shape[2:], generator=self.gen, device=frames.device)
        new = self.draw(frames.shape[0], frames.shape[-1], frames.device)
        if self.held is None or len(self.held["flip"]) != len(reset):
            self.held = new
        else:
            self.held = {k: torch.where(reset.view(-1, *[1] * (v.dim() - 1)), v, self.held[k]) for k, v in new.items()}
        return transform(frames, self.held, self.s, self.bank), self.move_targets(targets, self.held)

    def draw(self, b: int, w: int, device: torch.device) -> dict[str, torch.Tensor]:
        """One draw per row of every part, whatever its strength (a part at 0 draws but changes nothing), so
        the sequence of draws does not depend on which parts are on."""
        s = self.s
        u = lambda *size: torch.rand(b, *size, generator=self.gen, device=device)  # noqa: E731
        pm = lambda k: (2 * u() - 1) * s[k]  # noqa: E731
        return {"flip": u() < s["flip"], "brightness": 1 + pm("brightness"), "contrast": 1 + pm("contrast"),
                "saturation": 1 + pm("saturation"), "hue": pm("hue"), "gamma": pm("gamma"),
                "blur": u() * s["blur"], "noise": u() * s["noise"],
                "grain": torch.randint(GRAINS, (b,), generator=self.gen, device=device),
                "shadow": (u() < 0.5) * u() * s["shadow"], "shadow_line": u(3),
                "shift": (pm("shift") * w).round() / w, "rotate": pm("rotate"),
                "cutout": (u() < 0.5) * s["cutout"], "cutout_box": u(4)}

    def move_targets(self, targets: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        signs = torch.where(p["flip"][:, None], self.signs.to(targets.device), 1.0)
        moved = targets * signs[:, None, :]
        if self.steering is not None:
            moved[..., self.steering] -= self.s["shift_steering"] * p["shift"][:, None]
        return moved


def transform(frames: torch.Tensor, p: dict[str, torch.Tensor], s: dict[str, float],
              bank: torch.Tensor) -> torch.Tensor:
    """uint8 frames (B, T, C, H, W) under row b's draw p[...][b] on every one of its frames, its grain from `bank`
    (GRAINS, C, H, W) at 0..255. Few passes over the
    pixels, as training on a CPU has little time to spare: the moves are one gather of uint8 columns, the colour
    one matrix per frame, and shadow, grain and cut-out one multiply-add with the quantisation folded in."""
    b, t, c, h, w = frames.shape
    per = lambda v: v.repeat_interleave(t, dim=0)  # noqa: E731  (B, ...) -> (B*T, ...), frame by frame
    frames = frames.gather(-1, _columns(p["flip"], p["shift"], w).view(b, 1, 1, 1, w).expand_as(frames))
    x = frames.reshape(b * t, c, h, w).float()
    if s["rotate"]:
        x = _roll(x, per(p["rotate"]))
    x = _colour(x, frames, {k: per(p[k]) for k in ("brightness", "contrast", "saturation", "hue")}).clamp_(0, 1)
    k = per(p["gamma"]).view(-1, 1, 1, 1)
    x = torch.addcmul(1 + k, x, -k).mul_(x)  # x + k x (1 - x): black and white stay
    if s["blur"]:
        x = x.lerp_(_blurred(x), per(p["blur"]).view(-1, 1, 1, 1))
    scale, offset = _overlay(p, bank, h, w)
    x = x.view(b, t, c, h, w).mul_(scale).add_(offset)  # in place: broadcasting out of place is slower
    return x.clamp_(0, 255).to(torch.uint8)  # offset holds the +0.5 that makes the truncation a rounding


def _blurred(x: torch.Tensor) -> torch.Tensor:
    """Each pixel the mean of itself and its four neighbours (edges repeated): a blur of about a pixel, in
    few passes (a 3x3 convolution per channel is many times slower on a CPU)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return p[..., 1:-1, :-2].add(p[..., 1:-1, 2:]).add_(p[..., :-2, 1:-1]).add_(p[..., 2:, 1:-1]).add_(x).div_(5)


def _columns(flip: torch.Tensor, shift: torch.Tensor, w: int) -> torch.Tensor:
    """(B, W) the source column of every column: content moved right by `shift` of the width (edges
    repeated), of the mirrored image where `flip`."""
    cols = torch.arange(w, device=flip.device)
    source = (cols - (shift * w).round().long()[:, None]).clamp(0, w - 1)
    return torch.where(flip[:, None], w - 1 - source, source)


def _roll(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Frames turned by `degrees` (counter-clockwise), edges repeated."""
    n, _, h, w = x.shape
    a = torch.deg2rad(degrees)
    theta = torch.zeros(n, 2, 3, device=x.device)
    # in grid units x spans the width and y the height: the aspect ratio keeps the turn a rotation
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a) * h / w
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a) * w / h, torch.cos(a)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _colour(x: torch.Tensor, frames: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """x (N, 3, H, W) 0..255 to 0..1 under brightness, contrast (about the mean grey, from every 4th pixel of
    `frames`), saturation and hue: one affine map per frame, as each of them is one and grey stays grey."""
    n, c, h, w = x.shape
    grey = GREY.to(x.device)
    mean = (frames.reshape(n, c, h, w)[:, :, ::4, ::4].float().mean((2, 3)) @ grey) / 255 * p["brightness"]
    s = p["saturation"].view(-1, 1, 1)
    saturation = s * torch.eye(3, device=x.device) + (1 - s) * grey.view(1, 1, 3)
    gain = (p["contrast"] * p["brightness"] / 255).view(-1, 1, 1)
    matrix = _hue_turn(p["hue"]) @ saturation * gain
    offset = ((1 - p["contrast"]) * mean).view(-1, 1, 1).expand(n, c, h * w)
    return torch.baddbmm(offset, matrix, x.view(n, c, h * w)).view(n, c, h, w)


def _hue_turn(turns: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) RGB matrices turning the hue by `turns` of the colour wheel."""
    yiq = YIQ.to(turns.device)
    a = 2 * math.pi * turns
    rotation = torch.zeros(len(turns), 3, 3, device=turns.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = a.cos(), -a.sin(), a.sin(), a.cos()
    return torch.linalg.inv(yiq) @ rotation @ yiq


def _overlay(p: dict[str, torch.Tensor], bank: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, what multiplies each 0..1 pixel and what is added to it, at 0..255 (+0.5 to round): the
    shadow darkens, the grain adds, the cut-out replaces with grey (grain and all, as an object in front of
    the lens would be); (B, 1, 1, H, W) and (B, 1, C, H, W)."""
    device = bank.device
    rows = torch.linspace(0, 1, h, device=device).view(1, h, 1)
    cols = torch.linspace(0, 1, w, device=device).view(1, 1, w)
    line = p["shadow_line"]  # the shadow's edge: from line[:, 0] of the width at the top to line[:, 1] at the bottom
    edge = line[:, :1, None] + (line[:, 1:2, None] - line[:, :1, None]) * rows  # (B, H, 1)
    side = torch.where(line[:, 2] < 0.5, 1.0, -1.0).view(-1, 1, 1)  # line[:, 2]: the side left or right of it
    dark = cols * side < edge * side  # both small: one comparison over the pixels
    box = p["cutout_box"]  # centre row, centre column, height and width as fractions of the cut-out's size
    half = p["cutout"][:, None] * box[:, 2:] / 2
    cut = ((rows - box[:, :1, None]).abs() < half[:, :1, None]) & ((cols - box[:, 1:2, None]).abs() < half[:, 1:, None])
    scale = (255 - dark * (255 * p["shadow"]).view(-1, 1, 1)).masked_fill_(cut, 0.0)
    offset = bank.index_select(0, p["grain"]).mul_(p["noise"].view(-1, 1, 1, 1)).add_(0.5)
    offset.masked_fill_(cut[:, None], 128.0)
    return scale[:, None, None], offset[:, None]


def grid_image(path: Path, frames: np.ndarray, steering: np.ndarray | None, strengths: dict[str, float],
               seed: int) -> None:
    """One window (T, C, H, W) under each part on its own, then under all of them, a row each: what the
    model is fed. The steering each row trains on is written beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from steer.durable import save_figure

    parts = [p for p in STRENGTHS if p != "shift_steering" and strengths[p] > 0]
    rows = [("none", dict.fromkeys(STRENGTHS, 0.0))]
    rows += [(p, {**dict.fromkeys(STRENGTHS, 0.0), p: strengths[p], "shift_steering": strengths["shift_steering"],
                  **({"flip": 1.0} if p == "flip" else {})}) for p in parts]  # a flip that always shows
    rows.append(("all", strengths))
    window = torch.from_numpy(np.array(frames))[None]  # a copy: the cache is read-only
    truth = torch.from_numpy(np.zeros((1, len(frames), 1)) if steering is None else steering[None, :, None])
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(1.6 * len(frames), 1.3 * len(rows)), squeeze=False)
    for (name, s), line in zip(rows, axes):
        augmenter = Augmenter(s, ["steering"], torch.Generator().manual_seed(seed))
        seen, moved = augmenter(window, truth.float(), torch.ones(1, dtype=torch.bool))
        for ax, image in zip(line, seen[0]):
            ax.imshow(image.permute(1, 2, 0).numpy())
            ax.set_xticks([]), ax.set_yticks([])
        label = name if steering is None else f"{name}\nsteering {float(moved[0, 0, 0]):.3g}"
        line[0].set_ylabel(label, fontsize=7)
    save_figure(fig, path)
