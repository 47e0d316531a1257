"""Migration 10: ``sources`` and ``images``, one row per YFCC photo or video ingested.

``images`` is compact on purpose: typed columns only for what the pipeline queries or
filters on, and the other YFCC fields in one text column, ``yfcc_fields``, exactly as the
dataset distributes them (URL-encoded, tab-joined in layout order; see
:data:`retrieval.collection.YFCC_TEXT_FIELDS`). They are decoded when read, through
:func:`turk.collection.ingest.image_metadata`. Every row is validated at ingest; decoded
text is only needed for the images that get labeled and exported, and SQLite's cost per inserted row
grows with the number of bound columns. The input file of each row is an integer into
``sources`` rather than its path repeated on every row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``sources`` and ``images``, with indexes on upload time and bucket."""
    db.execute(
        """
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            layout TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            line_number INTEGER,
            date_taken TEXT,
            date_uploaded INTEGER NOT NULL,
            marker INTEGER,
            longitude REAL,
            latitude REAL,
            download_url TEXT,
            local_path TEXT,
            byte_size INTEGER,
            width INTEGER,
            height INTEGER,
            yfcc_fields TEXT,
            source_id INTEGER,  -- sources.id; no FOREIGN KEY: one check per row on bulk load
            bucket INTEGER
        )
        """
    )
    db.execute("CREATE INDEX images_date_uploaded ON images (date_uploaded)")
    db.execute("CREATE INDEX images_bucket ON images (bucket)")
