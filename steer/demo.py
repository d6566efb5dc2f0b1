"""The main job on the embedded synthetic world: generate drives, then compare a single-frame and a
temporal model trained on the same split, on held-out drives beside the baselines."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from steer.compare import check_comparable, compare, entry_of, model_configs, result_table
from steer.data.cache import FrameCache
from steer.drive import closed_loop as cl
from steer.drive.dagger import DaggerConfig, dagger
from steer.drive.pilot import Pilot
from steer.durable import write_json
from steer.evaluate.evaluate import evaluate_run, overlay_path
from steer.evaluate.report import CLOSED_LOOP, write_report
from steer.evaluate.video import write_closed_loop
from steer.provenance import machine, machine_line
from steer.train.checkpoint import read_run
from steer.workers import CORES, shared_pool
from steer.world.simulate import WorldConfig, generate_drives

# Closed loop after the open-loop table: roads of world seed 1000 (no demo drive's), the loop's defaults.
LOOP_ROADS, LOOP_SECONDS, LOOP_SEED = 4, 30.0, 1000

# PilotNet has no memory, so it learns from shuffled single frames. The recurrent model learns with
# truncated backpropagation through time: 16 lanes walk the drives in windows of 8 frames, the state
# carried from each window to the next. Each trains all its epochs (patience = epochs) and keeps the
# epoch of lowest validation steering loss: summed over targets, speed (which one frame cannot show)
# would pick the checkpoint.
DEMO_MODELS = {
    "pilotnet": {"stateful": False, "window": 1, "stride": 1, "batch_size": 32, "epochs": 3, "patience": 3,
                 "select_weights": {"steering": 1}},
    "cnn-lstm": {"stateful": True, "window": 8, "batch_size": 16, "epochs": 3, "patience": 3,
                 "select_weights": {"steering": 1}},
}
# Then each model drives one DAgger round (steer/drive/dagger.py) on roads of its own seed family, none a
# held-out or validation road, the expert labelling the states its own driving reached, and is fine-tuned
# on all the data for 1 epoch at a third of the first training's learning rate (at the same rate one epoch
# undid cnn-lstm's round); the round is kept where it drives the validation roads at least as well as the
# model before it. Chosen on the validation roads over 3 seeds against 4 epochs and 2 fine-tuning epochs at
# the full rate, a minute slower (docs/results/demo.md).
DEMO_DAGGER = {"rounds": 1, "roads": 20, "seconds": 20.0, "epochs": 1, "lr": 3e-4, "val_roads": 4,
               "val_seconds": 20.0}


@shared_pool(CORES, "spawn")  # the world, both DAgger rounds and the closed loop: one start of workers
def run_demo(out: str | Path, drives: int = 96, frames: int = 200, epochs: int | None = None, seed: int = 0,
             world: WorldConfig | None = None, loop_roads: int = LOOP_ROADS, loop_seconds: float = LOOP_SECONDS,
             dagger: dict | None = None) -> dict[str, dict]:
    """Returns, per model (and per model after its DAgger rounds, labelled `<model> + dagger`), its
    metrics.json, under `closed_loop` every driver's scores on `loop_roads` held-out roads of
    `loop_seconds`, and under `stages_s` the seconds each stage took; `epochs` overrides each model's own
    count; `dagger` overrides DEMO_DAGGER's settings (DaggerConfig's fields), rounds 0 leaving DAgger out."""
    out, clock = Path(out), Stopwatch()
    world = world or WorldConfig(frames_per_drive=frames)
    cache_dir = out / "cache"
    for left in [cache_dir, *(out / name for name in DEMO_MODELS), *(out / f"{name}-dagger" for name in DEMO_MODELS)]:
        shutil.rmtree(left, ignore_errors=True)  # a cache or runs left by other settings must not leak in
    print(f"generating {drives} synthetic drives of {world.frames_per_drive} frames into {cache_dir}")
    FrameCache.create(cache_dir, generate_drives(world, drives, seed, processes=CORES))
    clock.lap("world")
    spec = {"common": {"cache": str(cache_dir), "seed": seed}, "models": DEMO_MODELS}
    result = compare(model_configs(spec, out, overrides={"epochs": epochs, "patience": epochs} if epochs else {}),
                     out, lap=clock.lap)
    rounds = {**DEMO_DAGGER, **(dagger or {})}
    if rounds["rounds"]:
        result["models"] |= taught(result, out, DaggerConfig(**rounds), clock)
        write_json(out / "compare.json", result)  # compare() wrote it before the DAgger rounds
    summary = {label: entry["metrics"] for label, entry in result["models"].items()}
    where = machine({label: metrics["precision"] for label, metrics in summary.items()})
    print(f"\nheld-out drives: {', '.join(result['test']['drives'])}\n{result_table(result)}\n{machine_line(where)}")
    summary["closed_loop"], summary["closed_loop_speed_model"] = drive_in_the_loop(result, loop_roads, loop_seconds)
    clock.lap("closed loop")
    summary["machine"] = where  # bf16 figures differ between CPUs: say which one made these
    summary["stages_s"] = clock.laps
    write_json(out / "summary.json", summary)
    print(f"\nwrote {out / 'summary.json'} and {out / 'compare.json'} in {clock.total() / 60:.1f} min ("
          + ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in clock.laps.items()) + ")")
    return summary


class Stopwatch:
    """Seconds per named stage, each from the end of the one before."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage], self.last = now - self.last, now

    def total(self) -> float:
        return time.perf_counter() - self.started


def taught(result: dict, out: Path, config: DaggerConfig, clock: Stopwatch) -> dict[str, dict]:
    """Each model of a compare() result after `config.rounds` DAgger rounds into OUT/<label>-dagger, scored
    on the same held-out drives: entries labelled `<label> + dagger`."""
    entries = {}
    for label, entry in list(result["models"].items()):
        print(f"\n{label}: {config.rounds} DAgger round(s) of {config.roads} roads of {config.seconds:g} s into "
              f"{out / f'{label}-dagger'}, fine-tuned {config.epochs} epoch(s) each")
        found = dagger(entry["run"], out / f"{label}-dagger", config)
        if found["best_round"] == 0:  # its rounds drove worse on the validation roads: the run as it was
            entries[f"{label} + dagger"] = entry
        else:
            run = Path(found["rounds"][found["best_round"]]["checkpoint"]).parent
            entries[f"{label} + dagger"] = entry_of(run, evaluate_run(run))
        clock.lap(f"{label} dagger")
    check_comparable({**result["models"], **entries})
    return entries


def drive_in_the_loop(result: dict, roads: int = LOOP_ROADS,
                      seconds: float = LOOP_SECONDS) -> tuple[dict[str, dict], dict[str, dict]]:
    """Every model of a compare() result and the reference drivers on held-out roads in closed loop, with
    the world driver's speed and then with each model's own: print both tables, and put the first with a
    video of the most autonomous model on its first road into that model's report. Returns the overall
    scores per driver, lateral and with the model's speed."""
    checkpoints = {label: str(Path(e["run"]) / "best") for label, e in result["models"].items()}
    print(f"\ndriving {roads} held-out roads of {seconds:g} s in closed loop (world seed {LOOP_SEED})")
    at_speeds = cl.autonomy_at_speeds(list(checkpoints.values()), roads, seconds, LOOP_SEED, CORES)
    tables = []
    for speed, found in at_speeds.items():
        tables.append({label: found["checkpoints"][c] for label, c in checkpoints.items()} | found["references"])
        print(f"\nthe {'world driver' if speed == 'driver' else 'model'}'s speed\n{cl.table(tables[-1])}")
    rows, seeds = tables[0], at_speeds["driver"]["roads"]
    best = max(checkpoints, key=lambda label: rows[label]["autonomy_pct"])
    run, entry = Path(result["models"][best]["run"]), result["models"][best]
    world = cl.world_for_loop(cl.training_world(checkpoints[best], seeds)[0], seconds)
    driven = cl.drive_road(world, seeds[0], cl.ModelHands(Pilot(checkpoints[best])), keep_frames=True)
    write_closed_loop(run / "closed_loop.webm", driven)
    note = (f"{roads} roads of {seconds:g} s (world seed {LOOP_SEED}, no training drive's) beside the "
            "other models and the reference drivers; the video is the first road")
    write_json(run / CLOSED_LOOP, {"rows": rows, "roads": seeds, "video": "closed_loop.webm", "note": note})
    info = read_run(run)
    write_report(run, entry["metrics"], info, overlay_path(run, entry["metrics"]["drives"][0]))
    return rows, tables[1]
