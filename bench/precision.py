"""Does bf16 cost accuracy? The demo's two models (steer/demo.py's DEMO_MODELS, on the demo's world)
trained at fp32 and at bf16 on the same drives and split, over seeds: held-out RMSE per target, per
seed and mean ± std over seeds, and the wall time of each training and evaluation (`steer train`,
then `steer evaluate`). `--models` names others: a model the demo does not train is trained as the
demo trains cnn-lstm (stateful windows of 8, 16 lanes, 3 epochs).

    .venv/bin/python bench/precision.py --out runs/precision [--seeds 0,1,2 --drives 96 --frames 200]
                                        [--models pilotnet,cnn-lstm]

Each seed generates its own world (as `steer demo --seed` does) and trains both precisions on it, so
a difference between precisions is set against the spread between seeds. The full size takes about
twice the demo's time per seed: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np

from steer.compare import model_configs
from steer.data.cache import FrameCache
from steer.demo import DEMO_MODELS
from steer.evaluate.evaluate import evaluate_run
from steer.train.loop import train
from steer.world.simulate import WorldConfig, generate_drives

PRECISIONS = ("fp32", "bf16")


def _one_seed(out: Path, seed: int, drives: int, frames: int, models: dict) -> dict[tuple[str, str], dict]:
    """Per (model, precision): held-out RMSE per target and the seconds it took, on one seed's world."""
    cache = out / f"seed-{seed}" / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    FrameCache.create(cache, generate_drives(WorldConfig(frames_per_drive=frames), drives, seed,
                                             processes=os.cpu_count() or 1))
    results = {}
    for precision in PRECISIONS:
        spec = {"common": {"cache": str(cache), "seed": seed, "precision": precision}, "models": models}
        for label, config in model_configs(spec, out / f"seed-{seed}" / precision).items():
            shutil.rmtree(config.out, ignore_errors=True)  # a run of other sizes must not be reused
            started = time.perf_counter()
            metrics = evaluate_run(train(config))
            results[label, precision] = {"rmse": {t: s["rmse"] for t, s in metrics["model"].items()},
                                         "seconds": time.perf_counter() - started}
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/precision")
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--drives", type=int, default=96)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--models", default=",".join(DEMO_MODELS))
    args = parser.parse_args()
    models = {name: DEMO_MODELS.get(name, DEMO_MODELS["cnn-lstm"]) for name in args.models.split(",")}
    runs = {seed: _one_seed(Path(args.out), seed, args.drives, args.frames, models) for seed in args.seeds}
    targets = list(next(iter(runs[args.seeds[0]].values()))["rmse"])
    print(f"\n{'model':<10}{'precision':>10}{'seed':>6}" + "".join(f"{t + ' rmse':>18}" for t in targets)
          + f"{'seconds':>10}   ({args.drives} drives of {args.frames} frames)")
    for (label, precision) in runs[args.seeds[0]]:
        rows = [runs[seed][label, precision] for seed in args.seeds]
        for seed, row in zip(args.seeds, rows):
            print(f"{label:<10}{precision:>10}{seed:>6}" + "".join(f"{row['rmse'][t]:>18.4f}" for t in targets)
                  + f"{row['seconds']:>10.0f}")
        rmse = np.array([[row["rmse"][t] for t in targets] for row in rows])
        seconds = np.array([row["seconds"] for row in rows])
        spread = rmse.std(0, ddof=1) if len(rows) > 1 else np.zeros(len(targets))  # sample std over seeds
        print(f"{label:<10}{precision:>10}{'mean':>6}" + "".join(f"{m:>11.4f} ± {s:<6.4f}" for m, s in
                                                               zip(rmse.mean(0), spread))
              + f"{seconds.mean():>10.0f}")


if __name__ == "__main__":
    main()
