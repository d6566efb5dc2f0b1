"""The memory task (steer/world/memory.py) on a plain RNN, a GRU and an LSTM: the error on dropped
frames k frames after the last one seen, beside each core's effective memory from `steer diagnose`'s
measures, over seeds. Writes OUT/study.json and the plot (default docs/memory-study.png); a rerun into
the same OUT trains every run again.

    python examples/memory_study.py --out runs/memory [--max-gap 40 --window 48 --seeds 0,1,2 --epochs 15]

The model is features-lstm over a frozen, untrained PilotNet trunk (frames are uniform grey, so its
random features still tell the level apart): only the recurrent core learns, which is what is studied.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from steer.data.cache import FrameCache, save_figure, write_json  # noqa: E402
from steer.evaluate.diagnose import diagnose  # noqa: E402
from steer.models import load_model  # noqa: E402
from steer.models.sequence import predict_drive  # noqa: E402
from steer.provenance import versions  # noqa: E402
from steer.train.config import TrainConfig  # noqa: E402
from steer.train.loop import train  # noqa: E402
from steer.world.memory import frames_unseen, memory_drive  # noqa: E402

COLOURS = {"rnn": "tab:red", "gru": "tab:green", "lstm": "tab:blue"}
MIN_FRAMES = 20  # a gap length with fewer test frames than this is left off the plot (kept in the JSON)


def error_by_gap(run: Path, cache: FrameCache, drives: list[str], max_gap: int) -> tuple[list, list, float]:
    """Speed RMSE (m/s) on frames k = 0..max_gap frames after the last one seen, how many frames
    each k has, and the training-mean baseline's RMSE over the same frames."""
    model = load_model(run / "best")
    errors, truths = [[] for _ in range(max_gap + 1)], []
    for drive in cache.by_name(drives):
        preds, truth = predict_drive(model, drive)[:, 0], drive.signals["speed"]
        for k, e, t in zip(frames_unseen(drive.signals["glitch"]), preds - truth, truth):
            if k <= max_gap:
                errors[k].append(e)
                truths.append(t)
    rmse = [float(np.sqrt(np.mean(np.square(e)))) if e else None for e in errors]
    baseline = float(np.sqrt(np.mean((np.array(truths) - float(model.target_mean[0])) ** 2)))
    return rmse, [len(e) for e in errors], baseline


def rise(rmse: list, counts: list, baseline: float) -> int | None:
    """The first k (of MIN_FRAMES test frames or more) whose error is past half way from the visible
    frames' error to the baseline's."""
    half = (rmse[0] + baseline) / 2
    return next((k for k, (r, n) in enumerate(zip(rmse, counts)) if n >= MIN_FRAMES and r > half), None)


def study(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    drives = [memory_drive(1000 + i, args.frames, args.max_gap, name=f"memory-{i:03d}") for i in range(args.drives)]
    cache = FrameCache.create(out / "cache", drives)
    # more held-out frames than the split's few test drives give: drives of other seeds, never trained on
    tests = FrameCache.create(out / "test-cache", (memory_drive(5000 + i, args.frames, args.max_gap,
                                                                name=f"test-{i:03d}") for i in range(args.test_drives)))
    found = {"settings": vars(args), "versions": versions(), "data_hashes": {**cache.hashes(), **tests.hashes()},
             "cells": {}}
    for cell in args.cells.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            config = TrainConfig(cache=str(out / "cache"), out=str(out / f"{cell}-{seed}"), model="features-lstm",
                                 model_args={"cell": cell, "hidden": args.hidden, "features": 32},
                                 targets=["speed"], window=args.window, batch_size=8, epochs=args.epochs,
                                 patience=args.epochs, lr=args.lr, seed=seed, threads=args.threads,
                                 device=args.device)
            run = train(config, overwrite=True)  # the study owns OUT: a rerun replaces its runs
            split = json.loads((run / "run.json").read_text())["split"]
            rmse, counts, baseline = error_by_gap(run, tests, [d.name for d in tests.drives], args.max_gap)
            health = diagnose(load_model(run / "best"), cache.by_name(split["val"]), args.window)
            found["cells"].setdefault(cell, []).append({
                "seed": seed, "rmse_by_gap": rmse, "frames_by_gap": counts, "baseline_rmse": baseline,
                "error_rises_at": rise(rmse, counts, baseline),
                "effective_memory": health["effective_memory"], "decay": health["decay"]})
            print(f"{cell} seed {seed}: effective memory {health['effective_memory']}, error rises at "
                  f"k={rise(rmse, counts, baseline)}, rmse k=0 {rmse[0]:.2f} k={args.max_gap} {rmse[-1]}")
            write_json(out / "study.json", found)  # after every run: a study cut short keeps what it found
            plot(found, Path(args.plot))
    return found


def plot(found: dict, path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for cell, runs in found["cells"].items():
        colour = COLOURS.get(cell)
        rmse = np.array([[np.nan if r is None or n < MIN_FRAMES else r for r, n in
                          zip(run["rmse_by_gap"], run["frames_by_gap"])] for run in runs])
        left.plot(np.nanmean(rmse, 0), color=colour, label=f"{cell} (mean, band: min to max over seeds)")
        left.fill_between(np.arange(rmse.shape[1]), np.nanmin(rmse, 0), np.nanmax(rmse, 0), color=colour, alpha=0.2)
        decay = np.array([run["decay"] for run in runs])
        memories = [run["effective_memory"] for run in runs]
        right.semilogy(np.exp(np.log(np.clip(decay, 1e-12, None)).mean(0)), color=colour,
                       label=f"{cell}: effective memory {', '.join(map(str, memories))}")
    left.axhline(np.mean([r["baseline_rmse"] for runs in found["cells"].values() for r in runs]), color="grey",
                 ls=":", label="training mean")
    left.set(xlabel="frames since the last one seen (k; 20+ test frames each)", ylabel="speed RMSE (m/s), held out",
             title="error through a run of dropped frames")
    right.axhline(0.01, color="grey", ls=":")
    right.set(xlabel="steps back from a window's last", ylabel="|dL/dstate| / last step's",
              title="gradient through time (validation drives)")
    left.legend(fontsize=8)
    right.legend(fontsize=7)
    save_figure(fig, path, dpi=70)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/memory")
    p.add_argument("--plot", default="docs/memory-study.png")
    p.add_argument("--drives", type=int, default=24)
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--test-drives", type=int, default=12, help="generated apart, for the error by gap length")
    p.add_argument("--max-gap", type=int, default=40)
    p.add_argument("--window", type=int, default=48, help="TBPTT window: longer than the longest gap")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    study(p.parse_args())


if __name__ == "__main__":
    main()
