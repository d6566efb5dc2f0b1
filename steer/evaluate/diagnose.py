"""Gradient health of a trained checkpoint over drives (steer/train/health.py's measures): each drive
cut into consecutive windows with the state carried between them, as training saw it; per window the
decay curve of the loss at its last step over the core's state, and the layers' gradient norms of its
loss over every step; over the whole pass the dead ReLU/ELU units and the saturated gates."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from steer.data.cache import CachedDrive  # noqa: E402
from steer.durable import save_figure, write_json  # noqa: E402
from steer.models import SteerModel, detach_state  # noqa: E402
from steer.train.health import MEMORY_FRACTION, effective_memory, layer_grad_norms, watching, window_decay  # noqa: E402


def diagnose(model: SteerModel, drives: list[CachedDrive], window: int = 32) -> dict:
    """The measures over `drives` (see the module's description)."""
    model.eval()
    curves, norms = [], []
    with watching(model) as summary:
        for drive in drives:
            inputs, truth = model.inputs_of(drive), model.normalise(torch.from_numpy(drive.targets(model.targets)))
            state = None
            for start in range(0, len(drive) - window + 1, window):
                x = torch.from_numpy(np.array(inputs[start:start + window]))[None]
                y = truth[None, start:start + window]
                curve = window_decay(model, x, y, state)
                if curve is not None:
                    curves.append(curve / curve[0])
                model.zero_grad(set_to_none=True)
                preds, state = model(x, state)
                ((preds - y) ** 2).mean().backward()
                norms.append(layer_grad_norms(model))
                state = detach_state(state)
    if not norms:
        raise ValueError(f"no drive has a whole window of {window} frames: give a shorter --window")
    model.zero_grad(set_to_none=True)
    found = {"window": window, "windows": len(norms),
             "grad_norm": {k: float(np.mean([n[k] for n in norms])) for k in norms[0]}, **summary}
    if curves:
        mean = np.mean(curves, axis=0)
        found.update(decay=mean.tolist(), effective_memory=effective_memory(mean),
                     effective_memory_per_window=[effective_memory(c) for c in curves])
    return found


def plot_diagnosis(path: Path, found: dict, title: str) -> None:
    """Decay curve, dead units, gate saturation and gradient norms per layer, one panel each."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.6))
    if "decay" in found:
        axes[0].semilogy(found["decay"], marker=".")
        axes[0].axhline(MEMORY_FRACTION, color="grey", ls=":")
        axes[0].axvline(found["effective_memory"], color="tab:red", ls="--",
                        label=f"effective memory {found['effective_memory']}")
        axes[0].legend(fontsize=8)
    axes[0].set(xlabel="steps back from the window's last", ylabel="|dL/dstate| / last step's",
                title="decay of the gradient through time")
    for ax, key, label in ((axes[1], "dead_units", "dead units (fraction)"),
                           (axes[2], "gate_saturation", "saturated gate activations"),
                           (axes[3], "grad_norm", "gradient norm")):
        values = found.get(key, {})
        ax.barh(list(values), list(values.values()), color="tab:blue")
        ax.tick_params(axis="y", labelsize=6)
        ax.set(xlabel=label)
    axes[3].set_xscale("log")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def diagnose_to(out: Path, model: SteerModel, drives: list[CachedDrive], window: int, title: str) -> dict:
    """diagnose.json and diagnose.png into `out`."""
    found = {"drives": [d.name for d in drives], "model": model.registry_name, **diagnose(model, drives, window)}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "diagnose.json", found)
    plot_diagnosis(out / "diagnose.png", found, title)
    return found
