"""Migration 20: ``embedding_shards`` (registered shards) and ``embedding_failures``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``embedding_shards`` and ``embedding_failures``."""
    db.execute(
        """
        CREATE TABLE embedding_shards (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL,
            shard INTEGER NOT NULL,
            model TEXT NOT NULL,
            pretrained TEXT,
            path TEXT NOT NULL,
            ids_path TEXT NOT NULL,
            count INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            checksum TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (slug, shard)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE embedding_failures (
            image_id INTEGER NOT NULL,
            slug TEXT NOT NULL,
            model TEXT NOT NULL,
            shard INTEGER NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (image_id, slug)
        )
        """
    )
