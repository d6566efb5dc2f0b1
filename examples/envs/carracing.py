"""CarRacing-v3 for `steer record` and `steer drive --env` (examples/envs/carracing.json declares it): an
expert that drives by pure pursuit on the track's centre line, the car's speed and whether it has
left the road, each read from `env.unwrapped` (the track, the car's Box2D body).

The expert steers the front wheels toward a point `LOOKAHEAD` track points ahead (pure pursuit: the
arc through that point), and holds a target speed that drops where the track ahead turns.
"""
from __future__ import annotations

import numpy as np

WHEELBASE = 3.24  # between CarRacing's front and rear wheel positions (162 units at SIZE 0.02)
LOOKAHEAD = 5  # track points ahead of the nearest one (3.5 m apart): the pursued point
SPEED_FAST, SPEED_SLOW = 110.0, 40.0  # target speed on straights and in the sharpest bends (Box2D m/s)
BEND_AHEAD = 20  # track points ahead over which the bend is measured
BEND_FULL = 1.0  # a heading change (rad) over those points that calls for the slow speed
STEER_GAIN = 2.0  # the wheels turn toward the action at a limited rate: ask for more than the arc needs
HALF_WIDTH = 40 / 6.0  # CarRacing's TRACK_WIDTH: the road's half width


def _car(env):
    car = env.unwrapped.car
    x, y = car.hull.position
    return car, np.array([x, y]), float(car.hull.angle)


def _track(env) -> np.ndarray:
    """(N, 2) centre-line points of the track (x, y), in driving order."""
    return np.array([(p[2], p[3]) for p in env.unwrapped.track])


def _nearest(env) -> tuple[np.ndarray, int, float]:
    track = _track(env)
    _, xy, _ = _car(env)
    distances = np.hypot(*(track - xy).T)
    index = int(np.argmin(distances))
    return track, index, float(distances[index])


def speed(env) -> float:
    """The car's speed (Box2D m/s), as the dashboard's bar shows it."""
    return float(np.hypot(*env.unwrapped.car.hull.linearVelocity))


def off_track(env) -> bool:
    """Whether the car's centre is beyond the road's edge (nearer no centre-line segment than half its width)."""
    track, index, _ = _nearest(env)
    _, xy, _ = _car(env)
    near = [track[(index + k) % len(track)] for k in (-1, 0, 1)]
    return min(_to_segment(xy, a, b) for a, b in zip(near, near[1:])) > HALF_WIDTH


def _to_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-9), 0.0, 1.0)
    return float(np.hypot(*(p - a - t * ab)))


def expert(env) -> np.ndarray:
    """CarRacing's action [steer (-1..1, positive = right), gas, brake] by pure pursuit and a bend-aware speed."""
    track, index, _ = _nearest(env)
    _, xy, yaw = _car(env)
    dx, dy = track[(index + LOOKAHEAD) % len(track)] - xy
    right = dx * np.cos(yaw) + dy * np.sin(yaw)  # the car's +x axis is its right, +y its forward
    forward = -dx * np.sin(yaw) + dy * np.cos(yaw)
    alpha = np.arctan2(right, forward)
    steer = np.arctan2(2 * WHEELBASE * np.sin(alpha), np.hypot(dx, dy))
    headings = [np.arctan2(*(track[(index + k + 1) % len(track)] - track[(index + k) % len(track)])[::-1])
                for k in (0, BEND_AHEAD)]
    bend = abs((headings[1] - headings[0] + np.pi) % (2 * np.pi) - np.pi)
    target = SPEED_FAST - (SPEED_FAST - SPEED_SLOW) * min(bend / BEND_FULL, 1.0)
    error = target - speed(env)
    return np.array([np.clip(STEER_GAIN * steer, -1, 1), np.clip(0.1 * error, 0, 1), np.clip(-0.05 * error, 0, 0.8)])
