"""The synthetic world: a road, a car, a driver and a camera, simulated into Drives."""
from __future__ import annotations

import multiprocessing
from dataclasses import asdict, dataclass, field

import numpy as np

from steer.data.drive import SIGNAL_UNITS, Drive, Signal, out_of_range, range_message
from steer.workers import init_worker
from steer.world import car as carmodel
from steer.world.camera import Camera, Renderer, Scenery
from steer.world.driver import Driver, DriverParams
from steer.world.glitches import apply_glitches
from steer.world.road import generate_road

SUBSTEPS = 4  # physics steps per camera frame


@dataclass
class WorldConfig:
    frames_per_drive: int = 600
    fps: float = 20.0
    drop_rate: float = 0.02
    burst_rate: float = 0.004
    camera: Camera = field(default_factory=Camera)
    car: carmodel.CarParams = field(default_factory=carmodel.CarParams)
    driver: DriverParams = field(default_factory=DriverParams)

    def __post_init__(self) -> None:
        """Refuse settings no drive can be simulated with, naming the `steer world` flag."""
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"--fps {self.fps}: the frame rate must be a positive number")
        if self.frames_per_drive < 2:
            raise ValueError(f"--frames {self.frames_per_drive}: a drive needs at least 2 frames")
        for flag, rate in (("--drop-rate", self.drop_rate), ("--burst-rate", self.burst_rate)):
            if not 0 <= rate <= 1:
                raise ValueError(f"{flag} {rate}: a chance, between 0 and 1")


def simulate_drive(config: WorldConfig, seed: int, name: str | None = None) -> Drive:
    """One drive; the same config and seed always give the same frames and signals."""
    rng = np.random.default_rng(seed)
    n, dt = config.frames_per_drive, 1.0 / config.fps
    road = generate_road(rng, length_m=n * dt * config.driver.cruise_mps[1] * 1.2 + 150)
    scenery = Scenery.random(rng)
    driver = Driver(config.driver, config.car, rng, dt / SUBSTEPS)
    renderer = Renderer(config.camera)
    start = road.index_at(20.0)
    state = carmodel.CarState(road.x_m[start], road.y_m[start] + config.driver.lane_offset_m,
                              road.heading_rad[start], driver.cruise_mps)
    frames = np.empty((n, config.camera.height_px, config.camera.width_px, 3), np.uint8)
    signals = {key: np.empty(n) for key in ("steering", "speed", "throttle", "brake")}
    index = start
    for i in range(n):
        index, _ = road.project(state.x_m, state.y_m, index)
        frames[i] = renderer.render(road, state.x_m, state.y_m, state.yaw_rad, index, i * dt, scenery)
        signals["speed"][i] = state.speed_mps
        for k in range(SUBSTEPS):
            wheel, throttle, brake = driver.act(state, road, index)
            if k == 0:  # the command in force while this frame is exposed
                signals["steering"][i], signals["throttle"][i], signals["brake"][i] = wheel, throttle, brake
            state = carmodel.step(state, config.car, wheel, throttle, brake, dt / SUBSTEPS)
    glitch = apply_glitches(frames, rng, config.drop_rate, config.burst_rate)
    named = {key: Signal(values, SIGNAL_UNITS[key]) for key, values in signals.items()}
    named["glitch"] = Signal(glitch.astype(np.float64), SIGNAL_UNITS["glitch"])
    return Drive(name or f"world-{seed}", frames, np.arange(n) * dt, named,
                 meta={"source": "world", "seed": seed, "config": asdict(config)})


def _drive_seed(seed: int, i: int) -> int:
    return seed * 100_003 + i


def generate_drives(config: WorldConfig, count: int, seed: int, processes: int = 1):
    """Yield `count` drives named world-<seed>-<i>, simulated on `processes` cores, in order."""
    jobs = [(config, _drive_seed(seed, i), f"world-{seed}-{i:03d}") for i in range(count)]
    if processes <= 1:
        yield from (simulate_drive(*job) for job in jobs)
        return
    with multiprocessing.get_context("spawn").Pool(processes, init_worker) as pool:
        yield from pool.imap(_simulate_job, jobs)


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
        if not np.isfinite(signal.values).all():
            row = int(np.argmax(~np.isfinite(signal.values)))
            raise ValueError(f"{where} frame {row}: {key} is {signal.values[row]}; steer replays finite values only")
    bad = out_of_range(signals, limits)
    if bad:
        key, row, limit = bad
        raise ValueError(f"{where} frame {row}: {range_message(key, signals[key], row, limit, None)}")
