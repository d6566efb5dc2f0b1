"""The training loop: truncated backpropagation through time with the state carried across windows,
gradient clipping, validation on held-out drives every epoch, early stopping, resumable checkpoints."""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from steer.allocator import keep_freed_memory
from steer.data.cache import CachedDrive, FrameCache, frames_made, part_of, write_json
from steer.data.exclusions import Exclusions
from steer.data.windows import split_by_drive, split_by_time, stateful_batches, stateless_batches
from steer.durable import check_room
from steer.models import SteerModel, create_model, detach_state, load_model, reset_state
from steer.models.layout import to_channels_last
from steer.models.registry import recover_checkpoint
from steer.models.sequence import autocast, predict_drives
from steer.provenance import versions
from steer.train.augment import Augmenter, check_augment, for_epoch, write_grid
from steer.train.batches import BatchLoader, DeviceBatchLoader, fits_on_device
from steer.train.checkpoint import checkpoints_bytes, load_optimizer, read_run, save_checkpoint
from steer.train.config import TrainConfig, check_model, flag
from steer.train.distributed import World, join, leave
from steer.train.health import Health
from steer.train.precision import resolve_precision
from steer.train.select import WORST, Judge, check_judge, describe, score

RUN_MARKS = ("run.json", "last", "best")  # what makes a folder a run's
# Everything training writes into a run folder; a checkpoint's .tmp and .old are its swap in progress.
RUN_FILES = ("run.json", "history.json", "tb", "augment.png",
             *(f"{checkpoint}{end}" for checkpoint in ("last", "best") for end in ("", ".tmp", ".old")))


def make_optimizer(model: SteerModel, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen encoder stays as it is
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose adam or sgd")


def validation_loss(model: SteerModel, drives: list[CachedDrive], device: str,
                    precision: str = "fp32") -> tuple[float, dict[str, float]]:
    """Mean squared error in normalised units over whole drives, and the RMSE of each target in its units;
    the drives run together as the rows of a batch, each with its own state."""
    preds = np.concatenate(predict_drives(model, drives, device, precision))
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
        raise ValueError("--burn-in is for stateless windows (--no-stateful): stateful training carries the real "
                         "state instead")
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


def _forward(model: torch.nn.Module, frames: torch.Tensor, state, teacher: torch.Tensor, config: TrainConfig):
    """Predictions for the window's frames; a stateless window first runs its burn-in without gradient."""
    if config.stateful or not config.burn_in:
        return model(frames, state if config.stateful else None, teacher)
    with torch.no_grad():
        _, state = model(frames[:, :config.burn_in], None, teacher[:, :config.burn_in])
    return model(frames[:, config.burn_in:], state, teacher[:, config.burn_in:])


def train_epoch(model: SteerModel, net: torch.nn.Module, optimizer: torch.optim.Optimizer, loader: BatchLoader,
                batches: list, config: TrainConfig, world: World, progress: tqdm,
                health: Health | None = None, augment: Augmenter | None = None) -> dict[str, float]:
    """One pass over `batches`; `net` is what runs the forward pass: the model itself, or the model
    compiled and/or wrapped for DDP; `augment` transforms the training frames and their targets."""
    model.train()
    state, losses, norms = None, [], []
    for batch in batches:
        frames, targets, weights, reset = (x.to(config.device) for x in loader.load(world.rows(batch)))
        if augment:
            frames, targets = augment(frames, targets, reset)
        state = reset_state(detach_state(state), ~reset) if config.stateful else None
        teacher = model.normalise(targets)
        with autocast(config.precision, config.device):
            preds, state = _forward(net, frames, state, teacher, config)
        per_row = ((preds.float() - teacher[:, -preds.shape[1]:]) ** 2).mean(dim=(1, 2))
        # DDP averages gradients over ranks: scaled so, the average is the whole global batch's loss
        total_weight = sum(w.weight for w in batch)
        loss = (per_row * weights).sum() * world.size / total_weight
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm))
        if not math.isfinite(norm):
            raise FloatingPointError(f"gradient norm is {norm}: lower the learning rate or the clip norm")
        if health:
            health.step(model, norm, frames, teacher)
        optimizer.step()
        losses.append(world.sum(loss.item()) / world.size)
        norms.append(norm)
        progress.update(int(total_weight) * config.window)
        progress.set_postfix(loss=f"{losses[-1]:.3f}", grad=f"{norm:.2f}")
    norms_arr = np.array(norms)
    return {"loss": float(np.mean(losses)), "grad_norm_mean": float(norms_arr.mean()),
            "grad_norm_max": float(norms_arr.max()),
            "clipped_fraction": float(np.mean(norms_arr > config.clip_grad_norm))}


def _start(config: TrainConfig, cache: FrameCache, train_drives: list[CachedDrive], out: Path, resume: bool):
    """The model, optimizer, first epoch and best score, fresh, from `config.init` or from the last checkpoint."""
    if resume and recover_checkpoint(out / "last").exists():
        model = load_model(out / "last").to(config.device)
        optimizer = make_optimizer(model, config)
        progress = load_optimizer(out / "last", optimizer)
        best = progress.get("best_score", [progress.get("best_val_loss", math.inf)])
        return model, optimizer, progress["epoch"] + 1, best, progress["bad_epochs"]
    if config.init:
        model = initial_model(config)
    else:
        model = create_model(config.model, targets=config.targets, frame_shape=tuple(cache.manifest["frame_shape"]),
                             **config.model_args)
        truth = np.concatenate([d.targets(config.targets) for d in train_drives])
        model.set_target_stats(torch.from_numpy(truth.mean(0)), torch.from_numpy(truth.std(0)))
    model.preprocess = frames_made(cache.manifest, [d.name for d in train_drives])
    model.to(config.device)
    return model, make_optimizer(model, config), 0, WORST, 0


def initial_model(config: TrainConfig) -> SteerModel:
    """The checkpoint `--init` names, refused unless it is the model, targets and options asked for."""
    model = load_model(config.init)
    asked = create_model(config.model, targets=config.targets, frame_shape=model.frame_shape, **config.model_args)
    if type(model) is not type(asked) or model.config() != asked.config():
        raise ValueError(f"--init {config.init}: the checkpoint is {type(model).__name__} {model.config()}, not the "
                         f"--model, --targets and --model-args asked for: give a checkpoint of this model")
    return model


def _split(config: TrainConfig, cache: FrameCache) -> dict[str, list[str]]:
    """Train, validation and test drives. Drives DAgger recorded (steer/drive/dagger.py) are for learning
    only: they join the training part, and the split of the others is the one they had without them."""
    source = {e["name"]: e.get("meta", {}).get("source") for e in cache.manifest["drives"]}
    with_frames = [d for d in cache.drives if len(d.frames)]  # signal-only drives are for analysis
    learnt = [d.name for d in with_frames if source[d.name] == "dagger"]
    with_frames = [d for d in with_frames if source[d.name] != "dagger"]
    if not with_frames:
        raise ValueError(f"the cache at {config.cache} has no drive with frames to train on")
    if config.split_by == "time":
        split = split_by_time({d.name: len(d) for d in with_frames}, tuple(config.split))
    elif config.split_by == "drive":
        split = split_by_drive([d.name for d in with_frames], tuple(config.split), config.seed)
    else:
        raise ValueError(f"split_by must be 'drive' or 'time', not {config.split_by!r}")
    return {**split, "train": split["train"] + sorted(learnt)}


def _net(model: SteerModel, config: TrainConfig, world: World) -> torch.nn.Module:
    """What runs the training forward pass: the model, in channels-last layout, compiled, wrapped for DDP."""
    if config.channels_last:
        to_channels_last(model)
    net = model
    if world.size > 1:
        on_gpu = config.device.startswith("cuda")
        if on_gpu:  # batch statistics over the global batch (NCCL only; on CPU each rank keeps its own)
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = DistributedDataParallel(model, device_ids=[torch.device(config.device).index] if on_gpu else None)
    return torch.compile(net) if config.compile else net


def _loader(model: SteerModel, drives: list[CachedDrive], config: TrainConfig) -> BatchLoader:
    inputs = [model.inputs_of(d) for d in drives]
    targets = [d.targets(config.targets) for d in drives]
    if config.gpu_cache and config.device.startswith("cuda") and fits_on_device(inputs, config.device):
        return DeviceBatchLoader(inputs, targets, span(config), config.device)
    return BatchLoader(inputs, targets, span(config))


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False, judge: Judge | None = None) -> Path:
    """Train as `config` says; returns the run folder, whose `best/` holds the best checkpoint (steer/train/
    select.py: by validation loss, or by `judge`'s closed-loop autonomy). A folder that holds a run already
    is continued (`resume`), replaced (`overwrite`) or refused. Under torchrun, every rank trains and rank 0
    validates and writes. Everything is checked before anything is written: a refused run leaves no trace."""
    check_out(Path(config.out), resume, overwrite)  # before join: no rank has written yet, so all see one folder
    world, device = join(config.device)
    config = replace(config, device=device)
    config.check()
    check_model(config)
    check_judge(config, judge)
    recorded = config.to_dict()  # as asked: an `auto` run resumed elsewhere resolves again
    precision, why = resolve_precision(config.precision, device, config.model)
    config = replace(config, precision=precision)
    if config.batch_size % world.size:
        raise ValueError(f"--batch-size {config.batch_size} does not divide among {world.size} processes: "
                         f"give a multiple of {world.size}")
    torch.manual_seed(config.seed)
    keep_freed_memory()  # called from Python as well as from the CLI: every step reuses the last one's memory
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    cache = FrameCache(config.cache)
    excluded = Exclusions.of(cache.root, cache.manifest)
    split = excluded.split(_split(config, cache))  # the ranges of CACHE/exclusions.json left out
    train_drives, val_drives = ([d.labelled(config.meant) for d in excluded.drives(cache, split[part])]
                                for part in ("train", "val"))
    check_drives(config, train_drives, val_drives)
    if resume:
        check_resumable(config, out, split, cache)
    model, optimizer, first_epoch, best, bad_epochs = _start(config, cache, train_drives, out, resume)
    check_config(config, model)
    check_augment(config, model, train_drives[0])
    if not first_epoch:
        check_room(out, checkpoints_bytes(model, optimizer))
    if overwrite and world.main:
        remove_run(out)
    out.mkdir(parents=True, exist_ok=True)
    if world.main:
        tqdm.write(f"precision {precision} ({why}); keeping the epoch of best {describe(config)}")
        write_json(out / "run.json", {
            "config": recorded, "precision": precision, "processes": world.size, "split": split,
            "data_hashes": cache.hashes(), "exclusions": excluded.record(), "versions": versions(),
            "parameters": sum(p.numel() for p in model.parameters())})
        if config.augment:
            write_grid(out, config, train_drives[0], span(config))
    net, loader = _net(model, config, world), _loader(model, train_drives, config)
    writer = SummaryWriter(str(out / "tb"), purge_step=first_epoch) if world.main else None
    health = Health(config.health_every, config.clip_grad_norm, writer) if config.health_every and world.main else None
    history = json.loads((out / "history.json").read_text())[:first_epoch] if first_epoch else []
    for epoch in range(first_epoch, config.epochs):
        stats = _epoch(epoch, model, net, optimizer, loader, [len(d) for d in train_drives], val_drives,
                       config, world, health, judge)
        history.append({"epoch": epoch, **stats, **({"health": health.epoch(epoch)} if health else {})})
        found = score(config, stats, model)
        improved = found < best
        best, bad_epochs = (found, 0) if improved else (best, bad_epochs + 1)
        if world.main:
            _record(out, model, optimizer, writer, history, improved, best, bad_epochs)
        if bad_epochs >= config.patience:
            tqdm.write(f"no better {describe(config)} for {bad_epochs} epochs: stopping")
            break
    if writer:
        writer.close()
    leave(world)
    return out


def _epoch(epoch: int, model: SteerModel, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
           loader: BatchLoader, lengths: list[int], val_drives: list[CachedDrive], config: TrainConfig,
           world: World, health: Health | None, judge: Judge | None = None) -> dict:
    """One epoch's training steps over drives of `lengths` and its validation pass: losses, gradient
    norms, frames/s, and with a judge the closed-loop scores on its validation roads."""
    torch.manual_seed(config.seed * 100_003 + epoch)  # dropout's draws per epoch: a resumed run repeats them
    batches = _batches(config, lengths, epoch)
    total = sum(int(w.weight) for b in batches for w in b) * config.window
    started = time.perf_counter()
    with tqdm(total=total, unit="frame", unit_scale=True, desc=f"epoch {epoch + 1}/{config.epochs}",
              leave=False, disable=not (world.main and sys.stderr.isatty())) as progress:
        stats = train_epoch(model, net, optimizer, loader, batches, config, world, progress, health,
                            for_epoch(config, epoch, world.rank))
    stats["train_frames"], stats["train_frames_per_s"] = total, total / (time.perf_counter() - started)
    with health.watching(model) if health else nullcontext():
        val_loss, val_rmse = (validation_loss(model, val_drives, config.device, config.precision)
                              if world.main else (0.0, {}))
    stats["val_loss"] = world.from_main(val_loss)
    stats["epoch_frames_per_s"] = total / (time.perf_counter() - started)  # training and validation
    if judge:
        driven = judge(model) if world.main else {}
        stats |= {f"val_{k}": world.from_main(driven.get(k, 0.0)) for k in ("autonomy_pct", "takeovers")}
    return {**stats, **{f"val_rmse_{k}": v for k, v in val_rmse.items()}}


def check_drives(config: TrainConfig, train_drives: list[CachedDrive], val_drives: list[CachedDrive]) -> None:
    """Every drive has the targets, and a training window fits in some training drive."""
    for drive in train_drives + val_drives:
        missing = [t for t in config.targets if t not in drive.signals]
        if missing:
            raise ValueError(f"--targets: drive {drive.name} has no {', '.join(missing)}; it has "
                             f"{', '.join(sorted(drive.signals))}")
    longest = max(len(d) for d in train_drives)
    if span(config) > longest:
        raise ValueError(f"--window {config.window}" + (f" with --burn-in {config.burn_in}" if span(config) >
                         config.window else "") + f" is longer than every training drive (the longest has "
                         f"{longest} frames): give a shorter window")


def check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """A run already in `out` is only written over when asked: it is someone's result."""
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    found = [name for name in RUN_MARKS if (out / name).exists()]
    if found and not (resume or overwrite):
        raise ValueError(f"{out} already holds a run ({', '.join(found)}): continue it with --resume, replace it "
                         "with --overwrite, or train into a new --out")


def remove_run(out: Path) -> None:
    """What an earlier run wrote there, so that none of it mixes with the new run (evaluation outputs are
    left: steer evaluate writes them again)."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def check_resumable(config: TrainConfig, out: Path, split: dict, cache: FrameCache) -> None:
    """--resume continues the same training: the same model, targets, inputs and data, or it is refused."""
    if not recover_checkpoint(out / "last").exists():
        return  # nothing saved yet: a fresh start
    info = read_run(out)
    recorded = info["config"]
    changed = [f"{flag(k)} {json.dumps(getattr(config, k))} (the run has {json.dumps(recorded.get(k))})"
               for k in ("model", "targets", "model_args") if recorded.get(k) != getattr(config, k)]
    used = {part_of(n)[0] for part in (*split.values(), *info["split"].values()) for n in part}
    hashes = cache.hashes()
    drives = sorted(n for n in used if info["data_hashes"].get(n) != hashes.get(n))
    if drives:
        changed.append(f"the data (drive {', '.join(drives)} differ from the run's)")
    elif info["split"] != split:
        changed.append("the split (--split, --split-by, --seed, the cache's drives or its exclusions.json)")
    if changed:
        raise ValueError(f"--resume: {out} was trained otherwise: {'; '.join(changed)}. Resume with the run's "
                         "settings and data, or train into a new --out")


def _record(out: Path, model: SteerModel, optimizer: torch.optim.Optimizer, writer: SummaryWriter,
            history: list[dict], improved: bool, best: list[float], bad_epochs: int) -> None:
    """An epoch's curves, checkpoints and line of output."""
    stats = history[-1]
    for key, value in stats.items():
        if key not in ("epoch", "health"):  # health writes its own
            writer.add_scalar(key.replace("val_", "val/") if key.startswith("val_") else f"train/{key}", value,
                              stats["epoch"])
    writer.flush()  # the curves so far survive a Ctrl-C, which skips the interpreter's teardown
    write_json(out / "history.json", history)  # first: a resume from an older last/ cuts it back
    if improved:
        save_checkpoint(out / "best", model)
    save_checkpoint(out / "last", model, optimizer, {"epoch": stats["epoch"], "best_score": best,
                                                     "bad_epochs": bad_epochs})
    driven = f" autonomy {stats['val_autonomy_pct']:.1f}%" if "val_autonomy_pct" in stats else ""
    tqdm.write(f"epoch {stats['epoch'] + 1}: loss {stats['loss']:.4f} val {stats['val_loss']:.4f}{driven} "
               f"({stats['train_frames_per_s']:.0f} frames/s, grad norm {stats['grad_norm_mean']:.2f})"
               + (" *" if improved else ""))
