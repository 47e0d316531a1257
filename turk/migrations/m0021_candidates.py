"""Migration 21: ``candidates``, the images chosen per concept and bucket by ``turk rank``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``candidates``."""
    db.execute(
        """
        CREATE TABLE candidates (
            concept TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            image_id INTEGER NOT NULL,
            score REAL NOT NULL,
            rank INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('positive', 'background')),
            run_id INTEGER NOT NULL,
            slug TEXT NOT NULL,
            PRIMARY KEY (concept, bucket, image_id, role)
        )
        """
    )
    db.execute("CREATE INDEX candidates_image ON candidates (image_id)")
    db.execute("CREATE INDEX candidates_bucket ON candidates (bucket, concept, role, rank)")
