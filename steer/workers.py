"""What every pool of worker processes steer starts does: leave Ctrl-C to the parent (which ends the
pool, cleans up and prints one line, instead of every worker printing its traceback) and die with the
parent, so a parent killed outright (SIGKILL) leaves no worker behind. A job of several stages can
share one pool (`shared_pool`): each pool's start costs its spawned workers the import of torch and
steer (2-3 s on 2 cores), which the demo paid four times."""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from contextlib import AbstractContextManager, contextmanager, nullcontext
from multiprocessing.pool import Pool
from typing import Iterator

from steer.allocator import keep_freed_memory

PR_SET_PDEATHSIG = 1  # linux/prctl.h
CORES = os.cpu_count() or 1  # the default size of a pool: one worker per core


@contextmanager
def holding_ctrl_c() -> Iterator[None]:
    """Start a pool's workers inside this: a Ctrl-C that came between a worker's birth and its
    `init_worker` would raise in the worker. The workers are born with SIGINT blocked; the parent gets
    a Ctrl-C that came meanwhile when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def init_worker() -> None:
    keep_freed_memory()  # a worker drives or renders with torch and numpy as the parent does
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by holding_ctrl_c; now ignored
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


_shared: dict[str, tuple[Pool, int]] = {}  # start method -> the pool shared_pool opened, its size


def pool(processes: int, start: str = "fork") -> AbstractContextManager[Pool]:
    """A pool of `processes` workers started by `start` ("fork" or "spawn"), each leaving Ctrl-C to the
    parent and dying with it: the only way steer starts worker processes. Inside `shared_pool` of as many
    workers or more, that pool (left open when the block ends)."""
    if start in _shared and _shared[start][1] >= processes:
        return nullcontext(_shared[start][0])
    with holding_ctrl_c():
        return multiprocessing.get_context(start).Pool(processes, init_worker)


@contextmanager
def shared_pool(processes: int, start: str = "spawn") -> Iterator[None]:
    """Within it, `pool` hands out one pool of `processes` workers started by `start`, ended with the block.
    Its jobs must leave no state behind in a worker that a later job reads (each sets its own torch threads)."""
    if processes <= 1 or start in _shared:
        yield
        return
    with pool(processes, start) as workers:
        _shared[start] = (workers, processes)
        try:
            yield
        finally:
            del _shared[start]
