"""Models by name. Every model shares one contract (see `SteerModel`), so nothing above this package
branches on the kind of model: a new model is one module here plus one `@register_model`."""
from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from typing import Callable

from safetensors import SafetensorError
from safetensors.torch import load_file

from steer.data.cache import file_sha256
from steer.durable import commit
from steer.models.base import SteerModel

MODELS: dict[str, Callable[..., SteerModel]] = {}


def register_model(name: str):
    def add(cls):
        MODELS[name] = cls
        cls.registry_name = name
        return cls
    return add


def create_model(name: str, **kwargs) -> SteerModel:
    """A fresh model of the registered `name` (`pilotnet`, `cnn-lstm`, `komanda`, `features-lstm`, ...), built
    with `kwargs`: `targets`, `frame_shape` (C, H, W) and the model's own options (`model_options(name)`)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


def model_options(name: str) -> list[str]:
    """The keyword arguments a model takes beside its targets and frame shape (what --model-args may set)."""
    return [p for p in inspect.signature(MODELS[name]).parameters if p not in ("targets", "frame_shape")]


def recover_checkpoint(folder: str | Path) -> Path:
    """A checkpoint is swapped in by two renames (folder -> folder.old, folder.tmp -> folder); an
    interruption between them leaves no folder. Finish the swap where the new one is complete (its
    model.json, written last, is there), else put the old one back: never delete a checkpoint. An
    interruption after both, while the old one was being removed, leaves it beside the new: removed here
    (where the disk lets it: a read-only copy still loads)."""
    folder = Path(folder)
    old, tmp = folder.with_name(folder.name + ".old"), folder.with_name(folder.name + ".tmp")
    if folder.exists():
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
        return folder
    if not old.exists():
        return folder
    if (tmp / "model.json").exists():
        commit(tmp, folder)
        shutil.rmtree(old)
    else:
        commit(old, folder)
    return folder


def read_spec(folder: Path) -> dict:
    """A checkpoint's model.json, checked: parsable, complete, and its weights' sha256 matching."""
    path = folder / "model.json"
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a checkpoint: model.json is missing")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}): use another checkpoint or train again") from None
    missing = [key for key in ("name", "config") if key not in (spec if isinstance(spec, dict) else {})]
    if missing:
        raise ValueError(f"{path} has no {', '.join(missing)}: not a steer checkpoint, or damaged")
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"{weights} is missing: the checkpoint is incomplete")
    if "sha256" in spec and file_sha256(weights) != spec["sha256"]:  # checkpoints before it was recorded: no check
        raise ValueError(f"{weights} does not match the sha256 recorded in model.json: the weights are damaged; "
                         "use another checkpoint (best or last) or train again")
    return spec


def load_model(folder: str | Path, map_location: str = "cpu") -> SteerModel:
    """The model a checkpoint folder holds (`model.json` and `model.safetensors`), its weights checked
    against the sha256 `model.json` records; a checkpoint left between its two renames is finished first."""
    folder = recover_checkpoint(folder)
    spec = read_spec(folder)
    try:
        model = create_model(spec["name"], **spec["config"])
        model.load_state_dict(load_file(folder / "model.safetensors", device=map_location))
        model.preprocess = spec.get("preprocess")
    except (SafetensorError, RuntimeError, TypeError, ValueError, KeyError, AttributeError) as error:
        # weights of another shape, or a model.json naming a model or options that do not build
        raise ValueError(f"{folder}: the checkpoint does not load ({' '.join(str(error).split())[:300]})") from None
    return model
