"""Migration 51: ``rounds``, each curation round's decision for every labeled cell."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``rounds``."""
    db.execute(
        """
        CREATE TABLE rounds (
            round INTEGER NOT NULL,
            concept TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            accepted INTEGER NOT NULL,
            verified INTEGER NOT NULL,
            missing INTEGER NOT NULL,
            pool_left INTEGER NOT NULL,
            sent INTEGER NOT NULL,
            expected REAL NOT NULL,
            precision REAL,
            method TEXT NOT NULL,
            stop TEXT,
            heldout_prompt REAL,
            heldout_rerank REAL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (round, concept, bucket)
        )
        """
    )
