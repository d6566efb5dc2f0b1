"""Gradient health through time: what backpropagation through time does inside a network, measured
while it trains (`health_every` steps apart, nothing when 0) and on a trained checkpoint
(steer/evaluate/diagnose.py).

- per-layer gradient norms (before clipping) and update/weight ratios (the step's change of a layer's
  weights over their norm; about 1e-3 is the usual healthy figure);
- the decay curve: the norm of the gradient of the loss at a window's last step with respect to the
  recurrent core's whole state (h, and c for an LSTM, every layer) after each earlier step, from the
  last step back; the effective memory is how many steps back it first falls below 1% of its
  last-step value (the window's length where it never does: at least that);
- dead units: ReLU/ELU units (a channel of a convolution, a feature of a linear layer) whose output is
  never positive over a pass;
- saturated gates: the fraction of sigmoid gate activations below 0.01 or above 0.99, per gate of each
  LSTM/GRU layer;
- clipping events: the step and the gradient norm before clipping.

To see its state and gates the recurrent core is run one step at a time with the cell's equations
written out (`unroll`), the same weights and results as nn.LSTM/GRU/RNN (a test checks), in eval mode:
dropout between layers is not applied.
"""
from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from steer.models.base import SteerModel
from steer.models.recurrent import RecurrentCore

SIGMOID_GATES = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}
SATURATION = (0.01, 0.99)
MEMORY_FRACTION = 0.01
HISTOGRAM_BINS = 64  # TensorBoard's default edges cost 5x the time of a check's histograms at 64 bins


def _cell(cell: str, x: torch.Tensor, state: tuple[torch.Tensor, ...], w_ih, w_hh, b_ih, b_hh):
    """One step of one layer: the new layer state and its sigmoid gates by name (PyTorch's equations)."""
    gi, gh = F.linear(x, w_ih, b_ih), F.linear(state[0], w_hh, b_hh)
    if cell == "rnn":
        return (torch.tanh(gi + gh),), {}
    if cell == "gru":
        (ir, iz, inn), (hr, hz, hn) = gi.chunk(3, 1), gh.chunk(3, 1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(inn + r * hn)
        return ((1 - z) * n + z * state[0],), {"reset": r, "update": z}
    i, f, g, o = (gi + gh).chunk(4, 1)
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
    c = f * state[1] + i * torch.tanh(g)
    return (o * torch.tanh(c), c), {"input": i, "forget": f, "output": o}


def unroll(core: RecurrentCore, x: torch.Tensor, state, states: list | None = None,
           gates: dict | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The core's forward (outputs (B, T, hidden), state) one step at a time. The state after each step
    is appended to `states` as one tuple of (layers, B, hidden) tensors, which the next step and the
    output both read, so every path from a step to the loss runs through it; each gate's activations
    are appended to `gates[f"layer{l}/{name}"]`."""
    if core.bidirectional:
        raise ValueError("a bidirectional core sees the future: its state has no single direction to follow")
    state = tuple(s.to(x.device, x.dtype) for s in (state or core.initial_state(x.shape[0])))
    outs = []
    for t in range(x.shape[1]):
        inp, layers = x[:, t], []
        for layer in range(core.layers):
            weights = [getattr(core.rnn, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            new, acts = _cell(core.cell, inp, tuple(s[layer] for s in state), *weights)
            layers.append(new)
            inp = new[0]
            for name, value in acts.items():
                if gates is not None:
                    gates[f"layer{layer}/{name}"].append(value.detach())
        state = tuple(torch.stack(parts) for parts in zip(*layers))
        if states is not None:
            states.append(state)
        outs.append(state[0][-1])
    return torch.stack(outs, dim=1), state


@contextmanager
def unrolled(model: SteerModel) -> Iterator[dict]:
    """While open, the model's recurrent core runs through `unroll`; yields {"states": [...], "gates":
    {name: [...]}} filled by every forward call (nothing for a model without a core)."""
    core = getattr(model, "core", None)
    if not isinstance(core, RecurrentCore) or core.bidirectional:
        yield {"states": [], "gates": defaultdict(list)}
        return
    if "unrolled" in core.__dict__:  # already open: one record for the outer and inner users
        yield core.unrolled
        return
    record = core.unrolled = {"states": [], "gates": defaultdict(list)}
    core.forward = lambda x, state: unroll(core, x, state, record["states"], record["gates"])
    try:
        yield record
    finally:
        del core.forward, core.unrolled  # the class's own forward again


def state_gradient_curve(loss: torch.Tensor, states: list[tuple[torch.Tensor, ...]]) -> np.ndarray:
    """Norm of d loss / d state after each step, from the last step back (index k = k steps back)."""
    flat = [s for step in states for s in step]
    grads = torch.autograd.grad(loss, flat, allow_unused=True)
    size = len(states[0])
    norms = [float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads[i:i + size] if g is not None)))
             for i in range(0, len(grads), size)]
    return np.array(norms[::-1])


def effective_memory(curve: np.ndarray, fraction: float = MEMORY_FRACTION) -> int:
    """Steps back until the decay curve first falls below `fraction` of its last-step value; the
    curve's length where it never does (the memory is then at least that)."""
    below = np.flatnonzero(curve < fraction * curve[0])
    return int(below[0]) if len(below) else len(curve)


def window_decay(model: SteerModel, inputs: torch.Tensor, teacher: torch.Tensor, state=None) -> np.ndarray | None:
    """The decay curve of the loss at the window's last step (mean squared error against `teacher`,
    normalised targets (B, T, K)) over the window `inputs` (B, T, ...) from `state`, in eval mode (no
    batch statistics touched); None for a model without a recurrent core. Parameter gradients are
    left as they were."""
    if not isinstance(getattr(model, "core", None), RecurrentCore) or model.core.bidirectional:
        return None
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), unrolled(model) as record:
            start = len(record["states"])
            preds, _ = model(inputs, state)
            loss = ((preds[:, -1].float() - teacher[:, -1]) ** 2).mean()
            curve = state_gradient_curve(loss, record["states"][start:])
            del record["states"][start:]  # with their graphs
            return curve
    finally:
        model.train(was_training)


def gate_saturation(activations: torch.Tensor, bounds: tuple[float, float] = SATURATION) -> tuple[int, int]:
    """(saturated, total) activations: below bounds[0] or above bounds[1]."""
    return int(((activations < bounds[0]) | (activations > bounds[1])).sum()), activations.numel()


def _unit_dim(output: torch.Tensor) -> int:
    """Channels of a convolution's maps (N, C, ...), else features in the last dimension."""
    return 1 if output.dim() in (4, 5) else output.dim() - 1


@contextmanager
def watching(model: SteerModel) -> Iterator[dict]:
    """While open, every forward call counts which ReLU/ELU units ever give a positive output and, with
    the core unrolled, how many gate activations saturate. On exit the yielded dict holds
    {"dead_units": {layer: fraction}, "dead_fraction", "gate_saturation": {"layerL/gate": fraction}}."""
    alive: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(module, args, output):
            dim = _unit_dim(output)
            seen = (output.detach() > 0).movedim(dim, 0).flatten(1).any(dim=1)
            alive[name] = seen | alive[name] if name in alive else seen
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, (nn.ReLU, nn.ELU))]
    summary: dict = {}
    try:
        with unrolled(model) as record:
            yield summary
    finally:
        for handle in handles:
            handle.remove()
    summary.update(dead_summary(alive))
    counts = {name: [gate_saturation(a) for a in acts] for name, acts in record["gates"].items()}
    summary["gate_saturation"] = {name: sum(s for s, _ in c) / max(sum(n for _, n in c), 1)
                                  for name, c in counts.items()}


def dead_summary(alive: dict[str, torch.Tensor]) -> dict:
    """Per layer the fraction of units never positive, and over all units."""
    units = sum(a.numel() for a in alive.values())
    return {"dead_units": {name: float(1 - a.float().mean()) for name, a in alive.items()},
            "dead_fraction": float(sum(int((~a).sum()) for a in alive.values()) / units) if units else 0.0}


def _layer(name: str) -> str:
    return name.rsplit(".", 1)[0]


def layer_grad_norms(model: nn.Module) -> dict[str, float]:
    """The norm of each layer's gradient (all its parameters together)."""
    squares: dict[str, float] = defaultdict(float)
    for name, p in model.named_parameters():
        if p.grad is not None:
            squares[_layer(name)] += float((p.grad.float() ** 2).sum())
    return {k: v ** 0.5 for k, v in squares.items()}


def weights_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def update_ratios(model: nn.Module, before: dict[str, torch.Tensor]) -> dict[str, float]:
    """||W_now - W_before|| / ||W_before|| per layer."""
    change: dict[str, float] = defaultdict(float)
    size: dict[str, float] = defaultdict(float)
    params = dict(model.named_parameters())
    for name, old in before.items():
        change[_layer(name)] += float(((params[name].detach() - old).float() ** 2).sum())
        size[_layer(name)] += float((old.float() ** 2).sum())
    return {k: (change[k] / size[k]) ** 0.5 if size[k] else 0.0 for k in change}


class Health:
    """Gradient health during training: `step` after each clipped backward pass, before the optimizer's
    step; every `every` steps it measures layer gradients, the next step's update/weight ratios and a
    window's decay curve, into TensorBoard (`writer`) and the epoch's summary (`epoch`). `watching`
    around the validation pass adds dead units and gate saturation."""

    def __init__(self, every: int, clip_norm: float, writer=None):
        self.every, self.clip_norm, self.writer = every, clip_norm, writer
        self.steps, self.before, self.checks, self.clips, self.validation = 0, None, [], [], {}

    def step(self, model: SteerModel, norm: float, inputs: torch.Tensor, teacher: torch.Tensor) -> None:
        """`norm`: the gradient norm before clipping; `inputs`, `teacher`: the batch just trained on."""
        step, self.steps = self.steps, self.steps + 1
        if norm > self.clip_norm:
            self.clips.append({"step": step, "norm_before": norm})
        if self.before is not None:  # the weights have moved by the last due step's update
            weights, check = self.before
            self._log(step - 1, "update_ratio", update_ratios(model, weights), check)
            self.before = None
        if step % self.every:
            return
        scale = min(1.0, self.clip_norm / (norm + 1e-6))  # clip_grad_norm_'s factor: undone, so before clipping
        check: dict = {"step": step}
        self._log(step, "grad_norm", {k: v / scale for k, v in layer_grad_norms(model).items()}, check)
        self.before = weights_of(model), check
        curve = window_decay(model, inputs.detach(), teacher.detach())
        if curve is not None:
            check.update(decay=(curve / curve[0]).tolist(), effective_memory=effective_memory(curve))
            if self.writer:
                self.writer.add_scalar("health/effective_memory", check["effective_memory"], step)
                self.writer.add_histogram("health/decay", curve / curve[0], step, bins=HISTOGRAM_BINS)
        if self.writer:
            for name, p in model.named_parameters():
                if p.grad is not None:
                    self.writer.add_histogram(f"health/grad/{name}", p.grad.detach().float() / scale, step,
                                              bins=HISTOGRAM_BINS)
        self.checks.append(check)

    def _log(self, step: int, kind: str, values: dict[str, float], check: dict) -> None:
        check[kind] = values
        if self.writer:
            for layer, value in values.items():
                self.writer.add_scalar(f"health/{kind}/{layer}", value, step)

    @contextmanager
    def watching(self, model: SteerModel) -> Iterator[None]:
        with watching(model) as summary:
            yield
        self.validation = summary

    def epoch(self, epoch: int) -> dict:
        """The epoch's health for history.json, and its scalars in TensorBoard; starts the next epoch afresh."""
        memories = [c["effective_memory"] for c in self.checks if "effective_memory" in c]
        summary = {"checks": self.checks, "clips": self.clips, **self.validation,
                   "effective_memory_mean": float(np.mean(memories)) if memories else None}
        if self.writer:
            self.writer.add_scalar("health/clip_events", len(self.clips), epoch)
            self.writer.add_scalar("health/dead_fraction", summary.get("dead_fraction", 0.0), epoch)
            for gate, value in summary.get("gate_saturation", {}).items():
                self.writer.add_scalar(f"health/gate_saturation/{gate}", value, epoch)
        self.checks, self.clips, self.validation = [], [], {}
        return summary
