"""What every worker process of the library does first, and how many CPUs it may use.

Ctrl-C reaches the whole process group: the parent stops its pool and reports one
line, so workers ignore the interrupt instead of each printing a traceback. A worker
also asks the kernel to kill it when its parent dies, so none outlives a killed run.
Pools and thread counts are sized by :func:`available_cpus`, the CPUs this process may
run on: under a container's or a batch scheduler's CPU set that is fewer than the
machine has.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["available_cpus", "die_with_parent", "ignore_interrupts"]

_PR_SET_PDEATHSIG = 1  # prctl option, from <sys/prctl.h>


def available_cpus() -> int:
    """How many CPUs this process may run on (its affinity mask, not the machine's count).

    Returns:
        At least 1.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def ignore_interrupts() -> None:
    """Make the calling (worker) process ignore SIGINT; its parent handles Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def die_with_parent() -> None:
    """Have the kernel kill the calling worker when the process that started it dies.

    A worker that outlived a killed parent would go on with work nobody collects (an
    ingest worker writing chunks nobody counts, a decoder filling a pipe nobody reads),
    then wait forever; killed instead, it leaves whole units of work only. Linux only;
    a no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)
