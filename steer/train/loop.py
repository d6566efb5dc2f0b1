"""The training loop: truncated backpropagation through time with the state carried across windows,
gradient clipping, validation on held-out drives every epoch, early stopping, resumable checkpoints."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from steer.data.cache import CachedDrive, FrameCache
from steer.data.windows import split_by_drive, split_by_time, stateful_batches, stateless_batches
from steer.models import SteerModel, create_model, detach_state, reset_state
from steer.models.sequence import predict_sequence
from steer.provenance import versions
from steer.train.batches import BatchLoader
from steer.train.checkpoint import load_model, load_optimizer, save_checkpoint
from steer.train.config import TrainConfig


def make_optimizer(model: SteerModel, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen encoder stays as it is
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose adam or sgd")


def validation_loss(model: SteerModel, drives: list[CachedDrive], device: str) -> tuple[float, dict[str, float]]:
    """Mean squared error in normalised units over whole drives, and the RMSE of each target in its units."""
    preds = np.concatenate([predict_sequence(model, model.inputs_of(d), device=device) for d in drives])
    truth = np.concatenate([d.targets(model.targets) for d in drives])
    std = model.target_std.cpu().numpy()
    loss = float(np.mean(((preds - truth) / std) ** 2))
    rmse = np.sqrt(np.mean((preds - truth) ** 2, axis=0))
    return loss, dict(zip(model.targets, rmse.tolist()))


def check_config(config: TrainConfig, model: SteerModel) -> None:
    """Combinations of options that would train something other than what was asked."""
    if config.stateful and not model.streamable:
        raise ValueError("a bidirectional model sees the future of its window, so its state cannot be carried "
                         "from window to window: train it stateless (--no-stateful)")
    if config.stateful and config.burn_in:
        raise ValueError("burn_in is for stateless windows: stateful training carries the real state instead")
    if model.carries_frame and not config.stateful and config.window + config.burn_in < 2:
        raise ValueError("this model looks at frame differences, which a lone frame does not have: use "
                         "stateful training, a window of 2 or more, or a burn-in")


def span(config: TrainConfig) -> int:
    """Frames a batch row holds: the window, after the burn-in of a stateless window."""
    return config.window + (0 if config.stateful else config.burn_in)


def _batches(config: TrainConfig, lengths: list[int], epoch: int):
    rng = np.random.default_rng([config.seed, epoch])  # per epoch, so a resumed run sees the same order
    if config.stateful:
        return stateful_batches(lengths, config.window, config.batch_size, rng)
    return stateless_batches(lengths, span(config), config.stride, config.batch_size, rng)


def _forward(model: SteerModel, frames: torch.Tensor, state, teacher: torch.Tensor, config: TrainConfig):
    """Predictions for the window's frames; a stateless window first runs its burn-in without gradient."""
    if config.stateful or not config.burn_in:
        return model(frames, state if config.stateful else None, teacher)
    with torch.no_grad():
        _, state = model(frames[:, :config.burn_in], None, teacher[:, :config.burn_in])
    return model(frames[:, config.burn_in:], state, teacher[:, config.burn_in:])


def train_epoch(model: SteerModel, optimizer: torch.optim.Optimizer, loader: BatchLoader, batches: list,
                config: TrainConfig, progress: tqdm) -> dict[str, float]:
    model.train()
    state, losses, norms = None, [], []
    for batch in batches:
        frames, targets, weights, reset = (x.to(config.device) for x in loader.load(batch))
        state = reset_state(detach_state(state), ~reset) if config.stateful else None
        teacher = model.normalise(targets)
        preds, state = _forward(model, frames, state, teacher, config)
        per_row = ((preds - teacher[:, -preds.shape[1]:]) ** 2).mean(dim=(1, 2))
        loss = (per_row * weights).sum() / weights.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm))
        if not math.isfinite(norm):
            raise FloatingPointError(f"gradient norm is {norm}: lower the learning rate or the clip norm")
        optimizer.step()
        losses.append(loss.item())
        norms.append(norm)
        progress.update(int(weights.sum()) * config.window)
        progress.set_postfix(loss=f"{losses[-1]:.3f}", grad=f"{norm:.2f}")
    norms_arr = np.array(norms)
    return {"loss": float(np.mean(losses)), "grad_norm_mean": float(norms_arr.mean()),
            "grad_norm_max": float(norms_arr.max()),
            "clipped_fraction": float(np.mean(norms_arr > config.clip_grad_norm))}


def _start(config: TrainConfig, cache: FrameCache, train_drives: list[CachedDrive], out: Path, resume: bool):
    """The model, optimizer, first epoch and best validation loss, fresh or from the last checkpoint."""
    if resume and (out / "last").exists():
        model = load_model(out / "last").to(config.device)
        optimizer = make_optimizer(model, config)
        progress = load_optimizer(out / "last", optimizer)
        return model, optimizer, progress["epoch"] + 1, progress["best_val_loss"], progress["bad_epochs"]
    model = create_model(config.model, targets=config.targets, frame_shape=tuple(cache.manifest["frame_shape"]),
                         **config.model_args)
    truth = np.concatenate([d.targets(config.targets) for d in train_drives])
    model.set_target_stats(torch.from_numpy(truth.mean(0)), torch.from_numpy(truth.std(0)))
    model.to(config.device)
    return model, make_optimizer(model, config), 0, math.inf, 0


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train as `config` says; returns the run folder, whose `best/` holds the best checkpoint."""
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = FrameCache(config.cache)
    with_frames = [d for d in cache.drives if len(d.frames)]  # signal-only drives are for analysis
    if not with_frames:
        raise ValueError(f"the cache at {config.cache} has no drive with frames to train on")
    if config.split_by == "time":
        split = split_by_time({d.name: len(d) for d in with_frames}, tuple(config.split))
    elif config.split_by == "drive":
        split = split_by_drive([d.name for d in with_frames], tuple(config.split), config.seed)
    else:
        raise ValueError(f"split_by must be 'drive' or 'time', not {config.split_by!r}")
    train_drives, val_drives = cache.by_name(split["train"]), cache.by_name(split["val"])
    model, optimizer, first_epoch, best, bad_epochs = _start(config, cache, train_drives, out, resume)
    check_config(config, model)
    (out / "run.json").write_text(json.dumps({
        "config": config.to_dict(), "split": split, "data_hashes": cache.hashes(), "versions": versions(),
        "parameters": sum(p.numel() for p in model.parameters())}, indent=1))
    loader = BatchLoader([model.inputs_of(d) for d in train_drives], [d.targets(config.targets) for d in train_drives],
                         span(config))
    lengths = [len(d) for d in train_drives]
    writer = SummaryWriter(str(out / "tb"), purge_step=first_epoch)
    history = json.loads((out / "history.json").read_text()) if first_epoch else []
    history = history[:first_epoch]
    for epoch in range(first_epoch, config.epochs):
        batches = _batches(config, lengths, epoch)
        total = sum(int(w.weight) for b in batches for w in b) * config.window
        started = time.perf_counter()
        with tqdm(total=total, unit="frame", unit_scale=True, desc=f"epoch {epoch + 1}/{config.epochs}",
                  leave=False) as progress:
            stats = train_epoch(model, optimizer, loader, batches, config, progress)
        stats["frames_per_s"] = total / (time.perf_counter() - started)
        stats["val_loss"], val_rmse = validation_loss(model, val_drives, config.device)
        stats.update({f"val_rmse_{k}": v for k, v in val_rmse.items()})
        for key, value in stats.items():
            writer.add_scalar(key.replace("val_", "val/") if key.startswith("val_") else f"train/{key}", value, epoch)
        history.append({"epoch": epoch, **stats})
        improved = stats["val_loss"] < best
        best, bad_epochs = (stats["val_loss"], 0) if improved else (best, bad_epochs + 1)
        if improved:
            save_checkpoint(out / "best", model)
        save_checkpoint(out / "last", model, optimizer,
                        {"epoch": epoch, "best_val_loss": best, "bad_epochs": bad_epochs})
        (out / "history.json").write_text(json.dumps(history, indent=1))
        tqdm.write(f"epoch {epoch + 1}: loss {stats['loss']:.4f} val {stats['val_loss']:.4f} "
                   f"({stats['frames_per_s']:.0f} frames/s, grad norm {stats['grad_norm_mean']:.2f})"
                   + (" *" if improved else ""))
        if bad_epochs >= config.patience:
            tqdm.write(f"no better validation loss for {bad_epochs} epochs: stopping")
            break
    writer.close()
    return out
