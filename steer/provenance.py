"""What a run needs to be reproduced: versions of the code and libraries, and hashes of the data."""
from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version(), "steer_commit": _git_commit()}
    for package in ("steer", "torch", "numpy", "safetensors"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # the CPU features bf16 kernels take different paths on


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none: not Linux)."""
    fields: dict[str, str] = {}
    if CPUINFO.exists():
        for line in CPUINFO.read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def machine(precision: dict[str, str]) -> dict:
    """Where figures were measured: bf16 kernels round differently on CPUs with and without AMX or
    AVX512-BF16, so a result names its CPU, its torch threads and the precision each model ran at."""
    import torch

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    return {"cpu": info.get("model name") or platform.processor() or platform.machine(),
            **{flag: flag in flags for flag in BF16_FLAGS}, "torch_threads": torch.get_num_threads(),
            "precision": precision}


def machine_line(record: dict) -> str:
    """The record of machine() in one line, as the demo prints it under its table."""
    flags = ", ".join(f"{flag} {'yes' if record[flag] else 'no'}" for flag in BF16_FLAGS)
    precision = ", ".join(f"{label} {p}" for label, p in record["precision"].items())
    return f"measured on {record['cpu']} ({flags}), {record['torch_threads']} torch threads, precision {precision}"
