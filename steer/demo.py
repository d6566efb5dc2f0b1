"""The main job on the embedded synthetic world: generate drives, train a single-frame and a temporal
model on the same split, evaluate both on held-out drives beside the baselines, and compare."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from steer.data.cache import FrameCache
from steer.evaluate.evaluate import evaluate_run
from steer.train.config import TrainConfig
from steer.train.loop import train
from steer.world.simulate import WorldConfig, generate_drives

# PilotNet has no memory, so it learns from shuffled single frames. The recurrent model learns with
# truncated backpropagation through time: 16 lanes walk the drives in windows of 8 frames, the state
# carried from each window to the next.
DEMO_MODELS = {
    "pilotnet": {"stateful": False, "window": 1, "stride": 1, "batch_size": 32, "epochs": 6},
    "cnn-lstm": {"stateful": True, "window": 8, "batch_size": 16, "epochs": 5},
}


def comparison_table(summary: dict[str, dict]) -> str:
    """One row per model and baseline, RMSE and MAE per target."""
    targets = list(next(iter(summary.values()))["model"])
    head = f"{'':<20}" + "".join(f"{t + ' rmse':>16}{t + ' mae':>16}" for t in targets)
    lines = [head]
    first = next(iter(summary.values()))
    rows = [(name, m["model"]) for name, m in summary.items()]
    rows += [("baseline: zero", first["zero"]), ("baseline: train mean", first["mean"])]
    for name, scores in rows:
        lines.append(f"{name:<20}" + "".join(f"{scores[t]['rmse']:>16.4f}{scores[t]['mae']:>16.4f}"
                                             for t in targets))
    return "\n".join(lines)


def run_demo(out: str | Path, drives: int = 96, frames: int = 200, epochs: int | None = None, seed: int = 0,
             world: WorldConfig | None = None) -> dict[str, dict]:
    """Returns, per model, its metrics.json; `epochs` overrides each model's own count."""
    out = Path(out)
    started = time.perf_counter()
    world = world or WorldConfig(frames_per_drive=frames)
    cache_dir = out / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)  # a cache left by other settings must not leak in
    print(f"generating {drives} synthetic drives of {world.frames_per_drive} frames into {cache_dir}")
    FrameCache.create(cache_dir, generate_drives(world, drives, seed, processes=os.cpu_count() or 1))
    summary = {}
    for name, options in DEMO_MODELS.items():
        print(f"training {name}")
        options = {**options, **({"epochs": epochs} if epochs else {})}
        config = TrainConfig(cache=str(cache_dir), out=str(out / name), model=name, patience=options["epochs"],
                             seed=seed, **options)
        train(config)
        summary[name] = evaluate_run(out / name)
    table = comparison_table(summary)
    print(f"\nheld-out drives: {', '.join(summary['pilotnet']['drives'])}\n{table}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {out / 'summary.json'} in {(time.perf_counter() - started) / 60:.1f} min")
    return summary
