"""The ledger: one SQLite file that holds all of turk's state.

Everything except image files and embedding shards lives here: images and their time
buckets, registered embedding shards, ranked candidates, HITs, assignments, answers,
review actions and audits. The schema changes only through the numbered migrations in
:mod:`turk.migrations`, applied in order when a ledger is opened.

Every command records itself in the ``runs`` table (command, settings, start, finish,
status, counts) through :meth:`Ledger.run`, so ``turk status`` and resumed commands can
tell what was done.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from turk.errors import LedgerError
from turk.migrations import MIGRATIONS, Migration

DEFAULT_DB = "turk.db"
"""Ledger file used when neither ``--db`` nor ``$TURK_DB`` names one."""


def utc_now() -> str:
    """Return the current UTC time as an ISO-8601 string with seconds precision.

    Returns:
        A string such as ``2026-11-26T09:50:14Z``.
    """
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunRecord:
    """A command's entry in the ``runs`` table, filled in while the command works.

    Attributes:
        id: Row id in ``runs``.
        command: Command name, e.g. ``ingest``.
        counts: Counters the command reports (written when the run finishes).
    """

    id: int
    command: str
    counts: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``key``.

        Args:
            key: Counter name, e.g. ``rows_ingested``.
            n: Amount to add.
        """
        self.counts[key] = self.counts.get(key, 0) + n


class Ledger:
    """An open ledger file with its migrations applied.

    Args:
        path: The SQLite file; created (with its parent folder) when missing.
        create: When false, a missing file raises :class:`LedgerError` instead.

    Raises:
        LedgerError: The file is not a SQLite database, cannot be opened, or holds
            migrations newer than this turk knows.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise LedgerError(
                    f"{self.path}: no ledger here; run 'turk ingest' first or pass --db PATH"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"{self.path}: not a turk ledger ({exc}); pass --db with another path"
            ) from exc
        self.db = sqlite_utils.Database(conn)
        self.applied_migrations = self._migrate()

    @property
    def conn(self) -> sqlite3.Connection:
        """The underlying sqlite3 connection."""
        return self.db.conn

    @property
    def root(self) -> Path:
        """Folder that holds the ledger and its artifacts (embeddings, exports)."""
        return self.path.resolve().parent

    @property
    def embeddings_dir(self) -> Path:
        """Folder beside the ledger where embedding shards are written."""
        return self.root / "embeddings"

    def _migrate(self) -> list[int]:
        try:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations ("
                "id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {row[0] for row in self.conn.execute("SELECT id FROM _migrations")}
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"{self.path}: not a turk ledger ({exc}); pass --db with another path"
            ) from exc
        known = {m.id for m in MIGRATIONS}
        newer = sorted(done - known)
        if newer:
            raise LedgerError(
                f"{self.path}: written by a newer turk (migration {newer[-1]}); "
                "upgrade turk to open it"
            )
        applied: list[int] = []
        for migration in MIGRATIONS:
            if migration.id in done:
                continue
            self._apply(migration)
            applied.append(migration.id)
        return applied

    def _apply(self, migration: Migration) -> None:
        # One explicit transaction (DDL included): a migration applies whole or not at all.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            migration.up(self.db)
            self.conn.execute(
                "INSERT INTO _migrations (id, name, applied_at) VALUES (?, ?, ?)",
                (migration.id, migration.name, utc_now()),
            )
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    @contextmanager
    def run(self, command: str, settings: dict[str, Any] | None = None) -> Iterator[RunRecord]:
        """Record a command in ``runs`` for the duration of a ``with`` block.

        The row is written as ``running`` on entry and finished as ``ok``, ``failed``
        (with the error) or ``interrupted`` on exit, with the counters collected.

        Args:
            command: Command name, e.g. ``ingest``.
            settings: JSON-serialisable settings the command ran with (never secrets).

        Yields:
            The :class:`RunRecord` to count into.
        """
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (command, settings, started_at, status, counts) "
                "VALUES (?, ?, ?, 'running', '{}')",
                (command, json.dumps(settings or {}, sort_keys=True, default=str), utc_now()),
            )
        record = RunRecord(id=int(cur.lastrowid or 0), command=command)
        status, error = "ok", None
        try:
            yield record
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except BaseException as exc:
            status, error = "failed", str(exc)
            raise
        finally:
            with self.conn:
                self.conn.execute(
                    "UPDATE runs SET finished_at=?, status=?, counts=?, error=? WHERE id=?",
                    (
                        utc_now(),
                        status,
                        json.dumps(record.counts, sort_keys=True, default=str),
                        error,
                        record.id,
                    ),
                )

    def last_run(self, command: str, status: str = "ok") -> dict[str, Any] | None:
        """Return the latest run of ``command`` with ``status``, or None.

        Args:
            command: Command name.
            status: Run status to look for.

        Returns:
            The row as a dict with ``settings`` and ``counts`` decoded, or None.
        """
        row = self.conn.execute(
            "SELECT id, command, settings, started_at, finished_at, status, counts, error "
            "FROM runs WHERE command=? AND status=? ORDER BY id DESC LIMIT 1",
            (command, status),
        ).fetchone()
        if row is None:
            return None
        keys = ["id", "command", "settings", "started_at", "finished_at", "status", "counts"]
        out = dict(zip([*keys, "error"], row, strict=True))
        out["settings"] = json.loads(out["settings"] or "{}")
        out["counts"] = json.loads(out["counts"] or "{}")
        return out

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
