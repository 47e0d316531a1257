"""Migration 41: ``hits.language``, the language a HIT's own words were shown in.

A HIT's page takes its words (question, Yes/No, keyboard legend, Submit) from the
strings catalogue of one language (``turk.hits.language``); the datasheet says in
which language the workers were instructed, so every HIT records it. A HIT written
before this migration records the ``lang`` its stored page declares (the packaged
templates always said ``en``), or NULL where its page declares none.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

_LANG = re.compile(r"<html\b[^>]*\blang=[\"']([A-Za-z0-9-]{1,35})[\"']", re.I)


def up(db: sqlite_utils.Database) -> None:
    """Add ``hits.language`` and fill it from each stored page's ``<html lang>``."""
    db.execute("ALTER TABLE hits ADD COLUMN language TEXT")
    # The document starts within the first few hundred characters of the XML.
    rows = db.execute("SELECT id, substr(question_xml, 1, 2000) FROM hits").fetchall()
    found = [(m.group(1), row_id) for row_id, head in rows if (m := _LANG.search(head or ""))]
    db.conn.executemany("UPDATE hits SET language = ? WHERE id = ?", found)
