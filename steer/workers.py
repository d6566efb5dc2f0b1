"""What every pool of worker processes steer starts does first: leave Ctrl-C to the parent (which ends
the pool, cleans up and prints one line, instead of every worker printing its traceback) and die with
the parent, so a parent killed outright (SIGKILL) leaves no worker behind."""
from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
