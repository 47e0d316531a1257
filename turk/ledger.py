"""The ledger: one SQLite file that holds all of turk's state.

Everything except image files and embedding shards lives here: images and their time
buckets, registered embedding shards, ranked candidates, HITs, assignments, answers,
review actions and audits. The schema changes only through the numbered migrations in
:mod:`turk.migrations`, applied in order when a ledger is opened.

Every command records itself in the ``runs`` table (command, settings, start, finish,
status, counts) through :meth:`Ledger.run`, so ``turk status`` and resumed commands can
tell what was done.

A ledger carries turk's SQLite ``application_id`` (:data:`LEDGER_APPLICATION_ID`), so
that any other SQLite file passed as ``--db`` is refused before anything is written to
it. Errors SQLite raises about the file (damaged pages, locks, disk I/O) leave a
:class:`Ledger` as :class:`~turk.errors.LedgerFileError` with the message of
:func:`database_error_message`.
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
from typing import TYPE_CHECKING, Any

from turk.errors import LedgerError, LedgerFileError

if TYPE_CHECKING:
    import sqlite_utils

    from turk.migrations import Migration

DEFAULT_DB = "turk.db"
"""Ledger file used when neither ``--db`` nor ``$TURK_DB`` names one."""

LEDGER_APPLICATION_ID = 0x5455524B
"""SQLite ``PRAGMA application_id`` of a turk ledger: the bytes ``TURK``."""

SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""

_MIGRATIONS_TABLE = "_migrations"

_OTHER_FILE = "pass --db with a new file name for a new ledger"

_RESTORE = "restore it from a backup or pass --db for another file"

_FIXES = {
    sqlite3.SQLITE_CORRUPT: f"the ledger is damaged; {_RESTORE} ('turk doctor' checks it)",
    sqlite3.SQLITE_NOTADB: f"damaged, or not a turk ledger; {_RESTORE}",
    sqlite3.SQLITE_IOERR: "check the disk it is on, then rerun",
    sqlite3.SQLITE_FULL: "free disk space there, then rerun",
    sqlite3.SQLITE_BUSY: "another command is writing to it; rerun when it has finished",
    sqlite3.SQLITE_LOCKED: "another command is writing to it; rerun when it has finished",
    sqlite3.SQLITE_READONLY: "make the file and its folder writable, or pass --db elsewhere",
    sqlite3.SQLITE_PERM: "make the file and its folder writable, or pass --db elsewhere",
    sqlite3.SQLITE_CANTOPEN: "check the path and its permissions, or pass --db elsewhere",
}
"""The fix to print for each primary SQLite result code that is about the file itself."""


def database_error_message(path: str | os.PathLike[str], exc: sqlite3.Error) -> str:
    """Say in one line what SQLite refused about a ledger file and what to do.

    Args:
        path: The ledger file.
        exc: The error SQLite raised while the file was opened or used.

    Returns:
        ``<path>: <what SQLite said>; <fix>``, e.g. ``turk.db: database disk image is
        malformed; the ledger is damaged; restore it from a backup or pass --db for
        another file ('turk doctor' checks it)``.
    """
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_READONLY_ROLLBACK:
        # Only a read-only look (turk doctor) meets this; any writing turk command heals it.
        fix = "a stopped command left its journal; run any turk command on it, then check again"
    else:
        fix = _FIXES.get(_primary_code(exc)) or "run 'turk doctor' to check the ledger"
    what = " ".join(str(exc).split()) or type(exc).__name__
    return f"{path}: {what}; {fix}"


def _primary_code(exc: BaseException) -> int:
    # -1: an error raised without a result code (by hand, or by an older SQLite module).
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else -1


def is_file_error(exc: BaseException) -> bool:
    """Whether an SQLite error is about the ledger file (damage, disk, locks, access).

    Errors about a statement (a constraint, a missing table) are not: they are turk's
    own mistakes and keep their traceback.

    Args:
        exc: Any exception.

    Returns:
        True for a :class:`sqlite3.DatabaseError` whose result code is in the file group.
    """
    return isinstance(exc, sqlite3.DatabaseError) and _primary_code(exc) in _FIXES


def _read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: looking at a file that may be someone else's database must not change it.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def _has_sqlite_header(path: Path) -> bool:
    """Whether the file holds anything: False when empty; refuses a non-SQLite file."""
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_HEADER))
    if not head:
        return False
    if head != SQLITE_HEADER:
        raise LedgerFileError(f"{path}: not a turk ledger (not an SQLite file); {_OTHER_FILE}")
    return True


def _is_old_ledger(conn: sqlite3.Connection, names: list[str]) -> bool:
    """Whether a file without the application id is a ledger from before it existed."""
    if _MIGRATIONS_TABLE not in names:
        return False
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({_MIGRATIONS_TABLE})")]
    if columns != ["id", "name", "applied_at"]:
        return False
    if names == [_MIGRATIONS_TABLE]:
        return True  # created, then stopped before the first migration
    first = conn.execute(f"SELECT name FROM {_MIGRATIONS_TABLE} WHERE id = 1").fetchone()
    from turk.migrations import MIGRATIONS

    return first is not None and first[0] == MIGRATIONS[0].name


def _identify(conn: sqlite3.Connection, path: Path) -> bool:
    """Check, by reading only, that the database open on ``conn`` is (or may become) a ledger.

    Returns whether it already carries the application id; raises LedgerFileError for
    another program's database. SQLite errors propagate.
    """
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if app_id == LEDGER_APPLICATION_ID:
        return True
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite~_%' ESCAPE '~' ORDER BY name"
        )
    ]
    if app_id == 0 and (not names or _is_old_ledger(conn, names)):
        return False
    if app_id != 0:
        reason = (
            f"its SQLite application_id is {app_id:#010x}, "
            f"a turk ledger's is {LEDGER_APPLICATION_ID:#010x}"
        )
    else:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        reason = f"it has tables {shown}"
    raise LedgerFileError(f"{path}: not a turk ledger ({reason}); {_OTHER_FILE}")


def identify_ledger(path: str | os.PathLike[str]) -> bool:
    """Check, without writing to it, that an existing file is (or may become) a ledger.

    An empty file, an SQLite file without tables, a file with turk's application id, and
    a ledger written before turk set that id are accepted; anything else is refused.

    Args:
        path: An existing file.

    Returns:
        Whether the file already carries turk's application id.

    Raises:
        LedgerFileError: The file is not SQLite, is another program's database, or
            SQLite cannot read it (the message says which, and what to do).
    """
    path = Path(path)
    if not _has_sqlite_header(path):
        return False
    try:
        conn = _read_only(path)
        try:
            return _identify(conn, path)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise LedgerFileError(database_error_message(path, exc)) from exc


def quick_check(path: str | os.PathLike[str], *, limit: int = 5) -> list[str]:
    """Run SQLite's ``quick_check`` on a ledger without writing to it.

    Args:
        path: An existing ledger file.
        limit: Most problems to report.

    Returns:
        The problems SQLite found, first ones first; empty when the file is sound.

    Raises:
        LedgerFileError: The file is not a ledger, or SQLite cannot even read its schema.
    """
    path = Path(path)
    identify_ledger(path)
    try:
        conn = _read_only(path)
        try:
            rows = [str(r[0]) for r in conn.execute(f"PRAGMA quick_check({int(limit)})")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise LedgerFileError(database_error_message(path, exc)) from exc
    if rows == ["ok"]:
        return []
    # One row may hold several problems, one a line, under a "*** in database main ***"
    # heading that names no problem.
    lines = [line.strip() for row in rows for line in row.splitlines()]
    return [line for line in lines if line and not line.startswith("***")][:limit] or rows


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

    Opening checks the file first (:func:`identify_ledger`) and refuses, unchanged, a
    file that is not a turk ledger; a ledger without turk's application id (written
    before turk set one) gets it. An SQLite error about the file (:func:`is_file_error`)
    raised while the ledger is open in a ``with`` block leaves it as
    :class:`LedgerFileError`.

    Args:
        path: The SQLite file; created (with its parent folder) when missing.
        create: When false, a missing file raises :class:`LedgerError` instead.

    Raises:
        LedgerFileError: The file is not a turk ledger, or SQLite cannot open or read it.
        LedgerError: The ledger holds migrations newer than this turk knows.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise LedgerError(
                    f"{self.path}: no ledger here; run 'turk ingest' first or pass --db PATH"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check = False
        else:
            check = _has_sqlite_header(self.path)
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise LedgerFileError(database_error_message(self.path, exc)) from exc
        try:
            # Identified on this connection, before the first write: a read-only one
            # could not roll back the hot journal a killed ingest leaves, and reading
            # changes nothing in the file.
            marked = _identify(conn, self.path) if check else False
            if not marked:
                conn.execute(f"PRAGMA application_id={LEDGER_APPLICATION_ID}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._conn = conn
            self._db: sqlite_utils.Database | None = None
            self.applied_migrations = self._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LedgerFileError(database_error_message(self.path, exc)) from exc
        except BaseException:
            conn.close()
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        """The underlying sqlite3 connection."""
        return self._conn

    @property
    def db(self) -> sqlite_utils.Database:
        """The connection as a :class:`sqlite_utils.Database` (made on first use)."""
        if self._db is None:
            import sqlite_utils  # with pandas, 1-2 s: only commands that need it pay

            self._db = sqlite_utils.Database(self._conn)
        return self._db

    @property
    def root(self) -> Path:
        """Folder that holds the ledger and its artifacts (embeddings, exports)."""
        return self.path.resolve().parent

    @property
    def embeddings_dir(self) -> Path:
        """Folder beside the ledger where embedding shards are written."""
        return self.root / "embeddings"

    def _migrate(self) -> list[int]:
        from turk.migrations import MIGRATIONS  # on first open, not at 'turk --help'

        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_MIGRATIONS_TABLE} ("
            "id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in self.conn.execute(f"SELECT id FROM {_MIGRATIONS_TABLE}")}
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
                f"INSERT INTO {_MIGRATIONS_TABLE} (id, name, applied_at) VALUES (?, ?, ?)",
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

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        if isinstance(exc, sqlite3.DatabaseError) and is_file_error(exc):
            raise LedgerFileError(database_error_message(self.path, exc)) from exc
