"""What every worker process of the library does first.

Ctrl-C reaches the whole process group: the parent stops its pool and reports one
line, so workers ignore the interrupt instead of each printing a traceback.
"""

from __future__ import annotations

import signal

__all__ = ["ignore_interrupts"]


def ignore_interrupts() -> None:
    """Make the calling (worker) process ignore SIGINT; its parent handles Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
