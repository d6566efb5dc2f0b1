"""The augmentation study (docs/results/augmentation.md): pilotnet and cnn-lstm of examples/real.json on three
shared real recordings, split by time, over 3 seeds, without --augment and with three augmentations: the
defaults, the defaults without the flip, and without the flip and the shift (nothing that moves a target).
Which of the three counts is chosen per recording and model on
validation alone (the lowest mean validation steering RMSE of the kept checkpoints); the test figures of the
others are printed beside it, never used to choose.

    python examples/augment_study.py [--shared ../shared/data] [--out runs/aug] [--threads 1]

A comparison that wrote its seeds.json is read, not run again; runs already in OUT of the same settings
are reused (steer compare's rule). The same as, per recording and variant,

    steer compare --cache OUT/<recording> --out OUT/<variant>/<recording> --config examples/real.json \
        --models pilotnet,cnn-lstm --targets steering,throttle --seeds 0,1,2 --threads 1 [--augment \
        [--augment-strengths '{"flip": 0}' | '{"flip": 0, "shift": 0}']]

(`--targets steering` for deeppicar, which records no throttle)."""
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
            "noflip": {"augment": True, "augment_strengths": {"flip": 0}},
            "nomove": {"augment": True, "augment_strengths": {"flip": 0, "shift": 0}}}
AUGMENTED = [v for v in VARIANTS if v != "off"]
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
        found[name] = {variant: seeds(out / variant / name, {"cache": str(cache), "targets": targets,
                                                               "threads": threads, **extra})
                       for variant, extra in VARIANTS.items()}
    return found


def seeds(out: Path, overrides: dict) -> dict:
    """`steer compare --seeds` of the models into `out`, or its seeds.json where it ran already."""
    if not (out / "seeds.json").exists():
        write_json(out / "seeds.json", compare_seeds(SPEC, out, SEEDS, MODELS, overrides))
    return json.loads((out / "seeds.json").read_text())


def validation_mean(by_variant: dict, variant: str, model: str) -> float:
    return float(np.mean([validation_steering(r) for r in by_variant[variant]["runs"][model]]))


def chosen(by_variant: dict, model: str) -> str:
    """The augmentation of lowest mean validation steering RMSE over seeds."""
    return min(AUGMENTED, key=lambda v: validation_mean(by_variant, v, model))


def choice_table(found: dict) -> str:
    """What chose: the mean over seeds of each variant's validation steering RMSE."""
    lines = ["| recording | model | " + " | ".join(VARIANTS) + " |", "|---|---|" + "---|" * len(VARIANTS)]
    for name, by_variant in found.items():
        for model in MODELS:
            lines.append(f"| {name} | {model} | "
                         + " | ".join(f"{validation_mean(by_variant, v, model):.4f}" for v in VARIANTS) + " |")
    return "\n".join(lines)


def table(found: dict) -> str:
    lines = ["| recording | target | model | without | with (chosen on validation) | "
             + " | ".join(AUGMENTED) + " | zero | train mean | lower by more than the spread |",
             "|---|---|---|---|---|" + "---|" * len(AUGMENTED) + "---|---|---|"]
    pm = lambda s: f"{s['mean']:.4f} ± {s['std']:.4f}"  # noqa: E731
    for name, by_variant in found.items():
        off = by_variant["off"]
        for target in off["targets"]:
            for model in MODELS:
                pick = chosen(by_variant, model)
                without, with_ = off["models"][model][target], by_variant[pick]["models"][model][target]
                lower = without["mean"] - with_["mean"] > max(without["std"], with_["std"])
                lines.append(f"| {name} | {target} | {model} | {pm(without)} | **{pm(with_)}** ({pick}) | "
                             + "".join(f"{pm(by_variant[v]['models'][model][target])} | " for v in AUGMENTED)
                             + f"{off['baselines']['zero'][target]['mean']:.4f} | "
                             + f"{off['baselines']['mean'][target]['mean']:.4f} | {'yes' if lower else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("runs/aug"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    found = study(args.shared, args.out.resolve(), args.threads)
    print(f"held-out RMSE, mean ± std over seeds {','.join(map(str, SEEDS))}\n{table(found)}\n\n"
          f"validation steering RMSE (kept checkpoints), mean over seeds\n{choice_table(found)}")


if __name__ == "__main__":
    main()
