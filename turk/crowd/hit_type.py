"""The rules a HIT type must keep, for ``turk publish --config`` and turk.yaml alike.

Both readers parse their own values (a publish config or command-line options; a project
file with line numbers) and hand them to :func:`check_hit_type`, which holds MTurk's
limits once: the smallest reward, the extension boundary, the ranges of durations and
the qualification guards. A reader passes ``name`` (how it spells each setting) and
``fail`` (the error it raises for a setting), so every message names what the user
wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

__all__ = [
    "ACTIONS_GUARDED",
    "EXTENSION_BOUNDARY",
    "MIN_REWARD",
    "check_hit_type",
    "default_total_assignments",
]

EXTENSION_BOUNDARY = 10
"""MTurk cannot extend a HIT created with fewer assignments to this many or more."""

MIN_REWARD = Decimal("0.01")
"""MTurk's smallest reward per assignment."""

ACTIONS_GUARDED = ("Accept", "PreviewAndAccept", "DiscoverPreviewAndAccept")
"""What a qualification requirement may guard."""

_DAY = 86400
_RANGES = {
    "assignment_duration": (30, 365 * _DAY, "30 s to 365 days"),
    "lifetime": (60, 365 * _DAY, "1 minute to 365 days"),
    "auto_approval_delay": (0, 30 * _DAY, "0 to 30 days"),
}


def default_total_assignments(max_assignments: int) -> int:
    """How far ``review --extend`` may take a HIT when nothing says otherwise.

    Two assignments more, but never across :data:`EXTENSION_BOUNDARY` from below.

    Args:
        max_assignments: Assignments the HIT is created with.

    Returns:
        The most assignments the HIT may be extended to.
    """
    n = max_assignments
    return n + 2 if n >= EXTENSION_BOUNDARY else max(n, min(n + 2, EXTENSION_BOUNDARY - 1))


def check_hit_type(
    *,
    reward: Decimal,
    max_assignments: int,
    max_total_assignments: int,
    durations: dict[str, int],
    actions_guarded: str,
    name: Callable[[str], str],
    fail: Callable[[str, str], Exception],
) -> None:
    """Check a HIT type's settings against MTurk's rules.

    Args:
        reward: Reward per assignment.
        max_assignments: Assignments each HIT is created with.
        max_total_assignments: The most an extension may take a HIT to.
        durations: Seconds of ``assignment_duration``, ``lifetime`` and
            ``auto_approval_delay`` (those given).
        actions_guarded: What the qualification requirements guard.
        name: How the reader spells a setting (``max_total_assignments`` ->
            ``--extend-to`` or ``hit_type.max_total_assignments``).
        fail: Builds the error to raise for a setting and a message.

    Raises:
        Exception: What ``fail`` builds, for the first rule broken.
    """
    if reward < MIN_REWARD:
        raise fail("reward", f"{reward}: MTurk's smallest reward is {MIN_REWARD}")
    n, total = max_assignments, max_total_assignments
    if total < n:
        raise fail(
            "max_total_assignments",
            f"{total} is below {name('max_assignments')} {n}; use {n} or more",
        )
    if n < EXTENSION_BOUNDARY <= total:
        raise fail(
            "max_total_assignments",
            f"{total} with {name('max_assignments')} {n}: MTurk cannot extend a HIT created "
            f"with fewer than {EXTENSION_BOUNDARY} assignments to {EXTENSION_BOUNDARY} or "
            f"more; use {name('max_assignments')} {EXTENSION_BOUNDARY} or more, or keep "
            f"{name('max_total_assignments')} at {EXTENSION_BOUNDARY - 1}",
        )
    for key, seconds in durations.items():
        low, high, words = _RANGES[key]
        if not low <= seconds <= high:
            raise fail(key, f"must be {words}")
    if actions_guarded not in ACTIONS_GUARDED:
        raise fail(
            "actions_guarded",
            f"{actions_guarded!r}; use one of {', '.join(ACTIONS_GUARDED)}",
        )
