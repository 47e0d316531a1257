"""Migration 22: ``candidates.round``, the curation round that sent each candidate.

``turk rank`` keeps each cell's whole ranked pool (to ``query_depth``, after the overlap
rule); a candidate's ``round`` is NULL while it waits in the pool and the round number
once a round chose it for people to verify. A candidate written without one (every
candidate ranked before this migration, from the one pass there was) is round 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Add ``candidates.round``, 1 unless written otherwise."""
    db.execute("ALTER TABLE candidates ADD COLUMN round INTEGER DEFAULT 1")
