"""A human-like driver: looks ahead along its lane, reacts late and a little noisily, and picks speeds.

Steering is pure pursuit of a point on the lane centre a speed-dependent distance ahead, delayed by a
reaction time and disturbed by slowly wandering noise. Speed is the lower of a cruise speed, which the
driver changes now and then for no reason visible in the camera, and the speed that keeps lateral
acceleration comfortable in the bends ahead.

Beside the wheel in force the driver keeps what it *meant*: the pure-pursuit command at the state it
sees, before the reaction delay and the wander (`meant_rad`), and the speed it aims for (`meant_mps`).
Those are clean labels: a model taught the wheel in force is taught noise it cannot see. DART noise
(Laskey et al., CoRL 2017) can be added to the executed wheel, from its own generator, while the meant
command stays clean: the car then strays and the labels say how to come back.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from steer.world.car import CarParams, CarState, clamp, pedals_for
from steer.world.road import DS_M, Road


@dataclass
class DriverParams:
    lane_offset_m: float = -1.8  # right-hand traffic: the lane centre is 1.8 m right of the road centre
    lookahead_s: float = 0.9  # look-ahead distance = min + speed * this
    lookahead_min_m: float = 6.0
    reaction_s: float = 0.2
    steering_noise_rad: float = 0.08  # steering-wheel angle, standard deviation of the wander
    steering_rate_rad_per_s: float = 8.0
    cruise_mps: tuple[float, float] = (5.0, 25.0)
    cruise_change_per_s: float = 0.3  # rate of the unexplained cruise-speed changes
    comfort_lateral_mps2: float = 2.5
    speed_gain_per_s: float = 0.7
    dart_rad: float = 0.0  # DART: std of extra noise on the executed wheel (0: none); the meant command stays clean
    dart_tau_s: float = 0.5  # its correlation time (Ornstein-Uhlenbeck)


def pure_pursuit(state: CarState, road: Road, index: int, lookahead_m: float, lane_offset_m: float,
                 car: CarParams) -> float:
    """Steering-wheel angle (rad) that puts the car on a circle through the lane centre `lookahead_m`
    along the road from `index` (the sample nearest the car)."""
    j = min(index + int(lookahead_m / DS_M), len(road.s_m) - 1)
    h = road.heading_rad[j]
    tx = road.x_m[j] - lane_offset_m * math.sin(h) - state.x_m
    ty = road.y_m[j] + lane_offset_m * math.cos(h) - state.y_m
    alpha = np.arctan2(ty, tx) - state.yaw_rad
    curvature = 2.0 * math.sin(alpha) / max(np.hypot(tx, ty), 1e-3)
    return float(np.arctan(curvature * car.wheelbase_m) * car.steering_ratio)


def turn_wheel(wheel_rad: float, wanted_rad: float, max_step_rad: float, limit_rad: float) -> float:
    """The wheel moved toward `wanted_rad` by at most `max_step_rad` (hands turn it at a limited rate),
    within +-`limit_rad`."""
    wheel = wheel_rad + float(clamp(wanted_rad - wheel_rad, -max_step_rad, max_step_rad))
    return float(clamp(wheel, -limit_rad, limit_rad))


def ornstein_uhlenbeck(value: float, std: float, tau_s: float, dt_s: float, rng: np.random.Generator) -> float:
    """One step of noise with standard deviation `std` and correlation time `tau_s`."""
    theta = dt_s / tau_s
    return value + (-theta * value + std * math.sqrt(2 * theta) * rng.standard_normal())


class Driver:
    def __init__(self, params: DriverParams, car: CarParams, rng: np.random.Generator, dt_s: float,
                 dart_rng: np.random.Generator | None = None):
        """`dart_rng` draws the DART noise (its own, so the road, wander and cruise changes stay as they are)."""
        self.params, self.car, self.rng, self.dt_s = params, car, rng, dt_s
        self.dart_rng = dart_rng or np.random.default_rng(0)
        self.cruise_mps = rng.uniform(*params.cruise_mps)
        self.noise_rad = self.dart_noise_rad = 0.0
        self.wheel_rad = self.meant_rad = 0.0
        self.meant_mps = self.cruise_mps
        self.pending = deque([0.0] * int(round(params.reaction_s / dt_s)))  # empty: no delay

    def act(self, state: CarState, road: Road, index: int) -> tuple[float, float, float]:
        """Steering-wheel angle (rad), throttle and brake (0..1) for the next step."""
        self.meant_rad = self.meant_wheel(state, road, index)
        self.pending.append(self.meant_rad)
        wanted = self.pending.popleft() + self._wander() + self._dart()
        self.wheel_rad = turn_wheel(self.wheel_rad, wanted, self.params.steering_rate_rad_per_s * self.dt_s,
                                    self.car.max_steering_wheel_rad)
        accel = self._accel_wanted(state, road, index)
        throttle, brake = pedals_for(self.car, state.speed_mps, accel)
        return self.wheel_rad, throttle, brake

    def meant_wheel(self, state: CarState, road: Road, index: int) -> float:
        """The wheel the driver means at `state`: pure pursuit, no delay, no noise (draws nothing)."""
        p = self.params
        lookahead = p.lookahead_min_m + p.lookahead_s * state.speed_mps
        return pure_pursuit(state, road, index, lookahead, p.lane_offset_m, self.car)

    def _wander(self) -> float:
        # with a time constant of about a second
        self.noise_rad = ornstein_uhlenbeck(self.noise_rad, self.params.steering_noise_rad, 1.0, self.dt_s, self.rng)
        return self.noise_rad

    def _dart(self) -> float:
        p = self.params
        if p.dart_rad:  # draws nothing when off, so a world without DART is the world it was
            self.dart_noise_rad = ornstein_uhlenbeck(self.dart_noise_rad, p.dart_rad, p.dart_tau_s, self.dt_s,
                                                     self.dart_rng)
        return self.dart_noise_rad

    def _accel_wanted(self, state: CarState, road: Road, index: int) -> float:
        p = self.params
        if self.rng.random() < p.cruise_change_per_s * self.dt_s:
            self.cruise_mps = self.rng.uniform(*p.cruise_mps)
        sharpest = road.sharpest_1pm(index, index + int((10 + 2.5 * state.speed_mps) / DS_M))
        bend_mps = math.sqrt(p.comfort_lateral_mps2 / max(sharpest, 1e-6))
        self.meant_mps = float(min(self.cruise_mps, bend_mps))
        return float(clamp(p.speed_gain_per_s * (self.meant_mps - state.speed_mps), -3.5, 2.0))
