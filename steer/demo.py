"""The main job on the embedded synthetic world: generate drives, then compare a single-frame and a
temporal model trained on the same split, on held-out drives beside the baselines."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from steer.compare import compare, model_configs, result_table
from steer.data.cache import FrameCache, write_json
from steer.world.simulate import WorldConfig, generate_drives

# PilotNet has no memory, so it learns from shuffled single frames. The recurrent model learns with
# truncated backpropagation through time: 16 lanes walk the drives in windows of 8 frames, the state
# carried from each window to the next. Each trains all its epochs (patience = epochs).
DEMO_MODELS = {
    "pilotnet": {"stateful": False, "window": 1, "stride": 1, "batch_size": 32, "epochs": 6, "patience": 6},
    "cnn-lstm": {"stateful": True, "window": 8, "batch_size": 16, "epochs": 5, "patience": 5},
}


def run_demo(out: str | Path, drives: int = 96, frames: int = 200, epochs: int | None = None, seed: int = 0,
             world: WorldConfig | None = None) -> dict[str, dict]:
    """Returns, per model, its metrics.json; `epochs` overrides each model's own count."""
    out = Path(out)
    started = time.perf_counter()
    world = world or WorldConfig(frames_per_drive=frames)
    cache_dir = out / "cache"
    for left in [cache_dir, *(out / name for name in DEMO_MODELS)]:
        shutil.rmtree(left, ignore_errors=True)  # a cache or runs left by other settings must not leak in
    print(f"generating {drives} synthetic drives of {world.frames_per_drive} frames into {cache_dir}")
    FrameCache.create(cache_dir, generate_drives(world, drives, seed, processes=os.cpu_count() or 1))
    spec = {"common": {"cache": str(cache_dir), "seed": seed}, "models": DEMO_MODELS}
    result = compare(model_configs(spec, out, overrides={"epochs": epochs, "patience": epochs} if epochs else {}),
                     out)
    summary = {label: entry["metrics"] for label, entry in result["models"].items()}
    print(f"\nheld-out drives: {', '.join(result['test']['drives'])}\n{result_table(result)}")
    write_json(out / "summary.json", summary)
    minutes = (time.perf_counter() - started) / 60
    print(f"\nwrote {out / 'summary.json'} and {out / 'compare.json'} in {minutes:.1f} min")
    return summary
