"""Which arithmetic a run uses: bf16 autocast where the device does bf16 fast, fp32 elsewhere.

`auto` is detected, not assumed: a CUDA device that supports bf16, or a CPU whose instruction set has
bf16 dot products (AMX tiles or AVX512-BF16), which oneDNN's bf16 convolutions and matrix products use.
Elsewhere bf16 autocast is emulated and slower than fp32, so `auto` stays at fp32.
"""
from __future__ import annotations

from pathlib import Path

import torch

from steer.models import MODELS
from steer.train.config import PRECISIONS

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # as torch's cpuinfo and Linux's /proc/cpuinfo name them
CPUINFO = Path("/proc/cpuinfo")


def cpu_bf16_flags() -> list[str]:
    """The CPU's bf16 instruction-set extensions, from torch's own cpuinfo or, failing that, /proc/cpuinfo."""
    try:
        capability = torch._C._cpu._get_cpu_capability()  # private, but the one cross-platform source
        return [f for f in BF16_CPU_FLAGS if capability.get(f)]
    except AttributeError:
        flags = set(CPUINFO.read_text().split()) if CPUINFO.exists() else set()
        return [f for f in BF16_CPU_FLAGS if f in flags]


def fast_bf16(device: str) -> tuple[bool, str]:
    """Whether `device` does bf16 faster than fp32, and why (for the run's record and the printout)."""
    if torch.device(device).type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        return supported, f"{torch.cuda.get_device_name(device)} {'has' if supported else 'lacks'} bf16 units"
    flags = cpu_bf16_flags()
    return bool(flags), f"this CPU has {', '.join(flags)}" if flags else "this CPU has no AMX or AVX512-BF16"


def resolve_precision(precision: str, device: str, model: str | None = None) -> tuple[str, str]:
    """`fp32` or `bf16` for `precision` (`auto`, `fp32`, `bf16`) on `device` for the registered `model`
    (None: any model), and why. On a CPU, `auto` also asks the model which bf16 units speed it up
    (`cpu_bf16`): not every network gains from every kind (komanda's 3-d convolutions need AMX), and fp32 is
    then the faster and the exact choice."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision, "asked for"
    fast, why = fast_bf16(device)
    wanted = MODELS[model].cpu_bf16 if model else BF16_CPU_FLAGS
    if fast and torch.device(device).type == "cpu" and not set(cpu_bf16_flags()) & set(wanted):
        return "fp32", f"auto: {why}, but {model} trains faster at fp32 on a CPU" + \
            (f" without {' or '.join(wanted)}" if wanted else "")
    return ("bf16" if fast else "fp32"), f"auto: {why}"

