"""Replaying a real driver's log in the synthetic world: the car is driven by the logged steering and
speed, and the road is built under its path, so it stays in its lane and the rendered video carries
the real driver's dynamics.

The car's path comes from the kinematic bicycle model fed the logged steering-wheel angle and speed;
the road's centre line is that path shifted by the lane offset, with straights added before the start
and after the end so the camera always has road ahead.
"""
from __future__ import annotations

import numpy as np

from steer.data.drive import Drive, Signal
from steer.world.camera import Renderer, Scenery
from steer.world.car import CarParams, yaw_rate
from steer.world.road import DS_M, Road
from steer.world.simulate import WorldConfig


def path_of(timestamps_s: np.ndarray, steering_rad: np.ndarray, speed_mps: np.ndarray,
            car: CarParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, yaw at each logged time, starting at the origin heading east."""
    x, y, yaw = (np.zeros(len(timestamps_s)) for _ in range(3))
    for i, dt in enumerate(np.diff(timestamps_s)):
        wheel = np.clip(steering_rad[i], -car.max_steering_wheel_rad, car.max_steering_wheel_rad)
        road_wheel = wheel / car.steering_ratio
        yaw[i + 1] = yaw[i] + yaw_rate(speed_mps[i], road_wheel, car.wheelbase_m) * dt
        mid = 0.5 * (yaw[i] + yaw[i + 1])
        x[i + 1] = x[i] + speed_mps[i] * np.cos(mid) * dt
        y[i + 1] = y[i] + speed_mps[i] * np.sin(mid) * dt
    return x, y, yaw


def road_under(x: np.ndarray, y: np.ndarray, yaw: np.ndarray, lane_offset_m: float,
               before_m: float = 40.0, after_m: float = 200.0) -> Road:
    """A road whose lane centre is the path (x, y), resampled every DS_M along its length."""
    back = np.array([x[0] - before_m * np.cos(yaw[0]), y[0] - before_m * np.sin(yaw[0])])
    ahead = np.array([x[-1] + after_m * np.cos(yaw[-1]), y[-1] + after_m * np.sin(yaw[-1])])
    points = np.vstack([back, np.column_stack([x, y]), ahead])
    steps = np.hypot(*np.diff(points, axis=0).T)
    points = points[np.concatenate([[True], steps > 1e-6])]  # a stopped car adds no road
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    s = np.arange(0.0, along[-1], DS_M)
    px, py = np.interp(s, along, points[:, 0]), np.interp(s, along, points[:, 1])
    heading = np.unwrap(np.arctan2(np.gradient(py), np.gradient(px)))
    # the centre line lies -lane_offset to the left of the lane centre
    cx, cy = px + lane_offset_m * np.sin(heading), py - lane_offset_m * np.cos(heading)
    return Road(s, cx, cy, heading, np.gradient(heading) / DS_M)


def replay(timestamps_s: np.ndarray, signals: dict[str, Signal], config: WorldConfig, seed: int, name: str,
           speed_mps: float | None = None) -> Drive:
    """A drive rendered along the logged path; its signals are the log's own."""
    if "steering" not in signals or signals["steering"].unit != "rad":
        raise ValueError(f"{name}: replay needs a steering signal in rad")
    if "speed" in signals:
        speed = signals["speed"].values
    elif speed_mps is not None:
        speed = np.full(len(timestamps_s), speed_mps)
    else:
        raise ValueError(f"{name}: the log has no speed; give a constant speed to replay it")
    x, y, yaw = path_of(timestamps_s, signals["steering"].values, speed, config.car)
    road = road_under(x, y, yaw, config.driver.lane_offset_m)
    renderer, scenery = Renderer(config.camera), Scenery.random(np.random.default_rng(seed))
    frames = np.empty((len(timestamps_s), config.camera.height_px, config.camera.width_px, 3), np.uint8)
    index = 0
    for i, t in enumerate(timestamps_s):
        index, _ = road.project(x[i], y[i], index)
        frames[i] = renderer.render(road, x[i], y[i], yaw[i], index, t - timestamps_s[0], scenery)
    out = dict(signals)
    out.setdefault("speed", Signal(speed, "m/s"))
    return Drive(name, frames, timestamps_s, out, meta={"source": "world-replay", "seed": seed})
