"""Expert episodes straight into the frame cache, one drive per episode (`<name>-<seed>`), recorded as
stepped: frame i is what the env showed before action i, its time i / fps, its row the controls of
action i and the reward it earned.

DART (Laskey et al. 2017): noise on the executed steering, Ornstein-Uhlenbeck with `std_rad` and
correlation time `tau_s`, so the car strays as a model's would and the frames show the way back. The
expert's clean command is recorded as `steering_meant` (the label training takes by default, as in
steer's world) and the executed one as `steering`; the pedals likewise (`throttle_meant`, `brake_meant`).
Who executes each step is a `Hands`: the expert with DART's noise (or none), or DAgger's mix of the
expert and a model (steer/envs/dagger.py); the label is always the expert's command at the state reached.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from itertools import count
from typing import Callable, Iterator, Protocol

import numpy as np

from steer.data.drive import MEANT, Drive, Signal, out_of_range, range_message
from steer.envs.adapter import Controls, EnvAdapter
from steer.errors import SteerError
from steer.sources.images import fit
from steer.world.driver import ornstein_uhlenbeck

Act = Callable[[np.ndarray, Controls, np.ndarray, float], np.ndarray]  # (expert's action, its controls, frame, t)


class Hands(Protocol):
    """Who executes the steps of a recorded episode, given the expert's action at each state."""

    def start(self, adapter: EnvAdapter, seed: int) -> Act:
        """For one episode: the action executed at each step."""

    def suffix(self) -> str:
        """Of the drive's name, after `<name>-<seed>`."""

    def meta(self) -> dict:
        """Its provenance, in the drive's meta."""


@dataclass(frozen=True)
class Dart:
    """The expert, with Ornstein-Uhlenbeck noise on its steering (std 0: none)."""
    std_rad: float = 0.0
    tau_s: float = 0.5

    def start(self, adapter: EnvAdapter, seed: int) -> Act:
        if not self.std_rad:
            return lambda meant, clean, frame, time_s: meant
        rng, dt, noise = np.random.default_rng([seed, 7]), 1.0 / adapter.spec.fps, [0.0]

        def act(meant, clean, frame, time_s):
            noise[0] = ornstein_uhlenbeck(noise[0], self.std_rad, self.tau_s, dt, rng)
            return adapter.action(meant, steering_rad=clean.steering_rad + noise[0])
        return act

    def suffix(self) -> str:
        return f"-dart{self.std_rad:g}" if self.std_rad else ""

    def meta(self) -> dict:
        return {"dart": asdict(self)}


def record_episode(adapter: EnvAdapter, seed: int, size: tuple[int, int], hands: Hands = Dart(),
                   max_steps: int = 0, limits: dict[str, float] | None = None) -> Drive:
    """One episode from `reset(seed=seed)` until the env ends it (or `max_steps`, if above 0), `hands` at the wheel."""
    spec = adapter.spec
    frame = adapter.reset(seed)
    raw_shape, act = frame.shape, hands.start(adapter, seed)
    frames, rows, ended = [], [], "max_steps"
    for i in count():
        meant = adapter.expert_action()
        clean = adapter.controls(meant)
        action = act(meant, clean, frame, i / spec.fps)
        frames.append(fit(frame, size, spec.crop))
        rows.append({**_controls_row(adapter, action, clean), **adapter.signals(), **_departure_row(adapter)})
        frame, rows[-1]["reward"], done = adapter.step(action)
        if done or (max_steps and i + 1 >= max_steps):
            ended = "done" if done else ended
            break
    signals = _signals(adapter, rows)
    name = f"{spec.name}-{seed}{hands.suffix()}"
    if bad := out_of_range(signals, limits):
        key, row, limit = bad
        raise SteerError(f"drive {name} frame {row}: " + range_message(
            key, signals[key], row, limit, f"with the scale or unit of {key} in env {spec.name}'s spec"))
    meta = {"source": "env", "env": spec.name, "spec": spec.record(), "spec_hash": spec.digest(), "seed": seed,
            "expert": spec.expert, "return": float(signals["reward"].values.sum()), "steps": len(rows),
            "ended": ended, "size": list(size), "crop": list(spec.crop), "fps": spec.fps,
            "source_shape": list(raw_shape[:2]), "gymnasium": _gymnasium(), **hands.meta()}
    return Drive(name, np.stack(frames), np.arange(len(rows)) / spec.fps, signals, meta)


def _controls_row(adapter: EnvAdapter, action: np.ndarray, clean: Controls) -> dict[str, float]:
    """The controls executed, and the expert's (`_meant`) beside them."""
    executed = adapter.controls(action)
    row = {"steering": executed.steering_rad, "steering" + MEANT: clean.steering_rad}
    if adapter.spec.pedal or adapter.spec.throttle:
        row.update(throttle=executed.throttle, brake=executed.brake, throttle_meant=clean.throttle,
                   brake_meant=clean.brake)
    return row


def _departure_row(adapter: EnvAdapter) -> dict[str, float]:
    departed = adapter.departed()
    return {} if departed is None else {"departed": float(departed)}


def _signals(adapter: EnvAdapter, rows: list[dict]) -> dict[str, Signal]:
    units = {"steering": "rad", "throttle": "1", "brake": "1", "reward": "1", "departed": "1",
             **{name: unit for name, (_, unit) in adapter.probes.items()}}
    return {key: Signal(np.array([r[key] for r in rows]), units[key.removesuffix(MEANT)]) for key in rows[0]}


def _gymnasium() -> str | None:
    try:
        return version("gymnasium")
    except PackageNotFoundError:
        return None


def record(adapter: EnvAdapter, seeds: list[int], size: tuple[int, int], hands: Hands = Dart(), max_steps: int = 0,
           limits: dict[str, float] | None = None) -> Iterator[Drive]:
    """Episodes one after another, each made when the cache asks for it (one episode's frames in memory)."""
    for seed in seeds:
        yield record_episode(adapter, seed, size, hands, max_steps, limits)
