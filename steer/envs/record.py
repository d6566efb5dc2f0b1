"""Expert episodes straight into the frame cache, one drive per episode (`<name>-<seed>`), recorded as
stepped: frame i is what the env showed before action i, its time i / fps, its row the controls of
action i and the reward it earned.

DART (Laskey et al. 2017): noise on the executed steering, Ornstein-Uhlenbeck with `std_rad` and
correlation time `tau_s`, so the car strays as a model's would and the frames show the way back. The
expert's clean command is recorded as `steering_meant` (the label training takes by default, as in
steer's world) and the executed one as `steering`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from itertools import count
from typing import Iterator

import numpy as np

from steer.data.drive import MEANT, Drive, Signal, out_of_range, range_message
from steer.envs.adapter import EnvAdapter
from steer.errors import SteerError
from steer.sources.images import fit
from steer.world.driver import ornstein_uhlenbeck


@dataclass(frozen=True)
class Dart:
    std_rad: float = 0.0  # 0: no noise
    tau_s: float = 0.5


def drive_name(name: str, seed: int, dart: Dart) -> str:
    return f"{name}-{seed}" + (f"-dart{dart.std_rad:g}" if dart.std_rad else "")


def record_episode(adapter: EnvAdapter, seed: int, size: tuple[int, int], dart: Dart = Dart(),
                   max_steps: int = 0, limits: dict[str, float] | None = None) -> Drive:
    """One expert episode from `reset(seed=seed)` until the env ends it (or `max_steps`, if above 0)."""
    spec, dt = adapter.spec, 1.0 / adapter.spec.fps
    frame = adapter.reset(seed)
    raw_shape, rng, noise = frame.shape, np.random.default_rng([seed, 7]), 0.0
    frames, rows, ended = [], [], "max_steps"
    for i in count():
        meant = adapter.expert_action()
        clean = adapter.controls(meant)
        if dart.std_rad:
            noise = ornstein_uhlenbeck(noise, dart.std_rad, dart.tau_s, dt, rng)
        action = adapter.action(meant, steering_rad=clean.steering_rad + noise) if dart.std_rad else meant
        frames.append(fit(frame, size, spec.crop))
        rows.append({**_controls_row(adapter, action), "steering" + MEANT: clean.steering_rad, **adapter.signals(),
                     **_departure_row(adapter)})
        frame, rows[-1]["reward"], done = adapter.step(action)
        if done or (max_steps and i + 1 >= max_steps):
            ended = "done" if done else ended
            break
    signals = _signals(adapter, rows)
    name = drive_name(spec.name, seed, dart)
    if bad := out_of_range(signals, limits):
        key, row, limit = bad
        raise SteerError(f"drive {name} frame {row}: " + range_message(
            key, signals[key], row, limit, f"with the scale or unit of {key} in env {spec.name}'s spec"))
    meta = {"source": "env", "env": spec.name, "spec": spec.record(), "spec_hash": spec.digest(), "seed": seed,
            "expert": spec.expert, "dart": asdict(dart), "return": float(signals["reward"].values.sum()),
            "steps": len(rows), "ended": ended, "size": list(size), "crop": list(spec.crop), "fps": spec.fps,
            "source_shape": list(raw_shape[:2]), "gymnasium": _gymnasium()}
    return Drive(name, np.stack(frames), np.arange(len(rows)) / spec.fps, signals, meta)


def _controls_row(adapter: EnvAdapter, action: np.ndarray) -> dict[str, float]:
    executed = adapter.controls(action)
    pedals = {"throttle": executed.throttle, "brake": executed.brake} if adapter.spec.pedal or adapter.spec.throttle \
        else {}
    return {"steering": executed.steering_rad, **pedals}


def _departure_row(adapter: EnvAdapter) -> dict[str, float]:
    departed = adapter.departed()
    return {} if departed is None else {"departed": float(departed)}


def _signals(adapter: EnvAdapter, rows: list[dict]) -> dict[str, Signal]:
    units = {"steering": "rad", "steering" + MEANT: "rad", "throttle": "1", "brake": "1", "reward": "1",
             "departed": "1", **{name: unit for name, (_, unit) in adapter.probes.items()}}
    return {key: Signal(np.array([r[key] for r in rows]), units[key]) for key in rows[0]}


def _gymnasium() -> str | None:
    try:
        return version("gymnasium")
    except PackageNotFoundError:
        return None


def record(adapter: EnvAdapter, seeds: list[int], size: tuple[int, int], dart: Dart = Dart(), max_steps: int = 0,
           limits: dict[str, float] | None = None) -> Iterator[Drive]:
    """Episodes one after another, each made when the cache asks for it (one episode's frames in memory)."""
    for seed in seeds:
        yield record_episode(adapter, seed, size, dart, max_steps, limits)
