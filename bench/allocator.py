"""Training steps under each memory allocator, each in a process of its own: glibc's malloc as it comes,
glibc as steer sets it (steer/allocator.py: freed blocks kept for the next step), and tcmalloc and
jemalloc preloaded where the system has them (Debian: libtcmalloc-minimal4, libjemalloc2; PyTorch's CPU
tuning guide suggests either). tcmalloc is the fastest known way here; steer's setting is measured
against it, in the same run.

    .venv/bin/python bench/allocator.py [--steps 20 --rounds 3] [--threads 2] [--models pilotnet,cnn-lstm]

Each process steps a fresh model (seed 0) as `steer train` does by default (precision `auto`, channels-
last; bench/train.py's step) at the demo's shapes, over 8 batches of frames held in memory in turn,
`--steps` steps a round after 5 of warm-up; the settings take turns round by round, so all see the
machine in the same state. Printed: the median frames/s over rounds and the page faults a step (minor
faults: fresh pages the kernel had to zero).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LIBS = Path("/usr/lib/x86_64-linux-gnu")
PRELOADS = {"tcmalloc": LIBS / "libtcmalloc_minimal.so.4", "jemalloc": LIBS / "libjemalloc.so.2"}
def child(name: str, kept: bool, steps: int, threads: int) -> dict[str, float]:
    """Frames/s and page faults a step of `steps` training steps, in this process: bench/train.py's step of
    the default setting, on its shapes."""
    import torch
    from train import SHAPES, Setting, _stepper  # bench/train.py, beside this file

    from steer.allocator import keep_freed_memory
    from steer.train.precision import resolve_precision

    if kept:
        keep_freed_memory()
    torch.set_num_threads(threads)
    batch, window = SHAPES.get(name, (16, 8))
    step = _stepper(name, Setting(resolve_precision("auto", "cpu", name)[0], True, False), "cpu")
    batches = [(torch.randint(0, 256, (batch, window, 3, 66, 200), dtype=torch.uint8), torch.randn(batch, window, 3))
               for _ in range(8)]
    for i in range(5):
        step(*batches[i % len(batches)])
    faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    seconds = time.perf_counter() - started
    return {"frames_per_s": steps * batch * window / seconds,
            "faults_per_step": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps}


def run(name: str, setting: str, args: argparse.Namespace) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if setting in PRELOADS:
        env["LD_PRELOAD"] = str(PRELOADS[setting])
    command = [sys.executable, __file__, "--child", name, "--kept", str(int(setting == "steer")),
               "--steps", str(args.steps), "--threads", str(args.threads)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="pilotnet,cnn-lstm")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--kept", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, bool(args.kept), args.steps, args.threads)))
        return
    settings = ["glibc", "steer"] + [name for name, lib in PRELOADS.items() if lib.exists()]
    missing = [f"{name} ({lib})" for name, lib in PRELOADS.items() if not lib.exists()]
    print(f"frames/s, median of {args.rounds} rounds of {args.steps} steps, {args.threads} threads; page faults a step"
          + (f"; not on this system: {', '.join(missing)}" if missing else ""))
    for name in args.models.split(","):
        found = {s: [] for s in settings}
        for _ in range(args.rounds):
            for setting in settings:
                found[setting].append(run(name, setting, args))
        rates = {s: float(np.median([r["frames_per_s"] for r in runs])) for s, runs in found.items()}
        fastest = max(rates.values())
        print(f"{name:<10}" + "".join(f"{s:>10} {rates[s]:>6,.0f} ({rates[s] / fastest:.2f}, "
                                      f"{np.median([r['faults_per_step'] for r in found[s]]):,.0f} faults)"
                                      for s in settings), flush=True)


if __name__ == "__main__":
    main()
