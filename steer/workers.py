"""What every pool of worker processes steer starts does: leave Ctrl-C to the parent (which ends the
pool, cleans up and prints one line, instead of every worker printing its traceback) and die with the
parent, so a parent killed outright (SIGKILL) leaves no worker behind."""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from contextlib import contextmanager
from multiprocessing.pool import Pool
from typing import Iterator

PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by holding_ctrl_c; now ignored
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def pool(processes: int, start: str = "fork") -> Pool:
    """A pool of `processes` workers started by `start` ("fork" or "spawn"), each leaving Ctrl-C to the
    parent and dying with it: the only way steer starts worker processes."""
    with holding_ctrl_c():
        return multiprocessing.get_context(start).Pool(processes, init_worker)
