"""Models by name. Every model shares one contract (see `SteerModel`), so nothing above this package
branches on the kind of model: a new model is one module here plus one `@register_model`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from safetensors.torch import load_file

from steer.models.base import SteerModel

MODELS: dict[str, Callable[..., SteerModel]] = {}


def register_model(name: str):
    def add(cls):
        MODELS[name] = cls
        cls.registry_name = name
        return cls
    return add


def create_model(name: str, **kwargs) -> SteerModel:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


def load_model(folder: str | Path, map_location: str = "cpu") -> SteerModel:
    folder = Path(folder)
    if not (folder / "model.json").exists():
        raise FileNotFoundError(f"{folder} is not a checkpoint: model.json is missing")
    spec = json.loads((folder / "model.json").read_text())
    model = create_model(spec["name"], **spec["config"])
    model.load_state_dict(load_file(folder / "model.safetensors", device=map_location))
    return model
