"""True against predicted signals over time, one panel per target."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from steer.durable import save_figure  # noqa: E402


def plot_predictions(path: str | Path, drives: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                     targets: list[str], units: dict[str, str], title: str = "") -> None:
    """drives: (name, time_s (N,), truth (N, K), preds (N, K)); drives are drawn one after another."""
    fig, axes = plt.subplots(len(targets), 1, figsize=(12, 2.4 * len(targets)), sharex=True, squeeze=False)
    offset = 0.0
    for i, (name, time_s, truth, preds) in enumerate(drives):
        t = time_s - time_s[0] + offset
        for k, ax in enumerate(axes[:, 0]):
            ax.plot(t, truth[:, k], color="black", lw=1, label="true" if i == 0 else None)
            ax.plot(t, preds[:, k], color="tab:red", lw=1, alpha=0.8, label="predicted" if i == 0 else None)
            if i:
                ax.axvline(offset, color="grey", ls=":", lw=0.8)
        offset = t[-1] + (t[-1] - t[-2] if len(t) > 1 else 1.0)
    for k, ax in enumerate(axes[:, 0]):
        ax.set_ylabel(f"{targets[k]} ({units.get(targets[k], '?')})")
    axes[0, 0].legend(loc="upper right")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (s), held-out drives one after another")
    save_figure(fig, path, dpi=90)


def open_vs_closed(path: str | Path, result: dict) -> None:
    """Open-loop steering RMSE against closed-loop autonomy, one point per model and seed (a result of
    steer.compare.compare_seeds with autonomy added), the reference drivers as lines: how far the offline
    score can be trusted to rank models that drive."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, row in result["models"].items():
        ax.scatter(row["steering"]["per_seed"], row["autonomy"]["per_seed"], label=label, s=30)
    for (name, autonomy), style in zip(result["references"].items(), ("--", ":")):
        ax.axhline(autonomy, color="grey", ls=style, lw=1, label=name)
    ax.set_xlabel("open-loop steering RMSE (rad), held-out drives")
    ax.set_ylabel("closed-loop autonomy (%), held-out roads")
    ax.set_title(f"seeds {', '.join(map(str, result['seeds']))}")
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=90)
