"""Training frames/s of each model as `steer train` runs it by default, beside the limit: the same
model's fastest configuration on the same device on batches already in memory (no data path at all),
and beside today's fp32 eager path, all measured in the same run; on the CPU and, where one is
present, on the GPU.

    .venv/bin/python bench/train.py [--steps 4 --rounds 5] [--threads 2] [--compile]

`default` is `steer train` with its default settings (`TrainConfig()`: precision `auto`, resolved
on this device, channels-last and compile as the config says) through its data path: batches
gathered from the memory-mapped cache (frames, or for features-lstm the stored features) into a
reused buffer and copied to the device, or, on a GPU the inputs fit on, gathered there. `fp32` is
the same path at fp32, channels-first, eager: what `steer train` did before `auto`. `augment` is the
default path with `--augment` at its default strengths (a new draw for every window, as stateless
training draws; none for features-lstm, whose inputs are stored features). The limit is the
fastest of fp32 and bf16, each channels-first and channels-last, on batches held in memory (all of
them gathered beforehand, a new one each step, so the limit touches new data as training does); with
`--compile` also each of those compiled (minutes of compiling per model on a 2-core CPU).

Every configuration steps `--steps` times in turn, `--rounds` times over, so all see the machine in
the same state; each rate is the median over rounds.

`fit` is `steer train` at the demo's settings on the demo's world (`--fit-drives` drives of 200 frames; the
demo's own epochs for pilotnet and cnn-lstm, the defaults for the others) in a process of its own: its
training frames over the wall-clock time of `train()` (opening the cache, the first optimiser's import of
torch's dynamo, every epoch's steps and validation over whole drives, checkpoints, TensorBoard);
`fit/steps` sets it beside the training steps' frames/s that the same fit records in its history.json, and
beside it the same ratio less the import of torch._dynamo (imported, and timed, just before `train()`: torch's
optimisers import it on their first use in any process, 1.2-1.4 s on 2 cores, whatever trains); `start-up`
is the process's imports before `train()` and `process/steps` counts them in.
"""
from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from steer.allocator import keep_freed_memory
from steer.data.cache import FrameCache
from steer.data.windows import stateless_batches
from steer.demo import DEMO_MODELS
from steer.models import MODELS, create_model
from steer.models.layout import to_channels_last
from steer.models.sequence import autocast
from steer.train.augment import STRENGTHS, Augmenter, generator
from steer.train.batches import BatchLoader, DeviceBatchLoader
from steer.train.config import TrainConfig
from steer.train.precision import resolve_precision
from steer.world.simulate import WorldConfig, generate_drives

TARGETS = ["steering", "speed", "throttle"]
SHAPES = {"pilotnet": (32, 1)}  # (batch, window); temporal models (16, 8), as the demo trains them


@dataclass(frozen=True)
class Setting:
    precision: str  # resolved: fp32 or bf16
    channels_last: bool
    compile: bool

    def __str__(self) -> str:
        return "+".join([self.precision] + ["cl"] * self.channels_last + ["compiled"] * self.compile)


def _stepper(name: str, setting: Setting, device: str):
    """One training step of a fresh model (seed 0) in `setting`: forward, loss, backward, clip, Adam."""
    torch.manual_seed(0)
    model = create_model(name, targets=TARGETS).to(device)
    if setting.channels_last:
        to_channels_last(model)
    net = torch.compile(model) if setting.compile else model
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)

    def step(frames: torch.Tensor, targets: torch.Tensor) -> None:
        with autocast(setting.precision, device):
            preds, _ = net(frames, None)
        loss = ((preds.float() - model.normalise(targets)) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return step


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rates(runs: dict[str, tuple], batches: list, steps: int, rounds: int, device: str) -> dict[str, float]:
    """Median frames/s of each run (step, load) over `rounds` rounds of `steps` steps, runs interleaved."""
    for step, load in runs.values():  # warm-up: allocator, oneDNN's and cuDNN's choice of kernels, compiling
        for batch in batches[:2]:
            step(*load(batch))
    per_round = {label: [] for label in runs}
    cycle = itertools.cycle(batches[2:])
    for _ in range(rounds):
        for label, (step, load) in runs.items():
            _sync(device)
            started, frames = time.perf_counter(), 0
            for _ in range(steps):
                x, y = load(next(cycle))
                step(x, y)
                frames += x.shape[0] * x.shape[1]
            _sync(device)
            per_round[label].append(frames / (time.perf_counter() - started))
    return {label: float(np.median(r)) for label, r in per_round.items()}


def _augmented(loader: BatchLoader, device: str):
    """The default path's batches under --augment at its default strengths: a new draw for every window."""
    augment = Augmenter(STRENGTHS, TARGETS, generator(0, 0, 0, device))

    def load(batch: list) -> tuple[torch.Tensor, torch.Tensor]:
        frames, targets, _, reset = (t.to(device) for t in loader.load(batch))
        return augment(frames, targets, reset)
    return load


def _measure(name: str, cache: FrameCache, device: str, args: argparse.Namespace) -> dict:
    batch, window = SHAPES.get(name, (16, 8))
    model = create_model(name, targets=TARGETS)  # its inputs: frames, or features stored beside the cache
    inputs, targets = [model.inputs_of(d) for d in cache.drives], [d.targets(TARGETS) for d in cache.drives]
    loader = (DeviceBatchLoader(inputs, targets, window, device) if device.startswith("cuda")
              else BatchLoader(inputs, targets, window))
    batches = stateless_batches([len(d) for d in cache.drives], window, window, batch, np.random.default_rng(0))
    from_cache = lambda b: tuple(t.to(device) for t in loader.load(b)[:2])  # noqa: E731
    # every batch gathered beforehand: the limit reads new data each step too, as training must
    held = {id(b): tuple(t.clone() for t in from_cache(b)) for b in batches}
    in_memory = lambda b: held[id(b)]  # noqa: E731
    defaults = TrainConfig()
    default = Setting(resolve_precision(defaults.precision, device, name)[0], defaults.channels_last, defaults.compile)
    candidates = [Setting(p, cl, c) for p in ("fp32", "bf16") for cl in (False, True)
                  for c in ((False, True) if args.compile else (False,))]
    frames = inputs[0].dtype == np.uint8  # features-lstm trains on stored features: nothing to augment
    runs = {"fp32 path": (_stepper(name, Setting("fp32", False, False), device), from_cache),
            "default path": (_stepper(name, default, device), from_cache),
            **({"augment path": (_stepper(name, default, device), _augmented(loader, device))} if frames else {}),
            **{str(s): (_stepper(name, s, device), in_memory) for s in candidates}}
    rates = _rates(runs, batches, args.steps, args.rounds, device)
    limit = max(map(str, candidates), key=rates.get)
    return {"shape": f"{batch} x {window}", "default": str(default), "limit": limit, "rates": rates}


# the fit's own process: imports, then train(), each timed
FIT = ("import json, sys, time; started = time.perf_counter(); from steer.train.config import TrainConfig; "
       "from steer.train.loop import train; imported = time.perf_counter(); import torch._dynamo; "
       "dynamo = time.perf_counter(); train(TrainConfig.from_dict(json.load(open(sys.argv[1])))); "
       "print(json.dumps({'start_s': imported - started, 'dynamo_s': dynamo - imported, "
       "'fit_s': time.perf_counter() - imported}))")


def _fit(name: str, cache: FrameCache, device: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Frames/s of `steer train` at the demo's settings: of train(), of its training steps alone, and of the
    whole process; and the process's start-up seconds."""
    settings = DEMO_MODELS.get(name, {}) | ({"epochs": args.fit_epochs, "patience": args.fit_epochs}
                                            if args.fit_epochs else {})
    config = TrainConfig(cache=str(cache.root), out=str(out), model=name, device=device, threads=args.threads,
                         **settings)
    (spec := out.with_suffix(".json")).write_text(json.dumps(config.to_dict()))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", FIT, str(spec)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    timed = json.loads(done.stdout.splitlines()[-1])
    history = json.loads((out / "history.json").read_text())
    frames = sum(epoch["train_frames"] for epoch in history)
    steps = frames / sum(epoch["train_frames"] / epoch["train_frames_per_s"] for epoch in history)
    return {"fit": frames / timed["fit_s"], "steps": steps, "process": frames / wall, "start_s": timed["start_s"],
            "dynamo_s": timed["dynamo_s"], "fit_less_dynamo": frames / (timed["fit_s"] - timed["dynamo_s"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4, help="steps per configuration per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="compiled configurations among the limit's")
    parser.add_argument("--models", default=",".join(sorted(MODELS)))
    parser.add_argument("--fit-epochs", type=int, default=0, help="epochs of the fit (0: the demo's)")
    parser.add_argument("--fit-drives", type=int, default=96, help="the fit's world (0: no fit columns)")
    args = parser.parse_args()
    keep_freed_memory()  # as `steer train` runs, the limit's steps too (bench/allocator.py compares allocators)
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as root:
        # 20 drives: split by drive, 14 to train and 3 to validate, about the demo's proportion
        cache = FrameCache.create(f"{root}/cache", generate_drives(WorldConfig(frames_per_drive=200), 20, seed=0,
                                                                   processes=2))
        demo = (FrameCache.create(f"{root}/demo", generate_drives(WorldConfig(frames_per_drive=200), args.fit_drives,
                                                                  seed=0, processes=2)) if args.fit_drives else None)
        print(f"{'model':<14}{'device':>7}{'batch x window':>15}{'fp32 eager':>12}{'default':>10}{'limit':>10}"
              f"{'default/limit':>15}{'default/fp32':>14}{'augment':>9}{'augment/default':>17}"
              "   default setting, limit setting"
              f"   (frames/s; CPU: {args.threads} threads"
              + (f"; GPU: {torch.cuda.get_device_name()})" if len(devices) > 1 else ")"))
        for device in devices:
            for name in args.models.split(","):
                m = _measure(name, cache, device, args)
                r = m["rates"]
                fp32, default, limit = r.pop("fp32 path"), r.pop("default path"), r[m["limit"]]
                augmented = r.pop("augment path", np.nan)
                print(f"{name:<14}{device:>7}{m['shape']:>15}{fp32:>12,.0f}{default:>10,.0f}{limit:>10,.0f}"
                      f"{default / limit:>15.2f}{default / fp32:>14.2f}{augmented:>9,.0f}{augmented / default:>17.2f}"
                      f"   {m['default']}, {m['limit']}")
                print(" " * 14 + "in memory: " + ", ".join(f"{k} {v:,.0f}" for k, v in r.items()), flush=True)
                if demo:
                    f = _fit(name, demo, device, args, Path(root) / f"{name}-{device}")
                    print(" " * 14 + f"fit ({args.fit_drives} drives): train() {f['fit']:,.0f}, steps "
                          f"{f['steps']:,.0f}, fit/steps {f['fit'] / f['steps']:.2f} "
                          f"({f['fit_less_dynamo'] / f['steps']:.2f} less torch's dynamo import, {f['dynamo_s']:.1f} s)"
                          f"; with the start-up ({f['start_s']:.1f} s) {f['process']:,.0f}, "
                          f"process/steps {f['process'] / f['steps']:.2f}", flush=True)


if __name__ == "__main__":
    main()
