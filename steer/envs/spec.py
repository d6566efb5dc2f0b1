"""An environment declared once, as a JSON file of these keys (or an `EnvSpec` made in Python):

    name         what drives recorded in it are called (`<name>-<seed>`); default: the file's stem
    env          a Gymnasium id (`CarRacing-v3`, made with `gymnasium.make`) or `module:factory`
    kwargs       keyword arguments for it (e.g. {"continuous": true})
    observation  where the camera image is: "observation" (the default: the observation is the image),
                 "observation:KEY" (a key of a dict observation) or "render" (env.render(), rgb_array)
    crop         [top, bottom] fractions of the image's height cut away before a model sees it (a dashboard)
    fps          frames per second of the env's steps
    steering     {"index": i, "sign": 1 or -1, "scale": rad per unit}: steer's steering-wheel angle (rad,
                 positive = left) is action[i] * sign * scale
    throttle, brake   {"index": i}, each 0..1 in the action; or
    pedal        {"index": i}: one pedal, -1..1, positive = throttle, negative = brake
    expert       `module:callable` taking the env and returning an action in its own layout
    departure    `module:callable` taking the env, true while the car is off its lane or road
    signals      {"speed": ["module:callable", "m/s"], ...}: more signals per frame, read from the env

`module` is an importable module or a `.py` file, relative to the spec's folder.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from steer.errors import SteerError

GYM_HINT = "pip install -e '.[gym]' (gymnasium[box2d]==1.4.0)"


@dataclass(frozen=True)
class Axis:
    index: int
    sign: float = 1.0
    scale: float = 1.0


@dataclass(frozen=True)
class EnvSpec:
    name: str
    env: str
    steering: Axis
    fps: float
    kwargs: dict = field(default_factory=dict)
    observation: str = "observation"
    crop: tuple[float, float] = (0.0, 0.0)
    throttle: Axis | None = None
    brake: Axis | None = None
    pedal: Axis | None = None
    expert: str | None = None
    departure: str | None = None
    signals: dict[str, tuple[str, str]] = field(default_factory=dict)
    folder: str = "."  # where relative `.py` files are found

    def record(self) -> dict:
        """The spec as a drive's meta holds it: what it was recorded with."""
        return {k: v for k, v in asdict(self).items() if k != "folder"}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.record(), sort_keys=True).encode()).hexdigest()[:16]


KEYS = {"name", "env", "kwargs", "observation", "crop", "fps", "steering", "throttle", "brake", "pedal", "expert",
        "departure", "signals"}


def load_spec(path: str | Path, flag: str = "--env") -> EnvSpec:
    """The spec in a JSON file, every key checked; a wrong one is refused naming the file and the key."""
    from steer.data.cache import read_json_file

    path = Path(path)
    raw = read_json_file(path, flag)
    where = f"{flag} {path}"
    if unknown := sorted(set(raw) - KEYS):
        raise SteerError(f"{where}: unknown keys {unknown}; a spec takes {sorted(KEYS)}")
    for key in ("env", "steering", "fps"):
        if key not in raw:
            raise SteerError(f"{where}: no {key!r}; see steer/envs/spec.py for the keys")
    return spec_of({**raw, "name": raw.get("name", path.stem)}, path.resolve().parent, where)


def spec_of(raw: dict, folder: Path, where: str) -> EnvSpec:
    axes = {k: _axis(raw[k], f"{where}: {k}") for k in ("steering", "throttle", "brake", "pedal") if raw.get(k)}
    if "pedal" in axes and {"throttle", "brake"} & set(axes):
        raise SteerError(f"{where}: give one pedal or throttle and brake, not both")
    crop = tuple(float(v) for v in raw.get("crop", (0.0, 0.0)))
    if len(crop) != 2 or not (0 <= crop[0] < 1 and 0 <= crop[1] < 1 and sum(crop) < 1):
        raise SteerError(f"{where}: crop {raw['crop']} is not [top, bottom], each in [0, 1), together under 1")
    observation = raw.get("observation", "observation")
    if observation not in ("observation", "render") and not observation.startswith("observation:"):
        raise SteerError(f"{where}: observation {observation!r}: give observation, observation:KEY or render")
    if not float(raw["fps"]) > 0:
        raise SteerError(f"{where}: fps {raw['fps']} must be above 0")
    signals = {k: tuple(v) for k, v in raw.get("signals", {}).items()}
    if any(len(v) != 2 for v in signals.values()):
        raise SteerError(f"{where}: signals take NAME: [\"module:callable\", \"unit\"]")
    return EnvSpec(str(raw["name"]), str(raw["env"]), axes["steering"], float(raw["fps"]), dict(raw.get("kwargs", {})),
                   observation, crop, axes.get("throttle"), axes.get("brake"), axes.get("pedal"), raw.get("expert"),
                   raw.get("departure"), signals, str(folder))


AXIS_KEYS = {"index", "sign", "scale"}


def _axis(value: Any, where: str) -> Axis:
    if not isinstance(value, dict) or not isinstance(value.get("index"), int) or set(value) - AXIS_KEYS:
        raise SteerError(f"{where}: expected {{\"index\": N, \"sign\": 1 or -1, \"scale\": S}}, got {value!r}")
    axis = Axis(value["index"], float(value.get("sign", 1)), float(value.get("scale", 1)))
    if axis.sign not in (1.0, -1.0) or not axis.scale > 0:
        raise SteerError(f"{where}: sign is 1 or -1 and scale above 0, got {value!r}")
    return axis


def resolve(reference: str, folder: str | Path, what: str) -> Callable:
    """The callable `module:name`, where module is importable or a `.py` file (relative to `folder`)."""
    module_name, _, name = reference.partition(":")
    if not (module_name and name):
        raise SteerError(f"{what} {reference!r}: give module:callable (or file.py:callable)")
    if module_name.endswith(".py"):
        path = Path(folder) / module_name
        if not path.is_file():
            raise SteerError(f"{what} {reference!r}: no file {path}")
        key = f"steer_env_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
        module = sys.modules.get(key) or _load_file(key, path)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise SteerError(f"{what} {reference!r}: cannot import {module_name} ({error})") from None
    found = getattr(module, name, None)
    if not callable(found):
        raise SteerError(f"{what} {reference!r}: {module_name} has no callable {name}")
    return found


def _load_file(key: str, path: Path):
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


def make_env(spec: EnvSpec):
    """The environment: `module:factory(**kwargs)`, or `gymnasium.make(id, **kwargs)`, which needs gymnasium."""
    render = {"render_mode": "rgb_array"} if spec.observation == "render" else {}
    if ":" in spec.env:
        return resolve(spec.env, spec.folder, "env")(**spec.kwargs, **render)
    try:
        import gymnasium
    except ImportError:
        raise SteerError(f"env {spec.env!r} is a Gymnasium id and gymnasium is not installed: {GYM_HINT}") from None
    try:
        return gymnasium.make(spec.env, **spec.kwargs, **render)
    except gymnasium.error.DependencyNotInstalled as error:
        raise SteerError(f"env {spec.env!r}: {' '.join(str(error).split())[:200]}; {GYM_HINT}") from None
    except gymnasium.error.Error as error:
        raise SteerError(f"env {spec.env!r}: {' '.join(str(error).split())[:200]}") from None
