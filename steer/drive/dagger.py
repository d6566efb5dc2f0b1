"""DAgger (Ross, Gordon and Bagnell, AISTATS 2011) in the synthetic world: the model learns from the
places its own driving takes it.

Each round drives the current checkpoint on roads of its training world that no held-out or validation
road is (the DAGGER_SEED family), with the wheel asked for mixed from the world driver's meant command
(share β = beta ** round, decaying as in the paper) and the model's own. Every frame the model saw is
recorded with the expert's meant wheel and speed at the state the mixed driving reached, cut at
take-overs (the car put back as `steer drive` does, so one bad stretch does not fill a round) into
drives added to the run's cache, with their provenance (round, β, checkpoint). Then the model trains
again on everything so far (the aggregate data set), fine-tuned from the last checkpoint or from
scratch, and its autonomy on validation roads is recorded per round. As in the paper, the result is
the best of the rounds' checkpoints on validation (round 0, the run's own, included): a round that
drove worse is recorded and not kept.

The rounds (`run_rounds`) are the same wherever the model drives: a `Simulator` says where (which
episodes, never a held-out one), how it scores a model on validation episodes, and how it drives and
records a round. The synthetic world's is `WorldRoads` here; a Gymnasium environment's is
steer/envs/dagger.py.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from steer.data.cache import write_drives
from steer.data.drive import MEANT, SHORT_FRAMES, SIGNAL_UNITS, Drive, Signal
from steer.drive import closed_loop as cl
from steer.drive.judge import road_judge, scores_on, validation_roads
from steer.drive.pilot import Pilot
from steer.durable import write_json
from steer.errors import SteerError
from steer.provenance import versions
from steer.train.checkpoint import read_run
from steer.train.config import TrainConfig
from steer.train.loop import train
from steer.workers import CORES, pool, shared_pool


@dataclass
class Rounds:
    """What every simulator's DAgger shares: how many rounds, the expert's share, how each round trains."""
    rounds: int = 4
    beta: float = 0.5  # the expert's share of the wheel in round r is beta ** r
    mode: str = "fine-tune"  # or "scratch": each round trains a fresh model on all data so far
    epochs: int = 0  # training epochs per round (0: the run's own)
    lr: float = 0.0  # learning rate per round (0: the run's own); fine-tuning may want less than from scratch

    def check(self) -> None:
        """Refuse settings no round can run with, naming the flag."""
        if not self.rounds > 0:
            raise SteerError(f"--rounds {self.rounds}: must be above 0")
        if not 0 <= self.beta <= 1 or self.epochs < 0 or self.lr < 0 or self.mode not in ("fine-tune", "scratch"):
            raise SteerError(f"--beta {self.beta} (0..1), --epochs {self.epochs} (0 or more), --lr {self.lr} (0 or "
                             f"more), --mode {self.mode} (fine-tune or scratch): one of them is out of range")


class Simulator(Protocol):
    """Where DAgger's rounds drive, made for a run's training config; it refuses held-out episodes when made."""

    def validate(self, checkpoint: Path) -> dict:
        """Scores of the checkpoint on the validation episodes."""

    def collect(self, checkpoint: Path, round_: int, share: float) -> dict:
        """Round `round_`'s driving, the expert's share `share`, into the run's cache: frames driven and kept."""

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """The config each round trains with (the run's, with any labels the simulator's drives need)."""

    def merit(self, validation: dict) -> float:
        """The validation score the rounds are ranked by, higher better."""

    def describe(self, validation: dict, driven: dict | None) -> str:
        """A round's validation scores and driving in a few words."""

    def record(self) -> dict:
        """What it drove with, for dagger.json."""


def run_rounds(run: str | Path, out: str | Path, config: Rounds,
               simulator: Callable[[TrainConfig, Rounds], Simulator]) -> dict:
    """DAgger's rounds from the run's best checkpoint, in `simulator(train_config, config)`; each round's run is
    OUT/round-N, the record OUT/dagger.json (rewritten after every round), `best_round` the round whose
    checkpoint is the result."""
    config.check()
    run, out = Path(run), Path(out)
    base = TrainConfig.from_dict(read_run(run)["config"])
    sim: Simulator = simulator(base, config)
    checkpoint = run / "best"
    rounds = [{"round": 0, "checkpoint": str(checkpoint), "validation": sim.validate(checkpoint)}]
    print(f"round 0: {sim.describe(rounds[-1]['validation'], None)}", flush=True)
    for round_ in range(1, config.rounds + 1):
        driven = sim.collect(checkpoint, round_, config.beta ** round_)
        trained = replace(sim.train_config(base), out=str(out / f"round-{round_}"), epochs=config.epochs or base.epochs,
                          lr=config.lr or base.lr, init=str(checkpoint) if config.mode == "fine-tune" else "")
        started = time.perf_counter()
        judge = road_judge(trained, getattr(config, "processes", CORES))  # an environment's rounds: no roads
        checkpoint = train(trained, overwrite=True, judge=judge) / "best"
        rounds.append({"round": round_, "checkpoint": str(checkpoint), "driven": driven,
                       "train_seconds": time.perf_counter() - started, "validation": sim.validate(checkpoint)})
        print(f"round {round_}: {sim.describe(rounds[-1]['validation'], driven)}", flush=True)
        best = best_round(rounds, sim.merit)
        write_json(out / "dagger.json", {"run": str(run), "config": asdict(config), "simulator": sim.record(),
                                         "rounds": rounds, "best_round": best, "versions": versions()})
    print(f"kept round {best}'s checkpoint: {rounds[best]['checkpoint']}", flush=True)
    return {"rounds": rounds, "best_round": best}


def best_round(rounds: list[dict], merit: Callable[[dict], float]) -> int:
    """The round whose checkpoint scored best on validation, the later one on a tie."""
    return max(range(len(rounds)), key=lambda r: (merit(rounds[r]["validation"]), r))


def driving(driven: dict, events: str) -> str:
    """A round's driving: frames, β, what happened (`events`), speed and what was kept."""
    return (f"; drove {driven['frames']} frames at beta {driven['beta']:.3g} ({events}, "
            f"{driven['frames'] / driven['seconds']:.0f} frames/s), kept {driven['kept']}")


@dataclass
class DaggerConfig(Rounds):
    """DAgger in the synthetic world: its roads and validation roads."""
    roads: int = 40  # driven per round
    seconds: float = 30.0  # per road
    seed: int = cl.DAGGER_SEED  # roads are this world seed's drives, each round its own
    val_roads: int = 4  # validation roads scored after every round
    val_seconds: float = 30.0
    processes: int = CORES  # one road per core, as the epoch judge drives

    def check(self) -> None:
        """As every simulator's, and never a held-out or validation road."""
        super().check()
        for flag, value in (("--roads", self.roads), ("--seconds", self.seconds), ("--val-roads", self.val_roads),
                            ("--val-seconds", self.val_seconds), ("--processes", self.processes)):
            if not value > 0:
                raise SteerError(f"{flag} {value}: must be above 0")
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


class WorldRoads:
    """The synthetic world as DAgger's simulator: the run's training world, its DAGGER_SEED family of roads."""

    def __init__(self, base: TrainConfig, config: DaggerConfig):
        world, _ = cl.world_of_cache(base.cache)
        if world is None:
            raise SteerError(f"--run: its cache {base.cache} holds no world drives; DAgger needs the world's expert "
                             "(or give --env for an environment's)")
        self.base, self.config, self.world = base, config, cl.world_for_loop(world, config.seconds)
        check_roads(base, config)
        self.val_world, self.val_seeds = validation_roads(base.cache, config.val_roads, config.val_seconds,
                                                          "steer dagger")

    def validate(self, checkpoint: Path) -> dict:
        """The checkpoint on the validation roads, one road per process."""
        return scores_on(checkpoint, self.val_world, self.val_seeds, self.config.processes)

    def collect(self, checkpoint: Path, round_: int, share: float) -> dict:
        """One round's roads on `config.processes` cores: frames rendered, kept and take-overs, and the seconds."""
        min_frames = max(SHORT_FRAMES, self.base.window)
        jobs = [(checkpoint, self.world, seed, share, round_, self.base.cache, min_frames)
                for seed in dagger_seeds(self.config, round_)]
        started = time.perf_counter()
        if self.config.processes > 1:
            with pool(self.config.processes, "spawn") as drivers:
                found = drivers.map(_road_job, jobs)
        else:
            found = [_road_job(job) for job in jobs]
        totals = {key: sum(f[key] for f in found) for key in ("frames", "kept", "takeovers")}
        return {**totals, "beta": share, "seconds": time.perf_counter() - started}

    def train_config(self, base: TrainConfig) -> TrainConfig:
        return base

    def merit(self, validation: dict) -> float:
        return validation["autonomy_pct"]

    def describe(self, validation: dict, driven: dict | None) -> str:
        drove = driving(driven, f"{driven['takeovers']} take-overs") if driven else ""
        return f"validation autonomy {validation['autonomy_pct']:.1f}% ({validation['takeovers']} take-overs){drove}"

    def record(self) -> dict:
        return {"world": asdict(self.world), "validation_roads": self.config.val_roads}


def check_roads(train_config: TrainConfig, config: DaggerConfig) -> None:
    """No DAgger road is a drive the run's cache holds already, nor a held-out road."""
    _, used = cl.world_of_cache(train_config.cache)
    seeds = {s for r in range(1, config.rounds + 1) for s in dagger_seeds(config, r)}
    if overlap := sorted(seeds & {s for s, name in used.items() if not name.startswith("dagger-")}):
        raise SteerError(f"DAgger road {overlap[0]} is drive {used[overlap[0]]!r} of {train_config.cache}: give "
                         "another --seed")


def dagger(run: str | Path, out: str | Path, config: DaggerConfig) -> dict:
    """DAgger's rounds in the synthetic world (`run_rounds` with `WorldRoads`), every round's roads and
    validation roads on one start of worker processes."""
    with shared_pool(config.processes, "spawn"):
        return run_rounds(run, out, config, WorldRoads)
