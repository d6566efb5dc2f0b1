"""Writing checkpoints without pickle: safetensors for tensors, JSON for everything else (a model is
loaded beside `create_model`, by `steer.models.load_model`, which checks the weights' sha256).

    <dir>/model.safetensors    weights and buffers (target statistics included)
    <dir>/model.json           registry name, the keyword arguments that rebuild the model, sha256 of the weights
    <dir>/optimizer.safetensors, <dir>/progress.json    only in resumable checkpoints (progress holds its sha256)

A checkpoint is written into a temporary folder, model.json last, and swapped in by two renames
(folder -> .old, .tmp -> folder): a crash mid-write leaves the previous checkpoint intact, and one
between the renames is finished or undone at the next load, which also removes an .old left by one
after them (`recover_checkpoint`).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from steer.data.cache import file_sha256
from steer.durable import check_room, commit, room_in
from steer.errors import SteerError
from steer.models import SteerModel
from steer.models.registry import recover_checkpoint


def read_run(run: str | Path) -> dict:
    """A run folder's run.json (config, split, data hashes, versions); refused, naming it, where absent or damaged."""
    path = Path(run) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{run} is not a run folder: run.json is missing (steer train writes it)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}): train the run again (--overwrite)") from None


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {f"{pid}.{key}": value.detach().cpu().contiguous() if torch.is_tensor(value) else torch.tensor(value)
               for pid, slots in sd["state"].items() for key, value in slots.items()}
    return tensors, sd["param_groups"]


def checkpoints_bytes(model: SteerModel, optimizer: torch.optim.Optimizer) -> int:
    """The most bytes a fresh run's checkpoints hold at once: best, last, and the next last while it is
    swapped in; each last with the optimizer's state (Adam keeps two tensors per trained parameter, SGD one)."""
    weights = sum(v.nbytes for v in model.state_dict().values())
    trained = sum(p.nbytes for group in optimizer.param_groups for p in group["params"])
    slots = 2 if isinstance(optimizer, torch.optim.Adam) else 1
    return 3 * weights + 2 * slots * trained


def save_checkpoint(folder: str | Path, model: SteerModel, optimizer: torch.optim.Optimizer | None = None,
                    progress: dict | None = None) -> None:
    """Write a checkpoint (resumable with `optimizer`) into `folder` beside the one it replaces, then swap
    it in (see the module's docstring); refused, leaving the old one, where the disk cannot hold both."""
    folder = recover_checkpoint(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors, groups = _optimizer_tensors(optimizer) if optimizer is not None else ({}, [])
    check_room(folder.parent, sum(v.nbytes for v in [*weights.values(), *tensors.values()]))
    try:
        with room_in(folder.parent):
            tmp.mkdir(parents=True)
            _write(tmp, model, weights, (tensors, groups) if optimizer is not None else None, progress)
    except BaseException:  # Ctrl-C or a full disk: no half-written folder left beside the checkpoint
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = folder.with_name(folder.name + ".old")
    commit(tmp, folder, old)
    shutil.rmtree(old, ignore_errors=True)


def _write(tmp: Path, model: SteerModel, weights: dict[str, torch.Tensor],
           optimizer_state: tuple[dict[str, torch.Tensor], list[dict]] | None, progress: dict | None) -> None:
    # safetensors' bytes written by Python, not save_file: a full disk is then an OSError like any other write's
    (tmp / "model.safetensors").write_bytes(save(weights))
    if optimizer_state is not None:
        tensors, groups = optimizer_state
        (tmp / "optimizer.safetensors").write_bytes(save(tensors))
        (tmp / "progress.json").write_text(json.dumps({**(progress or {}), "param_groups": groups,
                                                       "sha256": file_sha256(tmp / "optimizer.safetensors")}, indent=1))
    spec = {"name": model.registry_name, "config": model.config(), "sha256": file_sha256(tmp / "model.safetensors"),
            **({"preprocess": model.preprocess} if model.preprocess else {})}
    (tmp / "model.json").write_text(json.dumps(spec, indent=1))  # last: its presence marks the folder complete


def load_optimizer(folder: str | Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimizer saved beside a checkpoint; returns the saved progress."""
    folder = recover_checkpoint(folder)
    path, tensors = folder / "progress.json", folder / "optimizer.safetensors"
    try:
        progress = json.loads(path.read_text())
        if "sha256" in progress and file_sha256(tensors) != progress.pop("sha256"):
            raise SteerError(f"{tensors} does not match the sha256 recorded in {path.name}: the optimizer state is "
                             "damaged; train it again with --overwrite")
        state: dict[int, dict] = {}
        for key, value in load_file(tensors).items():
            pid, name = key.split(".", 1)
            state.setdefault(int(pid), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": progress.pop("param_groups")})
    except (ValueError, SafetensorError, KeyError, RuntimeError, TypeError, AttributeError, IndexError) as error:
        # damaged text, or JSON of another shape than the optimizer's (torch's words, kept short)
        raise ValueError(f"{folder}: the optimizer state does not load ({' '.join(str(error).split())[:200]}); "
                         "train it again with --overwrite") from None
    return progress
