"""The model at the wheel: closed-loop driving in the synthetic world, scored as NVIDIA scored PilotNet.

Each frame the camera renders what the car sees now (glitched as the training world was), the hands
look at it and command a steering-wheel angle, and the wheel turns toward it at the human driver's
rate limit while the physics steps. Speed follows the world's driver (lateral control only) unless the
model's own speed or throttle is asked for. Where the car's centre strays more than `max_offset_m` from
its lane centre, or its heading more than `max_heading_rad` from the lane's, a take-over is counted:
the car is put back on the lane centre with the lane's heading, the model keeps its state (a real
take-over does not reset the network), and `penalty_s` is charged:

    autonomy = (1 - take-overs * penalty_s / elapsed s) * 100, at least 0

Two reference drivers go through the same loop: the world's own driver (the ceiling) and a wheel held
straight (the floor). The world's driver and the glitches draw from their own generators, so every
driver meets the same roads, the same cruise-speed changes and the same glitches.
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Hashable, Protocol

import numpy as np
import torch

from steer.data.cache import read_manifest
from steer.drive.pilot import Pilot
from steer.errors import SteerError
from steer.train.checkpoint import read_run
from steer.workers import pool
from steer.world import car as carmodel
from steer.world.camera import Camera
from steer.world.driver import turn_wheel
from steer.world.glitches import glitch_codes, glitch_frame
from steer.world.simulate import SUBSTEPS, WorldConfig, drive_seed, start_world


@dataclass
class LoopConfig:
    max_offset_m: float = 1.0  # a take-over where the car's centre is further than this from its lane centre
    max_heading_rad: float = 0.35  # ... or its heading further than this (20 degrees) from the lane's
    penalty_s: float = 6.0  # charged per take-over, as NVIDIA did
    speed: str = "driver"  # "driver": the world's driver's speed; "model": the model's speed or throttle
    latency_frames: int = 0  # the command applied this many camera frames late
    frame_stride: int = 1  # the camera sees every n-th frame of the world (2: half the frame rate)


@dataclass
class Command:
    wheel_rad: float | None  # None: the world's driver's own wheel
    speed_mps: float | None = None
    throttle: float | None = None


class Hands(Protocol):
    """Who steers: a command for each frame; hands with `blind = True` are given None, not a frame."""

    def look(self, frame: np.ndarray | None, time_s: float) -> Command: ...


class ModelHands:
    """A checkpoint's `Pilot`, its state carried from frame to frame (and through take-overs)."""

    def __init__(self, pilot: Pilot, speed: str = "driver"):
        if "steering" not in pilot.targets:
            raise SteerError(f"the checkpoint predicts {pilot.targets}, no steering: it cannot drive")
        if speed == "model" and not {"speed", "throttle"} & set(pilot.targets):
            raise SteerError("--speed model: the checkpoint predicts neither speed nor throttle")
        self.pilot = pilot

    def look(self, frame: np.ndarray, time_s: float) -> Command:
        p = self.pilot.step(frame, time_s)
        return Command(p["steering"], p.get("speed"), p.get("throttle"))


class WorldDriverHands:
    """The world's own driver (the ceiling): its wheel, as it drove the training drives."""
    blind = True  # needs no frame: none is rendered for it

    def look(self, frame: np.ndarray, time_s: float) -> Command:
        return Command(None)


class ZeroHands:
    """The wheel held straight (the floor)."""
    blind = True

    def look(self, frame: np.ndarray, time_s: float) -> Command:
        return Command(0.0)


@dataclass
class RoadRun:
    """Per world frame of one road: where the car was and what the wheel did."""
    seed: int
    dt_s: float
    x_m: np.ndarray
    y_m: np.ndarray
    lateral_m: np.ndarray  # car centre from lane centre, positive = left
    heading_rad: np.ndarray  # car heading minus the lane's
    wheel_rad: np.ndarray  # in force while the frame was exposed
    commanded_rad: np.ndarray  # what the hands asked for (the wheel turns toward it at a limited rate)
    speed_mps: np.ndarray
    takeovers: list[int]  # frames where the car was put back
    meant_rad: np.ndarray  # the world driver's meant wheel at the state the car was in: the expert's label
    meant_mps: np.ndarray  # the speed it meant
    throttle: np.ndarray  # in force while the frame was exposed
    brake: np.ndarray
    glitch: np.ndarray  # the frame's glitch code (steer.world.glitches)
    frames: np.ndarray | None = None  # (N, H, W, 3) as the hands saw them (kept on request)
    road_xy: np.ndarray | None = None  # (M, 2) lane centre, for drawing


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def _pedals(config: WorldConfig, command: Command, speed_mps: float) -> tuple[float, float]:
    """The model's speed (followed as the world's driver follows its own) or else its throttle."""
    if command.speed_mps is not None:
        accel = np.clip(config.driver.speed_gain_per_s * (command.speed_mps - speed_mps), -3.5, 2.0)
        return carmodel.pedals_for(config.car, speed_mps, float(accel))
    return float(np.clip(command.throttle, 0.0, 1.0)), 0.0


def drive_road(config: WorldConfig, seed: int, hands: Hands, loop: LoopConfig = LoopConfig(),
               keep_frames: bool = False, expert_share: float = 0.0) -> RoadRun:
    """Drive the road of world seed `seed` for `config.frames_per_drive` frames with `hands` at the wheel;
    with `expert_share` β, the wheel asked for is β x the world driver's meant wheel + (1 - β) x the hands'
    (DAgger's mixed policy)."""
    world = start_world(config, seed)
    road, driver, state, index = world.road, world.driver, world.state, world.index
    n, dt, lane = config.frames_per_drive, 1.0 / config.fps, config.driver.lane_offset_m
    codes = glitch_codes(n, np.random.default_rng([seed, 2]), config.drop_rate, config.burst_rate)
    noise = np.random.default_rng([seed, 3])
    rate_step = config.driver.steering_rate_rad_per_s * dt / SUBSTEPS
    log = {k: np.zeros(n) for k in ("x", "y", "lateral", "heading", "wheel", "commanded", "speed", "meant_rad",
                                    "meant_mps", "throttle", "brake")}
    frames = np.zeros((n, config.camera.height_px, config.camera.width_px, 3), np.uint8) if keep_frames else None
    pending: deque[Command] = deque()
    takeovers, wheel, command = [], 0.0, Command(0.0)
    for i in range(n):
        index, offset = road.project(state.x_m, state.y_m, index)
        lateral, heading = offset - lane, _wrap(state.yaw_rad - road.heading_rad[index])
        if abs(lateral) > loop.max_offset_m or abs(heading) > loop.max_heading_rad:
            takeovers.append(i)
            state, wheel = _put_back(config, road, index, state), 0.0
            lateral, heading = 0.0, 0.0
        log["x"][i], log["y"][i], log["lateral"][i], log["heading"][i] = state.x_m, state.y_m, lateral, heading
        log["speed"][i] = state.speed_mps
        if i % loop.frame_stride == 0:
            frame = None
            if keep_frames or not getattr(hands, "blind", False):
                frame = world.renderer.render(road, state.x_m, state.y_m, state.yaw_rad, index, i * dt, world.scenery)
                frame = glitch_frame(frame, codes[i], noise)
            if keep_frames:
                frames[i] = frame
            asked = hands.look(frame, i * dt)
            pending.append(_mixed(asked, driver.meant_wheel(state, road, index), expert_share) if expert_share
                           else asked)
            command = pending.popleft() if len(pending) > loop.latency_frames else pending[0]
        elif keep_frames:
            frames[i] = frames[i - 1]
        for k in range(SUBSTEPS):
            driver_wheel, throttle, brake = driver.act(state, road, index)
            wheel = driver_wheel if command.wheel_rad is None else \
                turn_wheel(wheel, command.wheel_rad, rate_step, config.car.max_steering_wheel_rad)
            if loop.speed == "model" and (command.speed_mps, command.throttle) != (None, None):  # not the references
                throttle, brake = _pedals(config, command, state.speed_mps)
            if k == 0:
                log["wheel"][i], log["throttle"][i], log["brake"][i] = wheel, throttle, brake
                log["commanded"][i] = wheel if command.wheel_rad is None else command.wheel_rad
                log["meant_rad"][i], log["meant_mps"][i] = driver.meant_rad, driver.meant_mps
            state = carmodel.step(state, config.car, wheel, throttle, brake, dt / SUBSTEPS)
    lane_xy = np.column_stack([road.x_m - lane * np.sin(road.heading_rad), road.y_m + lane * np.cos(road.heading_rad)])
    return RoadRun(seed, dt, log["x"], log["y"], log["lateral"], log["heading"], log["wheel"], log["commanded"],
                   log["speed"], takeovers, log["meant_rad"], log["meant_mps"], log["throttle"], log["brake"],
                   codes, frames, lane_xy)


def _mixed(command: Command, meant_rad: float, expert_share: float) -> Command:
    if command.wheel_rad is None:
        return command
    return replace(command, wheel_rad=expert_share * meant_rad + (1 - expert_share) * command.wheel_rad)


def _put_back(config: WorldConfig, road, index: int, state: carmodel.CarState) -> carmodel.CarState:
    """The car on the lane centre beside where it was, with the lane's heading, at its speed."""
    h, lane = road.heading_rad[index], config.driver.lane_offset_m
    return carmodel.CarState(float(road.x_m[index] - lane * np.sin(h)), float(road.y_m[index] + lane * np.cos(h)),
                             float(h), state.speed_mps)


def scores(runs: list[RoadRun], penalty_s: float) -> dict[str, float]:
    """Autonomy and the lateral figures over `runs` together (one road or all)."""
    elapsed = sum(len(r.x_m) * r.dt_s for r in runs)
    km = sum(float(np.sum(r.speed_mps)) * r.dt_s for r in runs) / 1000
    count = sum(len(r.takeovers) for r in runs)
    lateral = np.abs(np.concatenate([r.lateral_m for r in runs]))
    jerk = np.concatenate([np.abs(np.diff(r.wheel_rad, 3)) / r.dt_s**3 for r in runs])
    speed_error = np.concatenate([r.speed_mps - r.meant_mps for r in runs])  # from what the world's driver meant
    return {"autonomy_pct": max(0.0, 1 - count * penalty_s / elapsed) * 100, "takeovers": count,
            "takeovers_per_km": count / km if km else float("nan"), "lateral_mean_m": float(lateral.mean()),
            "lateral_max_m": float(lateral.max()), "lateral_rmse_m": float(np.sqrt(np.mean(lateral**2))),
            "heading_error_deg": float(np.degrees(np.mean(np.abs(np.concatenate([r.heading_rad for r in runs]))))),
            "wheel_jerk_radps3": float(jerk.mean()), "speed_rmse_mps": float(np.sqrt(np.mean(speed_error**2))),
            "distance_km": km, "elapsed_s": elapsed}


# Road families (`steer world --seed` numbering): held-out roads are scored on and never learnt from;
# DAgger drives its own; validation roads pick checkpoints (--select autonomy) and report DAgger's rounds.
HELD_OUT_SEED, DAGGER_SEED, VALIDATION_SEED = 1000, 2000, 3000


def road_seeds(seed: int, roads: int, first: int = 0) -> list[int]:
    """World seeds of the roads, numbered as `steer world --seed SEED` numbers its drives, from road `first`."""
    return [drive_seed(seed, i) for i in range(first, first + roads)]


def world_of_cache(cache: str | Path) -> tuple[WorldConfig | None, dict[int, str]]:
    """The world the cache's synthetic drives were made in (None if it has none), and the world seed of
    every drive made in it (world and DAgger drives) with the drive's name."""
    entries = [d for d in read_manifest(cache)["drives"]
               if d.get("meta", {}).get("source") in ("world", "dagger") and "env" not in d["meta"]]  # not an env's
    used = {d["meta"]["seed"]: d["name"] for d in entries}
    world = next((d for d in entries if d["meta"]["source"] == "world"), None)
    return (WorldConfig.from_dict(world["meta"]["config"]) if world else None), used


def training_world(checkpoint: str | Path, seeds: list[int]) -> tuple[WorldConfig, str]:
    """The world the checkpoint's run trained on (camera, glitch rates, car, driver), read from its run.json
    and its cache's manifest, and a note on what was checked. Refuses `seeds` a drive of that cache used."""
    run_json = Path(checkpoint).parent / "run.json"
    if not run_json.exists():
        return WorldConfig(), f"no run.json beside {checkpoint}: default world, held-out roads not checked"
    cache = Path(read_run(run_json.parent)["config"]["cache"])
    if not (cache / "manifest.json").exists():
        return WorldConfig(), f"the run's cache {cache} is gone: default world, held-out roads not checked"
    world, used = world_of_cache(cache)
    overlap = sorted(set(seeds) & set(used))
    if overlap:
        raise SteerError(f"road seed {overlap[0]} drove training drive {used[overlap[0]]!r} of {cache}: pick "
                         "--seed so that no road is one the model trained on (e.g. --seed 1000)")
    if not world:
        return WorldConfig(), f"the run's cache {cache} holds no world drives: default world"
    return world, f"world of {cache}; no road one of its {len(used)} drives"


def closed_loop(drivers: list[str], world: WorldConfig, seeds: list[int], loop: LoopConfig,
                processes: int = 1, threads: int = 1) -> dict:
    """Every driver (a checkpoint folder or a REFERENCES name) on every road, one road per process on
    `processes` cores: per driver, per-road scores and the scores over all roads."""
    result = {"roads": seeds, "seconds": world.frames_per_drive / world.fps, "loop": asdict(loop),
              "world": asdict(world), "drivers": {}}
    runs = drive_all({name: [(name, world, seed, loop) for seed in seeds] for name in drivers}, processes, threads)
    for name, mine in runs.items():
        result["drivers"][name] = {"overall": scores(mine, loop.penalty_s),
                                   "per_road": {str(r.seed): scores([r], loop.penalty_s) for r in mine}}
    return result


# The same roads with the camera or the actuator worse than in training: a model that carries a state
# should lose less to dropped frames than one that does not.
ROBUSTNESS = {"as trained": {}, "dropped frames 5%": {"drop_rate": 0.05}, "dropped frames 20%": {"drop_rate": 0.2},
              "command 1 frame late": {"latency_frames": 1}, "command 3 frames late": {"latency_frames": 3},
              "half frame rate": {"frame_stride": 2}}


def robustness(checkpoint: str, world: WorldConfig, seeds: list[int], loop: LoopConfig, processes: int = 1,
               threads: int = 1) -> dict:
    """The checkpoint's overall scores under each of ROBUSTNESS's conditions."""
    tasks = {}
    for name, change in ROBUSTNESS.items():
        world_here = replace(world, **{k: v for k, v in change.items() if k == "drop_rate"})
        loop_here = replace(loop, **{k: v for k, v in change.items() if k != "drop_rate"})
        tasks[name] = [(checkpoint, world_here, seed, loop_here) for seed in seeds]
    return {name: scores(runs, loop.penalty_s) for name, runs in drive_all(tasks, processes, threads).items()}


REFERENCES = {"world driver (ceiling)": WorldDriverHands, "zero steering (floor)": ZeroHands}


def hands_for(driver: str, speed: str = "driver") -> Hands:
    """A reference driver by its REFERENCES name, else the checkpoint in that folder."""
    return REFERENCES[driver]() if driver in REFERENCES else ModelHands(Pilot(driver), speed)


Task = tuple[str, WorldConfig, int, LoopConfig]  # a driver (as hands_for names it), its world, road seed, loop


def drive_all(groups: dict[Hashable, list[Task]], processes: int = 1,
              threads: int = 1) -> dict[Hashable, list[RoadRun]]:
    """Every group's tasks driven, each with fresh hands and `threads` torch threads, one road per process on
    `processes` cores. The runs equal one process's: every road starts a new drive (a Pilot resets where time
    goes back) and draws only from its own seeded generators."""
    tasks = [task for group in groups.values() for task in group]
    job = partial(_road_job, threads=threads)
    if processes > 1 and len(tasks) > 1:
        with pool(min(processes, len(tasks)), "spawn") as workers:
            runs = iter(workers.map(job, tasks, chunksize=1))
    else:
        before = torch.get_num_threads()
        try:
            runs = iter([job(task) for task in tasks])
        finally:
            torch.set_num_threads(before)
    return {name: [next(runs) for _ in group] for name, group in groups.items()}


def _road_job(task: Task, threads: int) -> RoadRun:
    driver, world, seed, loop = task
    torch.set_num_threads(threads)  # a step a frame at a time gains little from more than one
    return drive_road(world, seed, hands_for(driver, loop.speed), loop)


def autonomy_of(checkpoints: list[str], roads: int, seconds: float, road_seed: int, processes: int = 1,
                speed: str = "driver", **rates: float) -> dict:
    """Overall scores of each checkpoint (the default loop at `speed`, its own training world with glitch
    `rates` if given, roads checked held out) and of the reference drivers (in the first checkpoint's
    world), one road per process on `processes` cores."""
    return autonomy_at_speeds(checkpoints, roads, seconds, road_seed, processes, (speed,), **rates)[speed]


def autonomy_at_speeds(checkpoints: list[str], roads: int, seconds: float, road_seed: int, processes: int = 1,
                       speeds: tuple[str, ...] = ("driver", "model"), **rates: float) -> dict[str, dict]:
    """`autonomy_of` at each of `speeds`, all roads in one pool of processes (each pool's start costs its
    workers the import of torch). Keyed by speed."""
    seeds = road_seeds(road_seed, roads)
    worlds = {c: world_for_loop(training_world(c, seeds)[0], seconds, **rates) for c in checkpoints}
    loops = {speed: LoopConfig(speed=speed) for speed in speeds}
    groups = {(d, speed): [(d, worlds.get(d, worlds[checkpoints[0]]), seed, loop) for seed in seeds]
              for speed, loop in loops.items() for d in [*checkpoints, *REFERENCES]}
    found = {key: scores(runs, loops[key[1]].penalty_s) for key, runs in drive_all(groups, processes).items()}
    return {speed: {"roads": seeds, "checkpoints": {c: found[c, speed] for c in checkpoints},
                    "references": {n: found[n, speed] for n in REFERENCES}} for speed in speeds}


def world_for_loop(world: WorldConfig, seconds: float, camera: Camera | None = None, **rates: float) -> WorldConfig:
    """`world` driven `seconds` long, with a camera and glitch rates given instead of its own, its driver
    without the DART noise training drives may have had (the ceiling is the driver as it drives)."""
    given = {k: v for k, v in rates.items() if v is not None}
    return replace(world, frames_per_drive=int(round(seconds * world.fps)), camera=camera or world.camera,
                   driver=replace(world.driver, dart_rad=0.0), **given)


COLUMNS = [("autonomy_pct", "autonomy %", ".1f"), ("takeovers", "take-overs", "d"),
           ("takeovers_per_km", "per km", ".2f"), ("lateral_mean_m", "mean |lat| m", ".3f"),
           ("lateral_max_m", "max |lat| m", ".3f"), ("lateral_rmse_m", "lat rmse m", ".3f"),
           ("heading_error_deg", "|heading| deg", ".2f"), ("wheel_jerk_radps3", "|jerk| rad/s3", ".1f"),
           ("speed_rmse_mps", "speed err m/s", ".2f"), ("distance_km", "km", ".2f")]


def table(rows: dict[str, dict[str, float]]) -> str:
    """One line per driver (or condition) of its overall scores."""
    width = max(len(name) for name in rows) + 2
    lines = [" " * width + "".join(f"{title:>15}" for _, title, _ in COLUMNS)]
    for name, s in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{s[key]:>15{fmt}}" for key, _, fmt in COLUMNS))
    return "\n".join(lines)
