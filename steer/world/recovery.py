"""Recovery views, NVIDIA's cure for drift: frames rendered from the car shifted sideways and turned, as
it would see the road had it drifted, each labelled with the steering that brings it back.

Recovery runs are the same displacement made real for a model that reads motion: the car itself is
moved sideways and turned, and for one to two seconds the expert has the wheel (the label rule below at
each state, no delay and no wander, at the hands' rate), so the frames that follow are a continuous run
of the car coming back, each labelled with that command. Only the run's first frame jumps.

The label rule of a view: the steering-wheel angle that puts the car (rear axle, kinematic bicycle) on a circle
through the lane centre `back_s` seconds ahead at its speed (at least `MIN_BACK_M`): pure pursuit, the
world driver's own rule, with the look-ahead set by the time allowed to recover. Held, it brings the car
back to the lane centre in `back_s`; a car left of its lane gets a right (negative) wheel, and the
further off, the larger.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from steer.world.car import CarParams, CarState
from steer.world.driver import pure_pursuit
from steer.world.road import Road

MIN_BACK_M = 4.0  # a slow car still aims a few metres ahead, not under its own wheels


@dataclass
class RecoveryParams:
    rate: float = 0.0  # chance that a frame of a drive is a recovery view instead (0: none)
    shift_m: tuple[float, float] = (0.5, 1.5)  # sideways, either side
    turn_deg: float = 5.0  # heading turned by up to this, either side
    back_s: float = 1.0  # the label brings the car back to its lane centre in this time
    run_rate: float = 0.0  # chance per frame, outside a run, that a recovery run starts (0: none)
    run_s: tuple[float, float] = (1.0, 2.0)  # how long the expert brings the car back
    run_back_s: float = 0.5  # the look-ahead of its label in a run (re-aimed every step: within 0.1 m in 1.2 s)


@dataclass
class Run:
    start: int  # the frame where the car is displaced
    end: int  # the first frame after the run
    shift_m: float
    turn_rad: float


class RecoveryRuns:
    """Which recovery run, if any, each frame of a drive belongs to, drawn from the drive's own generator."""

    def __init__(self, params: RecoveryParams, rng: np.random.Generator, fps: float):
        self.params, self.rng, self.fps, self.run = params, rng, fps, None

    def at(self, i: int) -> Run | None:
        if self.run and i < self.run.end:
            return self.run
        self.run = None
        if self.params.run_rate and self.rng.random() < self.params.run_rate:
            shift, turn = draw_view(self.rng, self.params)
            self.run = Run(i, i + max(1, round(self.rng.uniform(*self.params.run_s) * self.fps)), shift, turn)
        return self.run


def recovery_wheel(state: CarState, road: Road, index: int, back_s: float, lane_offset_m: float,
                   car: CarParams) -> float:
    """The label of a view from `state` (nearest road sample `index`): see the module's docstring."""
    return pure_pursuit(state, road, index, max(state.speed_mps * back_s, MIN_BACK_M), lane_offset_m, car)


def shifted(state: CarState, road: Road, index: int, shift_left_m: float, turn_rad: float) -> CarState:
    """The car moved `shift_left_m` across the road (positive = left) and turned by `turn_rad`."""
    h = road.heading_rad[index]
    return CarState(state.x_m - shift_left_m * math.sin(h), state.y_m + shift_left_m * math.cos(h),
                    state.yaw_rad + turn_rad, state.speed_mps)


def draw_view(rng: np.random.Generator, params: RecoveryParams) -> tuple[float, float]:
    """A random shift (m, either side) and turn (rad) within the params' ranges."""
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(*params.shift_m)), \
        float(np.radians(rng.uniform(-params.turn_deg, params.turn_deg)))
