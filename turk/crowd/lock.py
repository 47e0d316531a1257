"""One command at a time changes a target's crowd state in one ledger.

Publish, collect, review, expire and ``turk run`` hold :func:`crowd_lock` for their
ledger and target while they read and change crowd state, so two of them never act on
the same HITs, assignments or budget at once. The lock is an advisory ``flock`` on a
file beside the ledger (``<ledger>.<target>.lock``); the operating system releases it
when its process ends, killed or not, so a crash never leaves it stale. The file holds
who has it (pid, command, since), which is what a second command reports.

A second command waits up to ``wait_s`` (default :data:`DEFAULT_WAIT_S`, or
``$TURK_LOCK_WAIT`` seconds) and then stops with :class:`~turk.errors.BusyError`.
Inside one process the lock is re-entrant: ``turk run`` holds it and the library
functions it calls take it again without waiting on themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from turk.errors import BusyError
from turk.ledger import Ledger, utc_now

DEFAULT_WAIT_S = 10.0
"""How long a second command waits for the lock before it stops."""

WAIT_ENV = "TURK_LOCK_WAIT"
"""Environment variable overriding :data:`DEFAULT_WAIT_S` (seconds; 0 = do not wait)."""

_POLL_S = 0.05
_held: dict[str, tuple[int, int]] = {}
_held_guard = threading.Lock()


def lock_path(ledger_path: Path, target: str) -> Path:
    """Return the lock file of a ledger and target.

    Args:
        ledger_path: The ledger file.
        target: The crowd target.

    Returns:
        ``<ledger>.<target>.lock`` beside the ledger.
    """
    return ledger_path.with_name(f"{ledger_path.name}.{target}.lock")


def _wait_s(wait_s: float | None) -> float:
    if wait_s is not None:
        return max(0.0, wait_s)
    raw = os.environ.get(WAIT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_WAIT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise BusyError(f"${WAIT_ENV}={raw!r}: not a number of seconds; e.g. 30") from None


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process"
    return f"pid {info.get('pid')} ({info.get('command', '?')}, since {info.get('since', '?')})"


def _acquire(path: Path, command: str, wait_s: float) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(fd)
                os.close(fd)
                raise BusyError(
                    f"{path.name}: {holder} is changing this ledger's crowd state; waited "
                    f"{wait_s:g} s. Let it finish (or stop it) and rerun, or set "
                    f"{WAIT_ENV} to wait longer"
                ) from None
            time.sleep(_POLL_S)
    record = {"pid": os.getpid(), "command": command, "since": utc_now(), "argv": sys.argv[1:3]}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(record).encode("utf-8"))
    os.fsync(fd)
    return fd


@contextlib.contextmanager
def crowd_lock(
    ledger: Ledger, target: str, command: str, *, wait_s: float | None = None
) -> Iterator[None]:
    """Hold the ledger's lock for ``target`` while the block runs.

    Args:
        ledger: The open ledger.
        target: The crowd target.
        command: What is running, shown to a command that has to wait (e.g. ``collect``).
        wait_s: Seconds to wait for another holder (default: ``$TURK_LOCK_WAIT``, else
            :data:`DEFAULT_WAIT_S`).

    Yields:
        Nothing; the lock is held until the block ends.

    Raises:
        BusyError: Another process held the lock for longer than ``wait_s``.
    """
    path = lock_path(ledger.path.resolve(), target)
    key = str(path)
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            _held[key] = (held[0], held[1] + 1)
    if held is None:
        fd = _acquire(path, command, _wait_s(wait_s))
        with _held_guard:
            _held[key] = (fd, 1)
    try:
        yield
    finally:
        with _held_guard:
            fd, count = _held[key]
            if count > 1:
                _held[key] = (fd, count - 1)
            else:
                del _held[key]
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
