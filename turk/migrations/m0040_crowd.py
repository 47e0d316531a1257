"""Migration 40: the crowd tables, every row tied to the target it belongs to.

``hits`` rows are intents written before the call that creates the HIT; ``actions``
rows are intents written before approve/reject/bonus/block/extend/expire/delete calls.
Ids from one target (``local``, ``mturk-sandbox``, ``mturk``) never meet another's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Create hit_types, hits, hit_items, assignments, answers, actions, qualifications
    and worker_blocks."""
    db.execute(
        """
        CREATE TABLE hit_types (
            target TEXT NOT NULL,
            spec_hash TEXT NOT NULL,
            hit_type_id TEXT NOT NULL,
            title TEXT NOT NULL,
            description TEXT NOT NULL,
            keywords TEXT NOT NULL,
            reward TEXT NOT NULL,
            assignment_duration_s INTEGER NOT NULL,
            auto_approval_delay_s INTEGER NOT NULL,
            qualifications TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            PRIMARY KEY (target, spec_hash)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE hits (
            id INTEGER PRIMARY KEY,
            target TEXT NOT NULL,
            batch_id TEXT NOT NULL,
            hit_key TEXT NOT NULL,
            token TEXT NOT NULL,
            annotation TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'intent',
            hit_id TEXT,
            hit_type_id TEXT,
            task TEXT NOT NULL,
            concept TEXT,
            bucket INTEGER,
            labels TEXT NOT NULL DEFAULT '[]',
            reward TEXT NOT NULL,
            max_assignments INTEGER NOT NULL,
            max_total_assignments INTEGER NOT NULL,
            lifetime_s INTEGER NOT NULL,
            auto_approval_delay_s INTEGER NOT NULL,
            cost TEXT NOT NULL,
            question_xml TEXT NOT NULL,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            published_at TEXT,
            expires_at TEXT,
            hit_status TEXT,
            assignments_available INTEGER,
            assignments_pending INTEGER,
            assignments_completed INTEGER,
            assignments_collected INTEGER NOT NULL DEFAULT 0,
            checked_at TEXT,
            error TEXT,
            UNIQUE (target, hit_key),
            UNIQUE (target, token)
        )
        """
    )
    db.execute("CREATE INDEX hits_batch ON hits (target, batch_id, status)")
    db.execute("CREATE UNIQUE INDEX hits_hit_id ON hits (target, hit_id) WHERE hit_id IS NOT NULL")
    db.execute(
        """
        CREATE TABLE hit_items (
            target TEXT NOT NULL,
            hit_key TEXT NOT NULL,
            position INTEGER NOT NULL,
            field TEXT NOT NULL,
            image_id INTEGER NOT NULL,
            concept TEXT,
            is_gold INTEGER NOT NULL DEFAULT 0,
            expected TEXT,
            media_token TEXT NOT NULL,
            PRIMARY KEY (target, hit_key, position),
            FOREIGN KEY (target, hit_key) REFERENCES hits (target, hit_key)
        )
        """
    )
    db.execute("CREATE INDEX hit_items_image ON hit_items (image_id)")
    db.execute(
        """
        CREATE TABLE assignments (
            target TEXT NOT NULL,
            assignment_id TEXT NOT NULL,
            hit_id TEXT NOT NULL,
            hit_key TEXT NOT NULL,
            worker_id TEXT NOT NULL,
            status TEXT NOT NULL,
            accept_time TEXT,
            submit_time TEXT,
            auto_approval_time TEXT,
            approval_time TEXT,
            rejection_time TEXT,
            work_time_s REAL,
            answer_xml TEXT NOT NULL,
            parse_status TEXT NOT NULL DEFAULT 'raw',
            flag TEXT,
            fetched_at TEXT NOT NULL,
            PRIMARY KEY (target, assignment_id)
        )
        """
    )
    db.execute("CREATE INDEX assignments_hit ON assignments (target, hit_key)")
    db.execute("CREATE INDEX assignments_worker ON assignments (target, worker_id)")
    db.execute(
        """
        CREATE TABLE answers (
            target TEXT NOT NULL,
            assignment_id TEXT NOT NULL,
            worker_id TEXT NOT NULL,
            hit_key TEXT NOT NULL,
            field TEXT NOT NULL,
            position INTEGER,
            image_id INTEGER,
            concept TEXT,
            value TEXT,
            label TEXT,
            is_gold INTEGER NOT NULL DEFAULT 0,
            expected TEXT,
            correct INTEGER,
            work_time_s REAL,
            flag TEXT,
            PRIMARY KEY (target, assignment_id, field)
        )
        """
    )
    db.execute("CREATE INDEX answers_image ON answers (target, image_id)")
    db.execute("CREATE INDEX answers_worker ON answers (target, worker_id)")
    db.execute(
        """
        CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            target TEXT NOT NULL,
            kind TEXT NOT NULL,
            token TEXT NOT NULL,
            assignment_id TEXT,
            hit_id TEXT,
            worker_id TEXT,
            amount TEXT,
            count INTEGER,
            reason TEXT,
            status TEXT NOT NULL DEFAULT 'intent',
            created_at TEXT NOT NULL,
            sent_at TEXT,
            done_at TEXT,
            error TEXT,
            UNIQUE (target, kind, token)
        )
        """
    )
    db.execute("CREATE INDEX actions_assignment ON actions (target, assignment_id)")
    db.execute(
        """
        CREATE TABLE qualifications (
            target TEXT NOT NULL,
            name TEXT NOT NULL,
            qualification_type_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (target, name)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE worker_blocks (
            target TEXT NOT NULL,
            worker_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'intent',
            created_at TEXT NOT NULL,
            done_at TEXT,
            PRIMARY KEY (target, worker_id)
        )
        """
    )
