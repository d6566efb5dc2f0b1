"""The augmentation study (docs/results/augmentation.md): pilotnet and cnn-lstm of examples/real.json on three
shared real recordings, split by time, over 3 seeds, without --augment and with two augmentations: the
defaults, and the defaults without the flip. Which of the two counts is chosen per recording and model on
validation alone (the lower mean validation steering RMSE of the kept checkpoints); the test figures of the
other are printed beside it, never used to choose.

    python examples/augment_study.py [--shared ../shared/data] [--out runs/aug] [--threads 1]

Runs already in OUT of the same settings are reused (steer compare's rule), so the tables can be printed
again without training."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from steer.cli import main as steer
from steer.compare import compare_seeds
from steer.durable import write_json

SETS = {"donkey-track": ("donkey/track", ["steering", "throttle"]),
        "donkey-garage": ("donkey/garage", ["steering", "throttle"]),
        "deeppicar-kucsl-Apr2022": ("deeppicar/kucsl-Apr2022", ["steering"])}
VARIANTS = {"off": {}, "default": {"augment": True},
            "noflip": {"augment": True, "augment_strengths": {"flip": 0}}}
SEEDS, MODELS = [0, 1, 2], ["pilotnet", "cnn-lstm"]
SPEC = json.loads((Path(__file__).parent / "real.json").read_text())


def validation_steering(run: str) -> float:
    """Validation steering RMSE of the kept checkpoint: the epoch of lowest validation loss."""
    history = json.loads((Path(run) / "history.json").read_text())
    return min(history, key=lambda h: h["val_loss"])["val_rmse_steering"]


def study(shared: Path, out: Path, threads: int) -> dict:
    found = {}
    for name, (source, targets) in SETS.items():
        cache = out / name
        if not (cache / "manifest.json").exists():
            steer(["import", str(shared / source), "--out", str(cache), "--processes", "1"])
        found[name] = {variant: compare_seeds(SPEC, out / variant / name, SEEDS, MODELS,
                                              {"cache": str(cache), "targets": targets, "threads": threads, **extra})
                       for variant, extra in VARIANTS.items()}
    return found


def chosen(by_variant: dict, model: str) -> str:
    """The augmentation of lower mean validation steering RMSE over seeds."""
    return min(("default", "noflip"),
               key=lambda v: np.mean([validation_steering(r) for r in by_variant[v]["runs"][model]]))


def table(found: dict) -> str:
    lines = ["| recording | target | model | without | with (chosen on validation) | the other | zero | train mean "
             "| lower by more than the spread |", "|---|---|---|---|---|---|---|---|---|"]
    pm = lambda s: f"{s['mean']:.4f} ± {s['std']:.4f}"  # noqa: E731
    for name, by_variant in found.items():
        off = by_variant["off"]
        for target in off["targets"]:
            for model in MODELS:
                pick = chosen(by_variant, model)
                other = "noflip" if pick == "default" else "default"
                without, with_ = off["models"][model][target], by_variant[pick]["models"][model][target]
                lower = without["mean"] - with_["mean"] > max(without["std"], with_["std"])
                lines.append(f"| {name} | {target} | {model} | {pm(without)} | {pm(with_)} ({pick}) | "
                             f"{pm(by_variant[other]['models'][model][target])} ({other}) | "
                             f"{off['baselines']['zero'][target]['mean']:.4f} | "
                             f"{off['baselines']['mean'][target]['mean']:.4f} | {'yes' if lower else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("runs/aug"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    found = study(args.shared, args.out.resolve(), args.threads)
    write_json(args.out / "study.json", found)
    print(table(found))


if __name__ == "__main__":
    main()
