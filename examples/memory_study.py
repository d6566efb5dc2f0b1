"""The memory task (steer/world/memory.py) on a plain RNN, a GRU and an LSTM, over the longest run of
lost frames L and over seeds: each core trained on drives whose lost runs last 1 to L frames, then
scored on drives generated apart (the speed RMSE on lost frames, and by frames since the last one
seen), beside its effective memory from `steer diagnose`'s measures on the validation drives. Writes
OUT/study.json and the plot (default docs/memory-study.png); a rerun into the same OUT trains every
run again.

    python examples/memory_study.py --out runs/memory [--gaps 2,5,10,20,40 --window 48 --seeds 0,1,2]

The model is features-lstm over a frozen, untrained PilotNet trunk (its random features still tell a
grey level from snow): only the projection and the recurrent core learn, which is what is studied.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from steer.data.cache import FrameCache  # noqa: E402
from steer.durable import save_figure, write_json  # noqa: E402
from steer.evaluate.diagnose import diagnose  # noqa: E402
from steer.models import SteerModel, load_model  # noqa: E402
from steer.models.sequence import predict_drive  # noqa: E402
from steer.provenance import versions  # noqa: E402
from steer.train.checkpoint import read_run  # noqa: E402
from steer.train.config import TrainConfig  # noqa: E402
from steer.train.health import MEMORY_FRACTION  # noqa: E402
from steer.train.loop import train  # noqa: E402
from steer.world.memory import frames_unseen, memory_drive  # noqa: E402

COLOURS = {"rnn": "tab:red", "gru": "tab:green", "lstm": "tab:blue"}
MIN_FRAMES = 20  # a k with fewer test frames than this is left off the plot (kept in the JSON)


def rms(errors) -> float | None:
    return float(np.sqrt(np.mean(np.square(errors)))) if len(errors) else None


def scores(model: SteerModel, cache: FrameCache, gap: int) -> dict:
    """Speed RMSE (m/s) on seen and on lost frames, by k = frames since the last one seen (and how many
    frames each k has), and the training-mean baseline's RMSE over the same frames."""
    errors, truths, ks = [], [], []
    for drive in cache.drives:
        errors.append(predict_drive(model, drive)[:, 0] - drive.signals["speed"])
        truths.append(drive.signals["speed"])
        ks.append(frames_unseen(drive.signals["glitch"]))
    errors, truths, ks = map(np.concatenate, (errors, truths, ks))
    return {"seen_rmse": rms(errors[ks == 0]), "lost_rmse": rms(errors[ks > 0]),
            "rmse_by_k": [rms(errors[ks == k]) for k in range(gap + 1)],
            "frames_by_k": [int((ks == k).sum()) for k in range(gap + 1)],
            "baseline_rmse": rms(truths - float(model.target_mean[0]))}


def caches(out: Path, gap: int, args: argparse.Namespace) -> tuple[FrameCache, FrameCache]:
    """Training drives, and test drives of other seeds (never trained on), whose lost runs last up to gap
    frames (at least `--shortest` of it)."""
    def drives(first: int, count: int, prefix: str):
        return (memory_drive(first + i, args.frames, gap, name=f"{prefix}-{i:03d}", lost=args.lost,
                              min_gap=max(1, round(gap * args.shortest)))
                for i in range(count))
    return (FrameCache.create(out / f"gap-{gap}" / "cache", drives(1000, args.drives, "memory")),
            FrameCache.create(out / f"gap-{gap}" / "test-cache", drives(5000, args.test_drives, "test")))


def one_run(out: Path, gap: int, cell: str, seed: int, cache: FrameCache, tests: FrameCache,
            args: argparse.Namespace) -> dict:
    config = TrainConfig(cache=str(cache.root), out=str(out / f"gap-{gap}" / f"{cell}-{seed}"),
                         model="features-lstm", model_args={"cell": cell, "hidden": args.hidden, "features": 32},
                         targets=["speed"], window=args.window, batch_size=8, epochs=args.epochs,
                         patience=args.epochs, lr=args.lr, seed=seed, threads=args.threads, device=args.device)
    run = train(config, overwrite=True)  # the study owns its OUT
    model = load_model(run / "best")
    health = diagnose(model, cache.by_name(read_run(run)["split"]["val"]), args.window)
    found = {"gap": gap, "cell": cell, "seed": seed, **scores(model, tests, gap),
             "effective_memory": health["effective_memory"], "decay": health["decay"]}
    print(f"L={gap} {cell} seed {seed}: effective memory {found['effective_memory']}, speed RMSE seen "
          f"{found['seen_rmse']:.2f} lost {found['lost_rmse']:.2f} (training mean {found['baseline_rmse']:.2f})")
    return found


def study(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    found = {"settings": vars(args), "versions": versions(), "data_hashes": {}, "runs": []}
    for gap in (int(g) for g in args.gaps.split(",")):
        cache, tests = caches(out, gap, args)
        found["data_hashes"][str(gap)] = {**cache.hashes(), **tests.hashes()}
        for cell in args.cells.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                found["runs"].append(one_run(out, gap, cell, seed, cache, tests, args))
                write_json(out / "study.json", found)  # after every run: a study cut short keeps what it found
                plot(found["runs"], Path(args.plot))
    return found


def _band(ax, x, values: np.ndarray, colour: str, label: str) -> None:
    """Mean over seeds (rows) with a band from the least to the most."""
    ax.plot(x, np.nanmean(values, 0), color=colour, marker=".", label=label)
    ax.fill_between(x, np.nanmin(values, 0), np.nanmax(values, 0), color=colour, alpha=0.2)


def plot(runs: list[dict], path: Path) -> None:
    """Lost frames' error and effective memory by L; at the longest L, the error by k and the decay curves."""
    fig, (by_gap, memory_by_gap, by_k, decay) = plt.subplots(1, 4, figsize=(19, 3.8))
    gaps, longest = sorted({r["gap"] for r in runs}), max(r["gap"] for r in runs)
    for cell, colour in COLOURS.items():
        mine = [r for r in runs if r["cell"] == cell]
        if not mine:
            continue
        seeds = sorted({r["seed"] for r in mine})
        for ax, key in ((by_gap, "lost_rmse"), (memory_by_gap, "effective_memory")):
            value = {(r["gap"], r["seed"]): r[key] for r in mine}  # a study under way has holes: NaN
            _band(ax, gaps, np.array([[value.get((g, s), np.nan) for g in gaps] for s in seeds], float), colour, cell)
        at_longest = [r for r in mine if r["gap"] == longest]
        if not at_longest:
            continue
        memory = [r["effective_memory"] for r in at_longest]
        rmse = np.array([[np.nan if v is None or n < MIN_FRAMES else v
                          for v, n in zip(r["rmse_by_k"], r["frames_by_k"])] for r in at_longest], dtype=float)
        _band(by_k, np.arange(rmse.shape[1]), rmse, colour, cell)
        curves = np.clip(np.array([r["decay"] for r in at_longest]), 1e-12, None)
        decay.semilogy(np.exp(np.log(curves).mean(0)), color=colour,
                       label=f"{cell}: effective memory {', '.join(map(str, memory))}")
    baseline = np.mean([r["baseline_rmse"] for r in runs])
    for ax in (by_gap, by_k):
        ax.axhline(baseline, color="grey", ls=":", label="training mean")
        ax.set_ylim(0, baseline * 1.1)
    memory_by_gap.plot(gaps, gaps, color="grey", ls=":", label="L")
    for ax in (by_gap, memory_by_gap):
        ax.set_xscale("log")
        ax.set_xticks(gaps, [str(g) for g in gaps])
        ax.minorticks_off()
        ax.set_xlabel("longest run of lost frames L (trained and tested)")
    by_gap.set(ylabel="speed RMSE on lost frames (m/s)", title="error through lost frames, by L")
    memory_by_gap.set(ylabel=f"effective memory (steps, of {len(runs[0]['decay'])})",
                      title="effective memory (validation), by L")
    by_k.set(xlabel=f"frames since the last one seen (k), L = {longest}", ylabel="speed RMSE (m/s), held out",
             title="error by frames unseen")
    decay.axhline(MEMORY_FRACTION, color="grey", ls=":")
    decay.set(xlabel="steps back from a window's last", ylabel="|dL/dstate| / last step's",
              title=f"gradient through time, L = {longest} (validation)")
    for ax in (by_gap, memory_by_gap, by_k, decay):
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=70)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/memory")
    p.add_argument("--plot", default="docs/memory-study.png")
    p.add_argument("--gaps", default="2,5,10,20,40", help="longest runs of lost frames L, one study each")
    p.add_argument("--lost", default="snow", choices=["snow", "black"], help="what a lost frame shows")
    p.add_argument("--shortest", type=float, default=0.0, help="shortest lost run as a fraction of L")
    p.add_argument("--drives", type=int, default=24)
    p.add_argument("--frames", type=int, default=500)
    p.add_argument("--test-drives", type=int, default=12, help="generated apart, for the scores")
    p.add_argument("--window", type=int, default=48, help="TBPTT window: longer than the longest L")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    study(p.parse_args())


if __name__ == "__main__":
    main()
