"""The demo's recipe over seeds: `steer demo` once per seed, then every checkpoint it kept (each model
before and after its DAgger round) on 10 validation roads of 60 s (world seed 3000: what the recipe is
chosen on) and on 10 held-out roads of 60 s (seed 1000: what is reported), with the world driver's speed
and with the model's own. Prints autonomy mean ± std over seeds and per seed, beside the held-out
steering RMSE; writes OUT/seeds.json.

    python examples/demo_seeds.py --out runs/demo-seeds --seeds 0,1,2

A seed's folder that holds a finished demo (summary.json) is reused. `--drives 4 --frames 24 --epochs 1
--roads 1 --seconds 2 --dagger-roads 1` checks the path in a few minutes.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from steer.compare import mean_std, spread
from steer.demo import DEMO_MODELS, run_demo
from steer.drive import closed_loop as cl
from steer.durable import write_json
from steer.provenance import machine, versions
from steer.workers import shared_pool

ROWS = [label for model in DEMO_MODELS for label in (model, f"{model} + dagger")]
ROADS = {"validation": cl.VALIDATION_SEED, "held-out": cl.HELD_OUT_SEED}


def demo(out: Path, seed: int, args: argparse.Namespace) -> dict:
    """The seed's demo summary, run unless it is there."""
    done = out / "summary.json"
    if not done.exists():
        run_demo(out, drives=args.drives, frames=args.frames, epochs=args.epochs, seed=seed,
                 dagger={"roads": args.dagger_roads})  # its own closed loop: the demo's 4 roads of 30 s
    return json.loads(done.read_text())


def drive(checkpoints: dict[tuple[int, str], str], args: argparse.Namespace) -> dict:
    """Autonomy % of every checkpoint per road family and speed, keyed as `checkpoints`; the references'."""
    found, references = {}, {}
    for family, seed in ROADS.items():
        speeds = ("driver", "model") if family == "held-out" else ("driver",)
        print(f"driving {len(checkpoints)} checkpoints on {args.roads} {family} roads of {args.seconds:g} s "
              f"(world seed {seed}), speeds: {', '.join(speeds)}", flush=True)
        at_speeds = cl.autonomy_at_speeds(list(checkpoints.values()), args.roads, args.seconds, seed, args.processes,
                                          speeds)
        for speed, scores in at_speeds.items():
            for key, checkpoint in checkpoints.items():
                found.setdefault(key, {})[f"{family} {speed}"] = scores["checkpoints"][checkpoint]["autonomy_pct"]
            references[f"{family} {speed}"] = {n: s["autonomy_pct"] for n, s in scores["references"].items()}
    return {"autonomy": found, "references": references}


def table(rows: dict[str, dict]) -> str:
    columns = list(next(iter(rows.values()))["autonomy"])
    lines = [f"{'':<20}" + "".join(f"{c:>28}" for c in columns) + f"{'steering rmse':>26}"]
    for label, row in rows.items():
        cells = [f"{mean_std(row['autonomy'][c])} ({', '.join(f'{v:.0f}' for v in row['autonomy'][c]['per_seed'])})"
                 for c in columns]
        lines.append(f"{label:<20}" + "".join(f"{c:>28}" for c in cells) + f"{mean_std(row['steering_rmse']):>26}")
    return "\n".join(lines)


def main() -> None:
    args = parse()
    out, seeds = Path(args.out), [int(s) for s in args.seeds.split(",")]
    with shared_pool(args.processes, "spawn"):  # one start of workers for every seed's demo and the roads
        summaries = {seed: demo(out / f"seed-{seed}", seed, args) for seed in seeds}
        checkpoints = {(seed, label): summaries[seed][label]["checkpoint"] for seed in seeds for label in ROWS}
        driven = drive(checkpoints, args)
    rows = {label: {"autonomy": {c: spread([driven["autonomy"][(s, label)][c] for s in seeds])
                                 for c in driven["autonomy"][(seeds[0], label)]},
                    "steering_rmse": spread([summaries[s][label]["model"]["steering"]["rmse"] for s in seeds])}
            for label in ROWS}
    print(f"\nautonomy % over seeds {args.seeds} (per seed in brackets), references {driven['references']}\n"
          + table(rows))
    write_json(out / "seeds.json", {"seeds": seeds, "rows": rows, "references": driven["references"],
                                    "roads": {"count": args.roads, "seconds": args.seconds, "seeds": ROADS},
                                    "stages_s": {s: summaries[s]["stages_s"] for s in seeds},
                                    "machine": machine({}), "versions": versions()})


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo-seeds")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--drives", type=int, default=96)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--epochs", type=int)
    p.add_argument("--roads", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--dagger-roads", type=int, default=20)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    return p.parse_args()


if __name__ == "__main__":
    main()
