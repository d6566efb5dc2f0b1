"""Models by name. Every model shares one contract (see `SteerModel`), so nothing above this package
branches on the kind of model: a new model is one module here plus one `@register_model`."""
from __future__ import annotations

from typing import Callable

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
