"""Migration 10: the ``images`` table, one row per YFCC photo or video ingested."""

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``images`` with indexes on upload time and bucket."""
    db.execute(
        """
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            line_number INTEGER,
            hash TEXT,
            user_nsid TEXT,
            nickname TEXT,
            date_taken TEXT,
            date_uploaded INTEGER NOT NULL,
            device TEXT,
            title TEXT,
            description TEXT,
            user_tags TEXT,
            machine_tags TEXT,
            longitude REAL,
            latitude REAL,
            accuracy INTEGER,
            page_url TEXT,
            download_url TEXT,
            license_name TEXT,
            license_url TEXT,
            server INTEGER,
            farm INTEGER,
            secret TEXT,
            secret_original TEXT,
            extension TEXT,
            marker INTEGER,
            local_path TEXT,
            byte_size INTEGER,
            width INTEGER,
            height INTEGER,
            source TEXT,
            bucket INTEGER
        )
        """
    )
    db.execute("CREATE INDEX images_date_uploaded ON images (date_uploaded)")
    db.execute("CREATE INDEX images_bucket ON images (bucket)")
