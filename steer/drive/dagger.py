"""DAgger (Ross, Gordon and Bagnell, AISTATS 2011) in the synthetic world: the model learns from the
places its own driving takes it.

Each round drives the current checkpoint on roads of its training world that no held-out or validation
road is (the DAGGER_SEED family), with the wheel asked for mixed from the world driver's meant command
(share β = beta ** round, decaying as in the paper) and the model's own. Every frame the model saw is
recorded with the expert's meant wheel and speed at the state the mixed driving reached, cut at
take-overs (the car put back as `steer drive` does, so one bad stretch does not fill a round) into
drives added to the run's cache, with their provenance (round, β, checkpoint). Then the model trains
again on everything so far (the aggregate data set), fine-tuned from the last checkpoint or from
scratch, and its autonomy on validation roads is recorded per round.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from steer.data.cache import write_drives
from steer.data.drive import MEANT, SHORT_FRAMES, SIGNAL_UNITS, Drive, Signal
from steer.drive import closed_loop as cl
from steer.drive.judge import judge_on, road_judge, validation_roads
from steer.drive.pilot import Pilot
from steer.durable import write_json
from steer.errors import SteerError
from steer.models import load_model
from steer.provenance import versions
from steer.train.checkpoint import read_run
from steer.train.config import TrainConfig
from steer.train.loop import train
from steer.workers import pool


@dataclass
class DaggerConfig:
    rounds: int = 4
    roads: int = 40  # driven per round
    seconds: float = 30.0  # per road
    beta: float = 0.5  # the expert's share of the wheel in round r is beta ** r
    mode: str = "fine-tune"  # or "scratch": each round trains a fresh model on all data so far
    epochs: int = 0  # training epochs per round (0: the run's own)
    seed: int = cl.DAGGER_SEED  # roads are this world seed's drives, each round its own
    val_roads: int = 4  # validation roads scored after every round
    val_seconds: float = 30.0
    processes: int = os.cpu_count() or 1

    def check(self) -> None:
        """Refuse settings no round can run with, naming the flag; never a held-out or validation road."""
        for flag, value in (("--rounds", self.rounds), ("--roads", self.roads), ("--seconds", self.seconds),
                            ("--val-roads", self.val_roads), ("--val-seconds", self.val_seconds),
                            ("--processes", self.processes)):
            if not value > 0:
                raise SteerError(f"{flag} {value}: must be above 0")
        if not 0 <= self.beta <= 1 or self.epochs < 0 or self.mode not in ("fine-tune", "scratch"):
            raise SteerError(f"--beta {self.beta} (0..1), --epochs {self.epochs} (0 or more), --mode {self.mode} "
                             "(fine-tune or scratch): one of them is out of range")
        if self.seed in (cl.HELD_OUT_SEED, cl.VALIDATION_SEED):
            raise SteerError(f"--seed {self.seed}: that family holds the held-out or validation roads, which DAgger "
                             f"never drives; give another (default {cl.DAGGER_SEED})")


def dagger_seeds(config: DaggerConfig, round_: int) -> list[int]:
    """The roads of round `round_` (1-based): each round drives roads no other round drove."""
    return cl.road_seeds(config.seed, config.roads, first=(round_ - 1) * config.roads)


def road_drives(run: cl.RoadRun, name: str, meta: dict, min_frames: int = SHORT_FRAMES) -> list[Drive]:
    """One driven road as drives: its frames cut at take-overs (each a jump of the car), pieces shorter than
    `min_frames` left out, labelled with the expert's meant wheel and speed beside those in force."""
    signals = {"steering": run.wheel_rad, "steering_meant": run.meant_rad, "speed": run.speed_mps,
               "speed_meant": run.meant_mps, "throttle": run.throttle, "brake": run.brake,
               "glitch": run.glitch.astype(np.float64)}
    cuts = [0, *run.takeovers, len(run.x_m)]
    drives = []
    for k, (a, b) in enumerate(zip(cuts, cuts[1:])):
        if b - a >= min_frames:
            named = {key: Signal(v[a:b], SIGNAL_UNITS[key.removesuffix(MEANT)]) for key, v in signals.items()}
            drives.append(Drive(f"{name}-{k}", run.frames[a:b], np.arange(a, b) * run.dt_s, named,
                                {**meta, "frames": [a, b]}))
    return drives


def _road_job(job: tuple) -> dict:
    """Drive one road with the checkpoint, write its pieces into the cache; what was rendered and kept."""
    checkpoint, world, seed, share, round_, cache, min_frames = job
    torch.set_num_threads(1)  # one driver per core
    run = cl.drive_road(world, seed, cl.ModelHands(Pilot(checkpoint)), keep_frames=True, expert_share=share)
    meta = {"source": "dagger", "seed": seed, "round": round_, "beta": share, "checkpoint": str(checkpoint),
            "config": asdict(world)}
    drives = road_drives(run, f"dagger-r{round_}-{seed}", meta, min_frames)
    write_drives(cache, drives)
    return {"frames": len(run.x_m), "kept": sum(len(d) for d in drives), "takeovers": len(run.takeovers)}


def collect(checkpoint: Path, train_config: TrainConfig, config: DaggerConfig, round_: int) -> dict:
    """One round's driving on `config.processes` cores: frames rendered, kept and take-overs, and the seconds."""
    world, _ = cl.world_of_cache(train_config.cache)
    world = cl.world_for_loop(world, config.seconds)
    share = config.beta ** round_
    jobs = [(checkpoint, world, seed, share, round_, train_config.cache, max(SHORT_FRAMES, train_config.window))
            for seed in dagger_seeds(config, round_)]
    started = time.perf_counter()
    if config.processes > 1:
        with pool(config.processes, "spawn") as drivers:
            found = drivers.map(_road_job, jobs)
    else:
        found = [_road_job(job) for job in jobs]
    totals = {key: sum(f[key] for f in found) for key in ("frames", "kept", "takeovers")}
    return {**totals, "beta": share, "seconds": time.perf_counter() - started}


def check_roads(train_config: TrainConfig, config: DaggerConfig) -> None:
    """No DAgger road is a drive the run's cache holds already, nor a held-out road."""
    _, used = cl.world_of_cache(train_config.cache)
    seeds = {s for r in range(1, config.rounds + 1) for s in dagger_seeds(config, r)}
    if overlap := sorted(seeds & {s for s, name in used.items() if not name.startswith("dagger-")}):
        raise SteerError(f"DAgger road {overlap[0]} is drive {used[overlap[0]]!r} of {train_config.cache}: give "
                         "another --seed")


def dagger(run: str | Path, out: str | Path, config: DaggerConfig) -> dict:
    """DAgger's rounds from the run's best checkpoint; each round's run is OUT/round-N, the record
    OUT/dagger.json (rewritten after every round)."""
    config.check()
    run, out = Path(run), Path(out)
    base = TrainConfig.from_dict(read_run(run)["config"])
    if cl.world_of_cache(base.cache)[0] is None:
        raise SteerError(f"--run {run}: its cache {base.cache} holds no world drives; DAgger needs the world's expert")
    check_roads(base, config)
    judge = judge_on(*validation_roads(base.cache, config.val_roads, config.val_seconds, "steer dagger"))
    checkpoint = run / "best"
    rounds = [{"round": 0, "checkpoint": str(checkpoint), "validation": judge(load_model(checkpoint))}]
    print(_line(rounds[-1]))
    for round_ in range(1, config.rounds + 1):
        driven = collect(checkpoint, base, config, round_)
        trained = replace(base, out=str(out / f"round-{round_}"), epochs=config.epochs or base.epochs,
                          init=str(checkpoint) if config.mode == "fine-tune" else "")
        started = time.perf_counter()
        checkpoint = train(trained, overwrite=True, judge=road_judge(trained)) / "best"
        rounds.append({"round": round_, "checkpoint": str(checkpoint), "driven": driven,
                       "train_seconds": time.perf_counter() - started, "validation": judge(load_model(checkpoint))})
        print(_line(rounds[-1]))
        write_json(out / "dagger.json", {"run": str(run), "config": asdict(config), "rounds": rounds,
                                         "validation_roads": config.val_roads, "versions": versions()})
    return {"rounds": rounds}


def _line(entry: dict) -> str:
    v, d = entry["validation"], entry.get("driven")
    drove = (f"; drove {d['frames']} frames at beta {d['beta']:.3g} ({d['takeovers']} take-overs, "
             f"{d['frames'] / d['seconds']:.0f} frames/s), kept {d['kept']}") if d else ""
    return (f"round {entry['round']}: validation autonomy {v['autonomy_pct']:.1f}% ({v['takeovers']} take-overs)"
            f"{drove}")
