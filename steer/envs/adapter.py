"""An environment's actions and images in steer's terms: steering-wheel angle (rad, positive = left),
throttle and brake (0..1), RGB uint8 frames (H, W, 3) as the env renders them, before any crop."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steer.envs.spec import EnvSpec, make_env, resolve
from steer.errors import SteerError


@dataclass
class Controls:
    steering_rad: float
    throttle: float = 0.0
    brake: float = 0.0


class EnvAdapter:
    def __init__(self, spec: EnvSpec, env=None):
        """`env`: one made already (a test's); by default the spec's."""
        self.spec, self.env = spec, env if env is not None else make_env(spec)
        space = self.env.action_space
        if not hasattr(space, "low") or np.ndim(space.low) != 1:
            raise SteerError(f"env {spec.env!r}: its action space {space} is not a vector (a Box): steer steers "
                             "continuously")
        self.low, self.high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
        for name, axis in self._axes().items():
            if not 0 <= axis.index < len(self.low):
                raise SteerError(f"env {spec.env!r}: {name} index {axis.index} is beyond its {len(self.low)} actions")
        where = f"env {spec.name}:"
        self.expert = resolve(spec.expert, spec.folder, f"{where} expert") if spec.expert else None
        self.departure = resolve(spec.departure, spec.folder, f"{where} departure") if spec.departure else None
        self.probes = {name: (resolve(ref, spec.folder, f"{where} signal {name}"), unit)
                       for name, (ref, unit) in spec.signals.items()}
        self.observation = None

    def _axes(self) -> dict:
        names = ("steering", "throttle", "brake", "pedal")
        return {n: getattr(self.spec, n) for n in names if getattr(self.spec, n) is not None}

    def reset(self, seed: int) -> np.ndarray:
        self.observation, _ = self.env.reset(seed=seed)
        return self.frame()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """The next frame, the step's reward and whether the episode ended (terminated or truncated)."""
        self.observation, reward, terminated, truncated, _ = self.env.step(action)
        return self.frame(), float(reward), bool(terminated or truncated)

    def frame(self) -> np.ndarray:
        kind, _, key = self.spec.observation.partition(":")
        image = self.env.render() if kind == "render" else self.observation[key] if key else self.observation
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise SteerError(f"env {self.spec.name}: its {self.spec.observation} is {image.dtype} {image.shape}, not "
                             "an RGB uint8 image (H, W, 3): say where the image is with the spec's observation")
        return image

    def action(self, base: np.ndarray | None = None, steering_rad: float | None = None,
               throttle: float | None = None, brake: float | None = None) -> np.ndarray:
        """An env action: `base` (zeros if None) with the controls given written in, clipped to the action space."""
        a = np.zeros(len(self.low)) if base is None else np.array(base, np.float64)
        s = self.spec
        if steering_rad is not None:
            a[s.steering.index] = steering_rad / (s.steering.sign * s.steering.scale)
        if s.pedal and (throttle is not None or brake is not None):
            a[s.pedal.index] = (throttle or 0.0) - (brake or 0.0)
        for axis, value in ((s.throttle, throttle), (s.brake, brake)):
            if axis and value is not None:
                a[axis.index] = value
        return np.clip(a, self.low, self.high)

    def controls(self, action: np.ndarray) -> Controls:
        """What an env action asks for, in steer's units."""
        s, a = self.spec, np.asarray(action, np.float64)
        steering = float(a[s.steering.index] * s.steering.sign * s.steering.scale)
        if s.pedal:
            return Controls(steering, max(float(a[s.pedal.index]), 0.0), max(-float(a[s.pedal.index]), 0.0))
        return Controls(steering, float(a[s.throttle.index]) if s.throttle else 0.0,
                        float(a[s.brake.index]) if s.brake else 0.0)

    def expert_action(self) -> np.ndarray:
        if self.expert is None:
            raise SteerError(f"env {self.spec.name}: no expert; give one in the spec or with --expert module:callable")
        return np.clip(np.asarray(self.expert(self.env), np.float64), self.low, self.high)

    def departed(self) -> bool | None:
        """Whether the car is off its lane now; None where the spec names no measure."""
        return bool(self.departure(self.env)) if self.departure else None

    def signals(self) -> dict[str, float]:
        return {name: float(probe(self.env)) for name, (probe, _) in self.probes.items()}

    def close(self) -> None:
        self.env.close()
