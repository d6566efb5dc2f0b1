"""`steer explain` over every held-out (test) drive of a run: the causal check's ratio per drive and its
spread, into one JSON (the figure the README quotes), and each drive's outputs under OUT/<drive>/.

    python examples/causal_check.py --run runs/demo/cnn-lstm --out runs/demo/cnn-lstm/explain
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from steer.data.cache import FrameCache
from steer.durable import write_json
from steer.evaluate.explain import explain_drive
from steer.models import load_model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fraction", type=float, default=0.05)
    args = p.parse_args()
    run, out = Path(args.run), Path(args.out)
    info = json.loads((run / "run.json").read_text())
    cache, model = FrameCache(info["config"]["cache"]), load_model(run / "best")
    found = {d.name: explain_drive(model, d, out / d.name, fraction=args.fraction)
             for d in cache.by_name(info["split"]["test"])}
    summary = {}
    for target in model.targets:
        ratios = np.array([f["causal_check"]["targets"][target]["ratio"] for f in found.values()])
        salient = np.mean([f["causal_check"]["targets"][target]["salient"] for f in found.values()])
        random = np.mean([f["causal_check"]["targets"][target]["random"] for f in found.values()])
        summary[target] = {"ratio_of_means": float(salient / random), "ratio_median": float(np.median(ratios)),
                           "ratio_min": float(ratios.min()), "ratio_max": float(ratios.max()),
                           "drives_above_1": int((ratios > 1).sum()), "drives": len(ratios)}
        print(f"{target}: salient/random {salient / random:.2f}x over {len(ratios)} drives (median "
              f"{np.median(ratios):.2f}, {ratios.min():.2f} to {ratios.max():.2f}; {(ratios > 1).sum()} above 1)")
    write_json(out / "causal.json", {"run": str(run), "fraction": args.fraction, "summary": summary,
                                     "drives": {k: v["causal_check"] for k, v in found.items()},
                                     "time": {k: v["attribution_over_time"] for k, v in found.items()}})


if __name__ == "__main__":
    main()
