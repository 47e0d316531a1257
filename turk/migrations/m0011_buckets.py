"""Migration 11: the ``buckets`` table, the time buckets of the last ``turk buckets``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``buckets``."""
    db.execute(
        """
        CREATE TABLE buckets (
            id INTEGER PRIMARY KEY,
            start_uploaded INTEGER NOT NULL,
            end_uploaded INTEGER NOT NULL,
            image_count INTEGER NOT NULL DEFAULT 0,
            reserved INTEGER NOT NULL DEFAULT 0,
            scheme TEXT NOT NULL
        )
        """
    )
