"""Migration 30: the per-ledger secret that makes HIT image names opaque.

Image URLs in a HIT are ``<base>/<token>.jpg`` with ``token = HMAC-SHA256(secret,
"<hit_key>|<position>")``. The secret is random per ledger so that nobody can tell from
a URL which image (or which gold item) it is. It guards no account and is not a
credential; it only has to stay the same for the life of the ledger.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``hit_secret`` with one random secret."""
    db.execute(
        """
        CREATE TABLE hit_secret (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            secret TEXT NOT NULL
        )
        """
    )
    db.execute("INSERT INTO hit_secret (id, secret) VALUES (1, ?)", [secrets.token_hex(32)])
