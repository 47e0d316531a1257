"""Numbered ledger migrations, applied in order by :class:`turk.ledger.Ledger`.

Each migration is a module ``mNNNN_<name>.py`` in this package with one function
``up(db: sqlite_utils.Database) -> None``. A migration, once released, never changes:
a schema change is a new module with a higher number. Numbers are grouped by area so
that work on different stages does not collide:

====== ==========================================================
0001   runs (every command's record)
001x   collection: images, time buckets
002x   retrieval: embedding shards, failures, candidates
003x   HIT templates and gold items
004x   crowd: targets, HIT types, batches, HITs, assignments, answers, actions
005x   analysis: audits, reports, exports
006x   projects: turk.yaml state and stage fingerprints
====== ==========================================================
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

_NAME = re.compile(r"^m(\d{4})_(\w+)$")


@dataclass(frozen=True)
class Migration:
    """One schema step: its number, its name and the function that applies it."""

    id: int
    name: str
    up: Callable[[sqlite_utils.Database], None]


def _discover() -> list[Migration]:
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        match = _NAME.match(info.name)
        if not match:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(int(match.group(1)), match.group(2), module.up))
    found.sort(key=lambda m: m.id)
    ids = [m.id for m in found]
    if len(ids) != len(set(ids)):
        raise RuntimeError(f"two ledger migrations share a number: {ids}")
    return found


MIGRATIONS: list[Migration] = _discover()
"""Every known migration, in the order it applies."""

__all__ = ["MIGRATIONS", "Migration"]
