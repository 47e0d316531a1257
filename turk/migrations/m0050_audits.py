"""Migration 50: ``audits`` and ``audit_items``, the requester's checks of accepted images.

An audit is a uniform random sample of the accepted items in its scope (a concept, a
bucket, or the whole dataset), drawn once and stored in a random order; the requester
marks each sampled item right or wrong, one row at a time, so an audit resumes where it
stopped. ``in_stratum`` / ``in_pooled`` say which sample an item belongs to (the
per concept x bucket sample, the pooled sample of the whole scope, or both; see
``analysis.certify.audit_sample``). ``source`` says who gave the verdicts:
``requester`` (the audit page), ``answers-file`` (a CSV the requester wrote) or
``truth`` (a known truth file, for the sample collection and the demo only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create ``audits`` and ``audit_items``."""
    db.execute(
        """
        CREATE TABLE audits (
            id INTEGER PRIMARY KEY,
            target TEXT NOT NULL,
            scope_concept TEXT,
            scope_bucket INTEGER,
            aggregator TEXT NOT NULL,
            target_precision REAL NOT NULL,
            confidence REAL NOT NULL,
            sprt INTEGER NOT NULL DEFAULT 0,
            seed INTEGER NOT NULL,
            population INTEGER NOT NULL,
            sample_size INTEGER NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',
            decision TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE audit_items (
            audit_id INTEGER NOT NULL REFERENCES audits (id),
            position INTEGER NOT NULL,
            task TEXT NOT NULL,
            concept TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            image_id INTEGER NOT NULL,
            posterior REAL,
            in_stratum INTEGER NOT NULL DEFAULT 0,
            in_pooled INTEGER NOT NULL DEFAULT 0,
            correct INTEGER,
            source TEXT,
            marked_at TEXT,
            PRIMARY KEY (audit_id, position),
            UNIQUE (audit_id, task)
        )
        """
    )
    db.execute("CREATE INDEX audits_scope ON audits (target, status)")
