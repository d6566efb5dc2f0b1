"""Sequence windows over drives, splits by drive, and the batch orders that training uses.

A window is T consecutive frames of one drive and never crosses into another. Two batch orders:

- stateless: windows in random order, every one starting from a zero state;
- stateful (truncated backpropagation through time): each batch row is a lane that walks its drives
  in time order, window after window, so the state can be carried from one window to the next; a
  lane's state is reset wherever it starts a new drive.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Window:
    drive: int  # index into the list of drives
    start: int  # first frame
    reset: bool = True  # the state must start from zero here
    weight: float = 1.0  # 0 for padding


def windows(lengths: list[int], length: int, stride: int) -> list[Window]:
    """All windows of `length` frames every `stride` frames, none crossing a drive's end."""
    return [Window(d, start) for d, n in enumerate(lengths) for start in range(0, n - length + 1, stride)]


def split_by_drive(names: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, list[str]]:
    """Train, validation and test drive names; each part gets at least one drive where there are three."""
    if len(names) < 3:
        raise ValueError(f"a split by drive needs at least 3 drives, got {len(names)}")
    order = list(np.random.default_rng(seed).permutation(sorted(names)))
    n_val = max(1, round(fractions[1] * len(names)))
    n_test = max(1, round(fractions[2] * len(names)))
    n_train = len(names) - n_val - n_test
    if n_train < 1:
        raise ValueError(f"split {fractions} leaves no training drive out of {len(names)}")
    return {"train": sorted(order[:n_train]), "val": sorted(order[n_train:n_train + n_val]),
            "test": sorted(order[n_train + n_val:])}


def split_by_time(lengths: dict[str, int], fractions: tuple[float, float, float]) -> dict[str, list[str]]:
    """Each drive cut into three contiguous blocks in time order (train, then validation, then test),
    named `drive@start:stop`; for data with too few drives to hold some out whole."""
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for name, n in sorted(lengths.items()):
        edges = np.round(np.cumsum([0.0, *fractions]) / sum(fractions) * n).astype(int)
        for part, a, b in zip(parts, edges, edges[1:]):
            if b > a:
                parts[part].append(f"{name}@{a}:{b}")
    return parts


def stateless_batches(lengths: list[int], length: int, stride: int, batch_size: int,
                      rng: np.random.Generator) -> list[list[Window]]:
    """Windows in random order; the last batch is padded with weight-zero windows, so every batch has
    `batch_size` rows (and every rank of a distributed run its share of them)."""
    pool = windows(lengths, length, stride)
    if not pool:
        raise ValueError(f"no drive is as long as a window of {length} frames")
    order = rng.permutation(len(pool))
    batches = [[pool[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]
    batches[-1] += [replace(pool[0], weight=0.0)] * (batch_size - len(batches[-1]))
    return batches


def stateful_batches(lengths: list[int], length: int, batch_size: int,
                     rng: np.random.Generator) -> list[list[Window]]:
    """Batches of lanes; step k of a lane directly follows step k-1 of the same lane.

    The drives, in random order, are laid end to end as back-to-back windows and cut into `batch_size`
    lanes as equal as they can be. The state is reset where a drive starts and where a cut falls inside
    a drive, so no state ever flows from one drive into another; lanes shorter than the longest (or empty,
    where there are fewer windows than lanes) are padded with weight-zero windows: every batch has
    `batch_size` rows, so every rank of a distributed run gets its full share.
    """
    sequence = [Window(int(d), s, reset=(s == 0)) for d in rng.permutation(len(lengths))
                for s in range(0, lengths[d] - length + 1, length)]
    if not sequence:
        raise ValueError(f"no drive is as long as a window of {length} frames")
    cuts = np.linspace(0, len(sequence), batch_size + 1).round().astype(int)
    lanes = [sequence[a:b] for a, b in zip(cuts, cuts[1:])]
    lanes = [[replace(lane[0], reset=True)] + lane[1:] if lane else [] for lane in lanes]
    padding = replace(sequence[0], weight=0.0)
    steps = max(len(lane) for lane in lanes)
    return [[lane[k] if k < len(lane) else padding for lane in lanes] for k in range(steps)]
