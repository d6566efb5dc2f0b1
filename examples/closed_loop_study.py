"""The closed-loop ablation of the models-that-drive issue: pilotnet and cnn-lstm with the demo's settings,
trained once per seed under each recipe, each ingredient added in turn (the labels of today, the driver's
meant command as the label, DART noise on the wheel in force, DAgger rounds, recovery runs, the checkpoint
chosen by autonomy on validation roads), each seed's final checkpoint driving held-out roads beside the
world's driver and a straight wheel. Autonomy and open-loop RMSE as mean +- std over seeds.

    python examples/closed_loop_study.py --out runs/study [--device cuda --processes 16]

Settings are the recipes' own, chosen before the study and not tuned on its roads (DART 0.1 rad with a
0.5 s correlation time; one DAgger round of 20 roads of 20 s at beta 0.5, fine-tuned for 2 epochs;
recovery runs at 0.01 a frame; selection on 4 validation roads of 20 s). `--drives 8 --frames 40
--epochs 1 --seeds 0,1 --roads 1 --seconds 2 --dagger-roads 1` checks the path in a few minutes. Writes
OUT/<recipe>/seeds.json per recipe and OUT/study.json; prints one table per recipe and the ablation.
"""
from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import replace
from pathlib import Path

from steer.compare import add_autonomy, compare, model_configs, seeds_table, spread
from steer.data.cache import FrameCache
from steer.demo import DEMO_MODELS
from steer.drive.dagger import DaggerConfig, dagger
from steer.durable import write_json
from steer.provenance import versions
from steer.world.simulate import WorldConfig, generate_drives

# Each recipe adds one ingredient to the one before: its world (driver and recovery settings), training
# options for every model, and whether DAgger rounds follow.
DART = {"driver": {"dart_rad": 0.1, "dart_tau_s": 0.5}}
RECIPES = {
    "noisy labels": {"world": {}, "train": {"meant": ["none"]}, "dagger": False},
    "clean labels": {"world": {}, "train": {}, "dagger": False},
    "+ DART": {"world": DART, "train": {}, "dagger": False},
    "+ DAgger": {"world": DART, "train": {}, "dagger": True},
    "+ recovery runs": {"world": {**DART, "recovery": {"run_rate": 0.01}}, "train": {}, "dagger": True},
    "+ select autonomy": {"world": {**DART, "recovery": {"run_rate": 0.01}}, "train": {"select": "autonomy"},
                          "dagger": True},
}


def world_of(recipe: dict, frames: int) -> WorldConfig:
    base = WorldConfig(frames_per_drive=frames)
    parts = {key: replace(getattr(base, key), **values) for key, values in recipe["world"].items()}
    return replace(base, **parts)


def cache_for(out: Path, recipe: dict, args: argparse.Namespace) -> Path:
    """The recipe's world cache (one per world, shared by the recipes with that world: the same roads)."""
    world = world_of(recipe, args.frames)
    key = "world-" + (("-".join(f"{k}" for k in recipe["world"])) or "plain")
    cache = out / "caches" / key
    if not (cache / "manifest.json").exists():
        FrameCache.create(cache, generate_drives(world, args.drives, 0, args.processes))
    return cache


def seed_cache(cache: Path, folder: Path) -> Path:
    """A copy of the cache for one seed's DAgger rounds (they add drives), its frame files hard-linked."""
    copy = folder / "cache"
    if not (copy / "manifest.json").exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(cache, copy, copy_function=os.link, ignore=shutil.ignore_patterns(".lock", ".staging"))
    return copy


def run_recipe(name: str, recipe: dict, out: Path, args: argparse.Namespace, extras: bool) -> dict:
    """Every seed's runs of the recipe, then each model's RMSE and autonomy over seeds (with `extras`, also
    with the model's own speed and with 20% of the frames dropped, as asked)."""
    folder, cache = out / name.replace(" ", "-").replace("+-", "with-"), cache_for(out, recipe, args)
    overrides = {"device": args.device, "threads": args.threads, **recipe["train"]}
    if args.epochs:
        overrides.update(epochs=args.epochs, patience=args.epochs)
    runs: dict[str, list[str]] = {}
    rmse: dict[str, dict[str, list[float]]] = {}
    for seed in args.seeds:
        here = folder / f"seed-{seed}"
        spec = {"common": {"cache": str(seed_cache(cache, here) if recipe["dagger"] else cache), "seed": seed},
                "models": DEMO_MODELS}
        result = compare(model_configs(spec, here, overrides=overrides), here)
        for label, entry in result["models"].items():
            run = Path(entry["run"])
            if recipe["dagger"]:
                rounds = dagger(run, here / f"{label}-dagger", DaggerConfig(
                    rounds=args.dagger_rounds, roads=args.dagger_roads, seconds=args.dagger_seconds, epochs=2,
                    processes=args.processes))["rounds"]
                run = Path(rounds[-1]["checkpoint"]).parent
            runs.setdefault(label, []).append(str(run))
            metrics = entry["metrics"]["model"]  # open-loop RMSE of the run before DAgger's rounds
            for target, found in metrics.items():
                rmse.setdefault(label, {}).setdefault(target, []).append(found["rmse"])
    targets = list(next(iter(rmse.values())))
    study = {"seeds": args.seeds, "targets": targets, "runs": runs, "recipe": recipe,
             "models": {label: {t: spread(v) for t, v in per.items()} for label, per in rmse.items()},
             "baselines": {}}
    add_autonomy(study, args.roads, args.seconds, 1000, args.processes)
    if extras and args.speed_model:
        add_autonomy(study, args.roads, args.seconds, 1000, args.processes, speed="model", key="autonomy_speed")
    if extras and args.dropped:
        add_autonomy(study, args.roads, args.seconds, 1000, args.processes, key="autonomy_dropped_20",
                     drop_rate=0.2)
    write_json(folder / "seeds.json", study)
    print(f"\n{name}:\n{seeds_table(study)}", flush=True)
    return study


def ablation(study: dict) -> str:
    """One line per recipe and model: autonomy mean +- std (and per seed), lateral and with the model's speed."""
    lines = [f"{'recipe':<20}{'model':<10}{'autonomy %':>16}{'per seed':>22}{'--speed model':>16}"
             f"{'20% dropped':>14}{'steering rmse':>16}"]
    for recipe, result in study.items():
        for label, row in result["models"].items():
            a = row["autonomy"]
            extra = [f"{row[k]['mean']:.1f} +- {row[k]['std']:.1f}" if k in row else "" for k in
                     ("autonomy_speed", "autonomy_dropped_20")]
            lines.append(f"{recipe:<20}{label:<10}{a['mean']:>9.1f} +- {a['std']:<4.1f}"
                         f"{', '.join(f'{v:.1f}' for v in a['per_seed']):>22}{extra[0]:>16}{extra[1]:>14}"
                         f"{row['steering']['mean']:>10.4f} +- {row['steering']['std']:.4f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated, of: " + ", ".join(RECIPES))
    p.add_argument("--drives", type=int, default=96)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    p.add_argument("--epochs", type=int, help="for every model (default: the demo's own)")
    p.add_argument("--roads", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--speed-model", action="store_true", help="the last recipe also with the model's own speed")
    p.add_argument("--dropped", action="store_true", help="the last recipe also with 20%% of the frames dropped")
    p.add_argument("--dagger-rounds", type=int, default=1)
    p.add_argument("--dagger-roads", type=int, default=20)
    p.add_argument("--dagger-seconds", type=float, default=20.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads per training (0: all cores)")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    out, study = Path(args.out), {}
    names = args.recipes.split(",")
    for name in names:
        study[name] = run_recipe(name, RECIPES[name], out, args, extras=name == names[-1])
        write_json(out / "study.json", {"recipes": study, "args": vars(args), "versions": versions()})
    print(f"\n{ablation(study)}")


if __name__ == "__main__":
    main()
