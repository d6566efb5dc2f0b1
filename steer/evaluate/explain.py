"""What a model looks at, and which past frames a command came from.

- Saliency per frame by VisualBackProp (Bojarski et al., 2016, made to debug PilotNet): each
  convolution's activations averaged over channels; from the deepest, the map is spread back to the
  size of the layer below with that layer's kernel and stride (a transposed convolution of ones) and
  multiplied into its averaged map, down to the input; about the cost of one forward pass. Every chain
  of convolutions is its own map: cnn-lstm's frame branch and its motion branch apart. Chains are found
  by following the activations from one convolution into the next, so every registered model works
  unchanged (komanda's 3D convolution's maps, per output step, feed its 2D ones).
- Attribution over time: gradient x input (captum) of the steering at t for each frame of the window
  before it, summed per frame: the share of the command that came from k frames back.
- A causal check: the 5% most salient pixels of each frame set to grey against as many random ones;
  the change of the predictions, one over the other. A mask leaves regions out of both (a car's hood).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from captum.attr import InputXGradient  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from steer.data.cache import CachedDrive  # noqa: E402
from steer.durable import save_figure, write_json  # noqa: E402
from steer.errors import SteerError  # noqa: E402
from steer.evaluate.video import write_drawn  # noqa: E402
from steer.models import SteerModel  # noqa: E402
from steer.models.sequence import predict_sequence  # noqa: E402

ACTIVATIONS = (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Tanh)
GREY = 128


@dataclass
class ConvLayer:
    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    input_size: tuple[int, int]
    input_channels: int
    output_channels: int
    maps: torch.Tensor | None = None  # (N, h, w): activations averaged over channels, one map per step


def spread(mask: torch.Tensor, layer: ConvLayer, size: tuple[int, int]) -> torch.Tensor:
    """Each value of `mask` (N, h, w) added over the input pixels its kernel covered: a transposed
    convolution with a kernel of ones, to the layer's input `size`."""
    k, s, p = layer.kernel, layer.stride, layer.padding
    natural = [(mask.shape[1 + i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(2)]
    extra = [size[i] - natural[i] for i in range(2)]  # rows and columns a strided convolution left unread
    ones = torch.ones(1, 1, *k, dtype=mask.dtype, device=mask.device)
    return F.conv_transpose2d(mask[:, None], ones, stride=s, padding=p, output_padding=extra)[:, 0]


def visual_backprop(chain: list[ConvLayer]) -> torch.Tensor:
    """The VisualBackProp map (N, H, W) of a chain of convolutions, input side first, scaled to 0..1 per
    map (a map with nothing in it stays 0)."""
    mask = chain[-1].maps
    for below, layer in zip(chain[-2::-1], chain[:0:-1]):
        mask = spread(mask, layer, below.maps.shape[1:]) * below.maps
    mask = spread(mask, chain[0], chain[0].input_size)
    low = mask.flatten(1).min(1).values[:, None, None]
    high = mask.flatten(1).max(1).values[:, None, None]
    return (mask - low) / (high - low).clamp_min(1e-12)


def _pairs(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(name, convolution, the activation after it in its Sequential, or the convolution itself)."""
    found = []
    for parent_name, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent.named_children())
        for i, (name, child) in enumerate(children):
            if isinstance(child, (nn.Conv2d, nn.Conv3d)):
                after = next((c for _, c in children[i + 1:] if isinstance(c, ACTIVATIONS)), child)
                found.append((f"{parent_name}.{name}".lstrip("."), child, after))
    return found


@contextmanager
def recording_convolutions(model: nn.Module) -> Iterator[list[ConvLayer]]:
    """While open, every convolution call appends a ConvLayer with its averaged activations, in call order."""
    calls: list[ConvLayer] = []
    handles = []
    for name, conv, after in _pairs(model):
        def before(module, args, name=name, conv=conv):
            x = args[0]
            calls.append(ConvLayer(name, tuple(conv.kernel_size[-2:]), tuple(conv.stride[-2:]),
                                   tuple(conv.padding[-2:]), tuple(x.shape[-2:]), x.shape[1], conv.out_channels))

        def record(module, args, output):
            # (N, h, w), or (N, T, h, w) after a 3D convolution; an ELU's negative part counts as nothing
            maps = output.detach().float().mean(dim=1).clamp_min(0)
            calls[-1].maps = maps.flatten(0, 1) if maps.dim() == 4 else maps
        handles += [conv.register_forward_pre_hook(before), after.register_forward_hook(record)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def chains(calls: list[ConvLayer]) -> dict[str, list[list[ConvLayer]]]:
    """Calls cut into chains (a convolution continues one when it reads the maps the last one made),
    grouped by the name of the chain's first convolution's Sequential."""
    found: dict[str, list[list[ConvLayer]]] = {}
    current: list[ConvLayer] = []
    for call in calls + [None]:
        last = current[-1] if current else None
        continues = call is not None and last is not None and call.input_size == tuple(last.maps.shape[1:]) \
            and call.input_channels == last.output_channels and call.name != current[0].name
        if not continues and current:
            found.setdefault(current[0].name.rsplit(".", 1)[0], []).append(current)
            current = []
        if call is not None:
            current.append(call)
    return found


@torch.no_grad()
def saliency(model: SteerModel, frames: np.ndarray, chunk: int = 64) -> dict[str, np.ndarray]:
    """VisualBackProp maps (N, H, W) in 0..1 per branch for a drive's uint8 frames (N, C, H, W), run in
    time order with the state carried, as the model drives."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {}
    state = None
    for start in range(0, len(frames), chunk):
        x = torch.from_numpy(np.array(frames[start:start + chunk]))[None]
        with recording_convolutions(model) as calls:
            _, state = model(x, state)
        for branch, runs in chains(calls).items():
            out.setdefault(branch, []).append(torch.cat([visual_backprop(c) for c in runs]).numpy())
    return {branch: np.concatenate(maps).astype(np.float32) for branch, maps in out.items()}


def attribution_over_time(model: SteerModel, inputs: np.ndarray, target: int, window: int = 16,
                          samples: int = 16) -> np.ndarray:
    """The share of |gradient x input| (captum) of target `target` at t that each of the `window`
    inputs up to t holds, index k = k frames back, averaged over `samples` times t spread over the
    drive; each window starts from a zero state. `inputs`: what the model eats (`inputs_of`)."""
    model.eval()
    window = min(window, len(inputs))
    ends = np.unique(np.linspace(window - 1, len(inputs) - 1, samples).astype(int))
    x = torch.from_numpy(np.stack([np.asarray(inputs[e - window + 1:e + 1]) for e in ends])).float()

    def last_step(batch: torch.Tensor) -> torch.Tensor:
        return model(batch, None)[0][:, -1, target]

    with torch.enable_grad():
        attributions = InputXGradient(last_step).attribute(x.requires_grad_())
    per_frame = attributions.detach().abs().flatten(2).sum(2).double()  # (samples, window)
    shares = per_frame / per_frame.sum(1, keepdim=True).clamp_min(1e-30)
    return shares.mean(0).numpy()[::-1].copy()


def combined(maps: dict[str, np.ndarray], ignore: np.ndarray | None = None) -> np.ndarray:
    """One map (N, H, W) from every branch's (their mean), zero where `ignore` (H, W) is set."""
    total = np.mean(list(maps.values()), axis=0)
    return total if ignore is None else np.where(ignore, 0.0, total)


def masked_frames(frames: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """A copy of frames (N, C, H, W) with the picked pixels (N, H, W) set to grey in every channel."""
    out = np.array(frames)
    out.transpose(1, 0, 2, 3)[:, pick] = GREY
    return out


def causal_check(model: SteerModel, frames: np.ndarray, salience: np.ndarray, fraction: float = 0.05,
                 ignore: np.ndarray | None = None, seed: int = 0) -> dict:
    """Mean |change| of each prediction when the `fraction` most salient pixels of every frame go grey,
    against as many random pixels (outside `ignore`), and the ratio of the two."""
    rng = np.random.default_rng(seed)
    n, h, w = salience.shape
    allowed = np.ones((h, w), bool) if ignore is None else ~ignore
    count = max(1, int(round(fraction * allowed.sum())))
    ranked = np.where(allowed, salience, -np.inf).reshape(n, -1)
    top = np.zeros((n, h * w), bool)
    np.put_along_axis(top, np.argsort(-ranked, axis=1)[:, :count], True, axis=1)
    places = np.flatnonzero(allowed)
    random = np.zeros((n, h * w), bool)
    for i in range(n):
        random[i, rng.choice(places, count, replace=False)] = True
    base = predict_sequence(model, frames)
    change = {kind: np.abs(predict_sequence(model, masked_frames(frames, pick.reshape(n, h, w))) - base).mean(0)
              for kind, pick in (("salient", top), ("random", random))}
    return {"fraction": fraction, "pixels_per_frame": count,
            "targets": {t: {"salient": float(change["salient"][k]), "random": float(change["random"][k]),
                            "ratio": float(change["salient"][k] / max(change["random"][k], 1e-12))}
                        for k, t in enumerate(model.targets)}}


def heat_overlay(frame: np.ndarray, salience: np.ndarray, scale: int = 2) -> np.ndarray:
    """A BGR image: `frame` (C, H, W RGB) with `salience` (H, W, 0..1) over it in the jet colours."""
    image = cv2.cvtColor(np.ascontiguousarray(frame.transpose(1, 2, 0)), cv2.COLOR_RGB2BGR)
    heat = cv2.applyColorMap((salience * 255).astype(np.uint8), cv2.COLORMAP_JET)
    mixed = cv2.addWeighted(image, 0.5, heat, 0.5, 0)
    return cv2.resize(mixed, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def heated_frames(frames: np.ndarray, salience: np.ndarray) -> np.ndarray:
    """Frames (N, C, H, W RGB) with their saliency (N, H, W) over them, same shape: for `steer view`."""
    return np.stack([cv2.cvtColor(heat_overlay(np.asarray(f), m, scale=1), cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
                     for f, m in zip(frames, salience)])


def write_saliency_video(path: Path, frames: np.ndarray, maps: dict[str, np.ndarray], fps: float,
                         still: Path) -> None:
    """MP4 of each frame beside its saliency per branch (left to right, names on top); `still` gets
    the middle frame as PNG."""
    def draw(i: int) -> np.ndarray:
        panels = [heat_overlay(np.asarray(frames[i]), np.zeros(frames[i].shape[1:]))]
        for name, m in maps.items():
            panel = heat_overlay(np.asarray(frames[i]), m[i])
            cv2.putText(panel, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
            panels.append(panel)
        return np.hstack(panels)
    write_drawn(path, len(frames), draw, fps, still)


def plot_time(path: Path, shares: np.ndarray, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(len(shares)), shares, color="tab:blue")
    ax.set_xlabel("frames back (k)")
    ax.set_ylabel("share of |gradient x input|")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def read_ignore_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool, True where the image at `path` is not black: the regions to leave out."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SteerError(f"--mask {path}: not an image OpenCV can read (a PNG, white where to ignore)")
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_NEAREST) > 0


def explain_drive(model: SteerModel, drive: CachedDrive, out: Path, ignore: np.ndarray | None = None,
                  window: int = 16, fraction: float = 0.05, seed: int = 0) -> dict:
    """saliency.mp4 (and .png), time.png and explain.json for one drive into `out`."""
    maps = saliency(model, drive.frames)
    if ignore is not None:
        maps = {name: np.where(ignore, 0.0, m).astype(np.float32) for name, m in maps.items()}
    target = model.targets.index("steering") if "steering" in model.targets else 0
    shares = attribution_over_time(model, model.inputs_of(drive), target, window)
    found = {"drive": drive.name, "model": model.registry_name, "branches": sorted(maps),
             "ignored_pixels": int(ignore.sum()) if ignore is not None else 0,
             "attribution_over_time": {"target": model.targets[target], "window": len(shares),
                                       "share_by_frames_back": shares.tolist()},
             "causal_check": causal_check(model, drive.frames, combined(maps, ignore), fraction, ignore, seed)}
    out.mkdir(parents=True, exist_ok=True)
    fps = 1.0 / float(np.median(np.diff(drive.timestamps_s))) if len(drive) > 1 else 20.0
    write_saliency_video(out / "saliency.mp4", drive.frames, maps, fps, out / "saliency.png")
    plot_time(out / "time.png", shares, f"{model.registry_name} on {drive.name}: where {model.targets[target]} "
              "at t came from")
    write_json(out / "explain.json", found)
    return found
