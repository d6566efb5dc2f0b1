"""The closed-loop study of issue 13: pilotnet and cnn-lstm with the demo's settings, trained once per seed on
the demo's world with and without recovery views, each seed's best checkpoint driving held-out roads beside
the world's driver and a straight wheel. Autonomy and open-loop RMSE as mean +- std over seeds.

    python examples/closed_loop_study.py --out runs/study [--device cuda --processes 16]

Full size (the defaults: 96 drives of 200 frames, seeds 0,1,2, 10 roads of 60 s, views at 0 and 0.2) is an
hour or more on 2 CPU cores; `--drives 8 --frames 40 --epochs 1 --seeds 0,1 --roads 1 --seconds 2` checks
the path in about a minute. Writes OUT/views-<rate>/seeds.json (and open_vs_closed.png) per rate and
OUT/study.json; prints one table per rate.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from steer.compare import add_autonomy, compare_seeds, seeds_table
from steer.data.cache import FrameCache, write_json
from steer.demo import DEMO_MODELS
from steer.evaluate.plots import open_vs_closed
from steer.world.recovery import RecoveryParams
from steer.world.simulate import WorldConfig, generate_drives


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--views", default="0,0.2", help="recovery-view rates to train with (0: none)")
    p.add_argument("--drives", type=int, default=96)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, help="for every model (default: the demo's own)")
    p.add_argument("--roads", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads per training (0: all cores)")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    out, seeds, study = Path(args.out), [int(s) for s in args.seeds.split(",")], {}
    overrides = {"device": args.device, "threads": args.threads}
    if args.epochs:
        overrides.update(epochs=args.epochs, patience=args.epochs)
    for rate in [float(r) for r in args.views.split(",")]:
        folder = out / f"views-{rate:g}"
        cache = folder / "cache"
        if not (cache / "manifest.json").exists():  # the world draws the same roads at every rate (seed 0)
            world = WorldConfig(frames_per_drive=args.frames, recovery=RecoveryParams(rate=rate))
            FrameCache.create(cache, generate_drives(world, args.drives, 0, args.processes))
        spec = {"common": {"cache": str(cache)}, "models": DEMO_MODELS}
        result = compare_seeds(spec, folder, seeds, overrides=overrides)
        add_autonomy(result, args.roads, args.seconds, 1000, args.processes)
        open_vs_closed(folder / "open_vs_closed.png", result)
        write_json(folder / "seeds.json", result)
        study[f"views {rate:g}"] = result
        print(f"\nrecovery views at {rate:g}:\n{seeds_table(result)}", flush=True)
    write_json(out / "study.json", study)


if __name__ == "__main__":
    main()
