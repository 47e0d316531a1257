"""Migration 60: ``stages``, what each pipeline stage of ``turk run`` last ran with.

One row per stage (``ingest`` ... ``export``): the fingerprint of the settings and
inputs it ran with (``settings`` keeps them, so a change can be named), its status
(``running`` while it works, ``done``, ``partial`` when it stopped on purpose with work
left, ``failed``), what it produced (``outputs``, JSON counts) and the ``runs`` row of
its last attempt. A stage whose fingerprint no longer matches the project is out of
date, and so is every stage after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``stages``."""
    db.execute(
        """
        CREATE TABLE stages (
            name TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL,
            outputs TEXT NOT NULL DEFAULT '{}',
            run_id INTEGER,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            error TEXT
        )
        """
    )
