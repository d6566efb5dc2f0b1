"""The car: a kinematic bicycle model (rear-axle reference) with a simple longitudinal force balance."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class CarParams:
    wheelbase_m: float = 2.7
    steering_ratio: float = 15.0  # steering-wheel angle / road-wheel angle
    max_steering_wheel_rad: float = 7.85  # 450 degrees each way
    mass_kg: float = 1500.0
    max_drive_force_n: float = 5000.0
    max_brake_force_n: float = 9000.0
    drag_n_per_mps2: float = 0.4  # aerodynamic drag = c * v^2
    rolling_resistance_n: float = 150.0


@dataclass(slots=True)
class CarState:
    x_m: float = 0.0
    y_m: float = 0.0
    yaw_rad: float = 0.0
    speed_mps: float = 0.0


def clamp(value: float, low: float, high: float) -> float:
    """np.clip for one number, without the array machinery that costs it about 5 µs a call."""
    return min(max(value, low), high)


def yaw_rate(speed_mps: float, road_wheel_rad: float, wheelbase_m: float) -> float:
    """Kinematic bicycle: yaw rate = v / L * tan(road-wheel angle)."""
    return speed_mps / wheelbase_m * float(np.tan(road_wheel_rad))  # a float: numpy's scalars are slow to add


def resistance_n(params: CarParams, speed_mps: float) -> float:
    return params.drag_n_per_mps2 * speed_mps**2 + (params.rolling_resistance_n if speed_mps > 0 else 0.0)


def step(state: CarState, params: CarParams, steering_wheel_rad: float, throttle: float, brake: float,
         dt_s: float) -> CarState:
    """Advance the car by dt_s with the wheel held at `steering_wheel_rad` and pedals in 0..1."""
    wheel = clamp(steering_wheel_rad, -params.max_steering_wheel_rad, params.max_steering_wheel_rad)
    road_wheel = wheel / params.steering_ratio
    force = throttle * params.max_drive_force_n - brake * params.max_brake_force_n
    accel = (force - resistance_n(params, state.speed_mps)) / params.mass_kg
    speed = max(state.speed_mps + accel * dt_s, 0.0)
    mean_speed = 0.5 * (state.speed_mps + speed)
    yaw = state.yaw_rad + yaw_rate(mean_speed, road_wheel, params.wheelbase_m) * dt_s
    mean_yaw = 0.5 * (state.yaw_rad + yaw)
    return CarState(state.x_m + mean_speed * math.cos(mean_yaw) * dt_s,
                    state.y_m + mean_speed * math.sin(mean_yaw) * dt_s, yaw, speed)


def pedals_for(params: CarParams, speed_mps: float, accel_mps2: float) -> tuple[float, float]:
    """Throttle and brake (0..1) that give `accel_mps2` at this speed."""
    force = params.mass_kg * accel_mps2 + resistance_n(params, speed_mps)
    if force >= 0:
        return min(force / params.max_drive_force_n, 1.0), 0.0
    return 0.0, min(-force / params.max_brake_force_n, 1.0)
