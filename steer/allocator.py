"""glibc's malloc, told to keep the memory a training step frees for the next step.

A training step allocates and frees the same activations every step, tens of MB each (cnn-lstm's first
layer: 128 x 24 x 31 x 98 bf16, 19 MB). glibc serves a block that large by mmap and unmaps it when it is
freed, or trims it off its heap, so the next step gets fresh pages that the kernel must fault in and zero
one by one: 2,000-16,000 page faults a step, measured. With the two thresholds below the freed blocks
stay in the heap: no page faults, and in a loop of bf16 steps pilotnet 8-25% faster, cnn-lstm 4-11%,
0.94-0.99 of tcmalloc preloaded (bench/allocator.py); a whole fit 2-5%, glibc raising its own
threshold during a long run. The cost: a process keeps the heap it has peaked at (a
training step's activations) until it ends, instead of returning it between steps.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
KEPT_BYTES = 1 << 30  # blocks under 1 GiB from the heap, and up to 1 GiB free at its top kept


def keep_freed_memory() -> bool:
    """Set glibc malloc's mmap and trim thresholds for this process (threads included); False where the C
    library is not glibc (macOS, musl, Windows) or it refused, and nothing changed."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):  # musl has mallopt too, and ignores it
        return False
    # both: setting either stops glibc adjusting the other, and a trim threshold alone would send every large
    # block to mmap (measured: 11,000 faults a pilotnet step, a third slower)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEPT_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEPT_BYTES))
