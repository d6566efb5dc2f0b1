"""Writing checkpoints without pickle: safetensors for tensors, JSON for everything else (a model is
loaded beside `create_model`, by `steer.models.load_model`).

    <dir>/model.safetensors    weights and buffers (target statistics included)
    <dir>/model.json           registry name and the keyword arguments that rebuild the model
    <dir>/optimizer.safetensors, <dir>/progress.json    only in resumable checkpoints

A checkpoint is written into a temporary folder and swapped in by rename, so a crash mid-write
leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from steer.models import SteerModel


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {f"{pid}.{key}": value.detach().cpu().contiguous() if torch.is_tensor(value) else torch.tensor(value)
               for pid, slots in sd["state"].items() for key, value in slots.items()}
    return tensors, sd["param_groups"]


def save_checkpoint(folder: str | Path, model: SteerModel, optimizer: torch.optim.Optimizer | None = None,
                    progress: dict | None = None) -> None:
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, tmp / "model.safetensors")
    (tmp / "model.json").write_text(json.dumps({"name": model.registry_name, "config": model.config()}, indent=1))
    if optimizer is not None:
        tensors, groups = _optimizer_tensors(optimizer)
        save_file(tensors, tmp / "optimizer.safetensors")
        (tmp / "progress.json").write_text(json.dumps({**(progress or {}), "param_groups": groups}, indent=1))
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_optimizer(folder: str | Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimizer saved beside a checkpoint; returns the saved progress."""
    folder = Path(folder)
    progress = json.loads((folder / "progress.json").read_text())
    state: dict[int, dict] = {}
    for key, value in load_file(folder / "optimizer.safetensors").items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": progress.pop("param_groups")})
    return progress
