"""The synthetic world: a road, a car, a driver and a camera, simulated into Drives."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from steer.data.drive import MEANT, SIGNAL_UNITS, Drive, Signal, not_finite, out_of_range, range_message
from steer.workers import pool
from steer.world import car as carmodel
from steer.world.camera import Camera, Renderer, Scenery
from steer.world.driver import Driver, DriverParams, turn_wheel
from steer.world.glitches import apply_glitches
from steer.world.recovery import RecoveryParams, RecoveryRuns, draw_view, recovery_wheel, shifted
from steer.world.road import Road, generate_road

SUBSTEPS = 4  # physics steps per camera frame
MEANT_SIGNALS = ("steering_meant", "speed_meant")  # the clean labels beside the wheel in force and the speed


@dataclass
class WorldConfig:
    frames_per_drive: int = 600
    fps: float = 20.0
    drop_rate: float = 0.02
    burst_rate: float = 0.004
    camera: Camera = field(default_factory=Camera)
    car: carmodel.CarParams = field(default_factory=carmodel.CarParams)
    driver: DriverParams = field(default_factory=DriverParams)
    recovery: RecoveryParams = field(default_factory=RecoveryParams)

    @staticmethod
    def from_dict(values: dict) -> "WorldConfig":
        """The config `asdict` wrote (e.g. a drive's meta in a cache manifest); parts it lacks take defaults."""
        parts = {"camera": Camera, "car": carmodel.CarParams, "driver": DriverParams, "recovery": RecoveryParams}
        known = {f.name for f in fields(WorldConfig)}
        config = {k: v for k, v in values.items() if k in known and k not in parts}
        for key, kind in parts.items():
            own = {f.name: f for f in fields(kind)}
            given = {k: tuple(v) if isinstance(v, list) else v for k, v in values.get(key, {}).items() if k in own}
            config[key] = kind(**given)
        return WorldConfig(**config)

    def __post_init__(self) -> None:
        """Refuse settings no drive can be simulated with, naming the `steer world` flag."""
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"--fps {self.fps}: the frame rate must be a positive number")
        if self.frames_per_drive < 2:
            raise ValueError(f"--frames {self.frames_per_drive}: a drive needs at least 2 frames")
        for flag, rate in (("--drop-rate", self.drop_rate), ("--burst-rate", self.burst_rate)):
            if not 0 <= rate <= 1:
                raise ValueError(f"{flag} {rate}: a chance, between 0 and 1")


@dataclass
class World:
    """One drive's world at its start: what a seed draws, in the order simulate_drive always drew it."""
    rng: np.random.Generator
    road: Road
    scenery: Scenery
    driver: Driver
    renderer: Renderer
    state: carmodel.CarState
    index: int


def start_world(config: WorldConfig, seed: int) -> World:
    rng = np.random.default_rng(seed)
    n, dt = config.frames_per_drive, 1.0 / config.fps
    road = generate_road(rng, length_m=n * dt * config.driver.cruise_mps[1] * 1.2 + 150)
    scenery = Scenery.random(rng)
    driver = Driver(config.driver, config.car, rng, dt / SUBSTEPS, np.random.default_rng([seed, 4]))
    start = road.index_at(20.0)
    state = carmodel.CarState(float(road.x_m[start]), float(road.y_m[start]) + config.driver.lane_offset_m,
                              float(road.heading_rad[start]), driver.cruise_mps)  # floats: numpy's scalars are slow
    return World(rng, road, scenery, driver, Renderer(config.camera), state, start)


def simulate_drive(config: WorldConfig, seed: int, name: str | None = None) -> Drive:
    """One drive; the same config and seed always give the same frames and signals."""
    world = start_world(config, seed)
    road, driver, state, index = world.road, world.driver, world.state, world.index
    n, dt = config.frames_per_drive, 1.0 / config.fps
    rate_step = config.driver.steering_rate_rad_per_s * dt / SUBSTEPS
    views = np.random.default_rng([seed, 1])  # its own generator: views leave the road, path and glitches as they were
    frames = np.empty((n, config.camera.height_px, config.camera.width_px, 3), np.uint8)
    signals = {key: np.empty(n) for key in ("steering", "speed", "throttle", "brake", "recovery_m", *MEANT_SIGNALS)}
    runs, wheel_in_force = RecoveryRuns(config.recovery, np.random.default_rng([seed, 5]), config.fps), 0.0
    for i in range(n):
        index, _ = road.project(state.x_m, state.y_m, index)
        if (run := runs.at(i)) and run.start == i:  # a recovery run starts: the car displaced
            state = shifted(state, road, index, run.shift_m, run.turn_rad)
            index, _ = road.project(state.x_m, state.y_m, index)
        seen = state
        frames[i] = world.renderer.render(road, state.x_m, state.y_m, state.yaw_rad, index, i * dt, world.scenery)
        signals["speed"][i] = state.speed_mps
        for k in range(SUBSTEPS):
            wheel, throttle, brake = driver.act(state, road, index)
            meant = driver.meant_rad
            if run:  # the expert brings the car back: the recovery label at the hands' rate, no delay, no noise
                meant = recovery_wheel(state, road, index, config.recovery.run_back_s, config.driver.lane_offset_m,
                                       config.car)
                wheel = driver.wheel_rad = turn_wheel(wheel_in_force, meant, rate_step,
                                                      config.car.max_steering_wheel_rad)
            wheel_in_force = wheel
            if k == 0:  # the command in force while this frame is exposed, and what the driver meant at it
                signals["steering"][i], signals["throttle"][i], signals["brake"][i] = wheel, throttle, brake
                signals["steering_meant"][i], signals["speed_meant"][i] = meant, driver.meant_mps
            state = carmodel.step(state, config.car, wheel, throttle, brake, dt / SUBSTEPS)
        view_m = _recovery_view(config, world, views, seen, index, i, frames, signals)
        signals["recovery_m"][i] = view_m or (run.shift_m if run else 0.0)
    glitch = apply_glitches(frames, world.rng, config.drop_rate, config.burst_rate)
    named = {key: Signal(values, SIGNAL_UNITS.get(key.removesuffix(MEANT), "m")) for key, values in signals.items()}
    named["glitch"] = Signal(glitch.astype(np.float64), SIGNAL_UNITS["glitch"])
    if config.recovery.rate == 0 and config.recovery.run_rate == 0:
        del named["recovery_m"]
    return Drive(name or f"world-{seed}", frames, np.arange(n) * dt, named,
                 meta={"source": "world", "seed": seed, "config": asdict(config)})


def _recovery_view(config: WorldConfig, world: World, rng: np.random.Generator, state: carmodel.CarState,
                   index: int, i: int, frames: np.ndarray, signals: dict[str, np.ndarray]) -> float:
    """With chance `recovery.rate`, frame i becomes a view from the car shifted and turned, its steering the
    recovery label (steer.world.recovery); returns the shift (m, positive = left; 0: the frame is as seen)."""
    params = config.recovery
    if params.rate == 0 or rng.random() >= params.rate:
        return 0.0
    shift, turn = draw_view(rng, params)
    view = shifted(state, world.road, index, shift, turn)
    at, _ = world.road.project(view.x_m, view.y_m, index)
    frames[i] = world.renderer.render(world.road, view.x_m, view.y_m, view.yaw_rad, at, i / config.fps, world.scenery)
    signals["steering"][i] = signals["steering_meant"][i] = recovery_wheel(
        view, world.road, at, params.back_s, config.driver.lane_offset_m, config.car)
    return shift


def drive_seed(seed: int, i: int) -> int:
    return seed * 100_003 + i


def generate_drives(config: WorldConfig, count: int, seed: int, processes: int = 1):
    """Yield `count` drives named world-<seed>-<i>, simulated on `processes` cores, in order."""
    jobs = [(config, drive_seed(seed, i), f"world-{seed}-{i:03d}") for i in range(count)]
    if processes <= 1:
        yield from (simulate_drive(*job) for job in jobs)
        return
    with pool(processes, "spawn") as workers:
        yield from workers.imap(_simulate_job, jobs)


def _simulate_job(job: tuple) -> Drive:
    return simulate_drive(*job)


def check_log(where: str, signals: dict[str, Signal], limits: dict[str, float] | None = None,
              speed_mps: float | None = None) -> None:
    """Refuse a logged drive to replay without steering in rad, without a speed (logged or `speed_mps`),
    or with signals not finite or beyond their physical range, naming `where` (the cache and drive)."""
    if signals.get("steering", Signal(np.empty(0), "")).unit != "rad":
        raise ValueError(f"{where}: replay needs the steering in rad; import the log with --steering-rad-per-unit")
    if "speed" not in signals and speed_mps is None:
        raise ValueError(f"{where}: the log has no speed; give a constant one with --speed-mps")
    for key, signal in signals.items():
        if bad := not_finite(signal.values):
            raise ValueError(f"{where} frame {bad[0]}: {key} is {bad[1]}; steer replays finite values only")
    bad = out_of_range(signals, limits)
    if bad:
        key, row, limit = bad
        raise ValueError(f"{where} frame {row}: {range_message(key, signals[key], row, limit, None)}")
