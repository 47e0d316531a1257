"""The sandbox's own SQLite store: HITs, assignments, money, workers; survives restarts."""

from __future__ import annotations

import base64
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from turk.sandbox.errors import SandboxError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hit_types (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL, keywords TEXT,
    reward TEXT NOT NULL, assignment_duration INTEGER NOT NULL,
    auto_approval_delay INTEGER NOT NULL, qualification_requirements TEXT NOT NULL,
    signature TEXT NOT NULL UNIQUE, created REAL NOT NULL,
    disposed INTEGER NOT NULL DEFAULT 0, notification TEXT,
    notification_active INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS hits (
    id TEXT PRIMARY KEY, hit_type_id TEXT NOT NULL, question TEXT NOT NULL,
    max_assignments INTEGER NOT NULL, created REAL NOT NULL, expiration REAL NOT NULL,
    requester_annotation TEXT, layout_id TEXT, review_status TEXT NOT NULL,
    reviewing INTEGER NOT NULL DEFAULT 0, disposed INTEGER NOT NULL DEFAULT 0,
    review_policies TEXT);
CREATE INDEX IF NOT EXISTS hits_open ON hits(disposed, expiration);
CREATE TABLE IF NOT EXISTS assignments (
    id TEXT PRIMARY KEY, hit_id TEXT NOT NULL, worker_id TEXT NOT NULL, status TEXT NOT NULL,
    accept_time REAL NOT NULL, deadline REAL NOT NULL, submit_time REAL,
    auto_approval_time REAL, approval_time REAL, rejection_time REAL, answer TEXT,
    requester_feedback TEXT);
CREATE INDEX IF NOT EXISTS assignments_hit ON assignments(hit_id);
CREATE INDEX IF NOT EXISTS assignments_worker ON assignments(worker_id, hit_id);
CREATE INDEX IF NOT EXISTS assignments_due ON assignments(status, auto_approval_time);
CREATE INDEX IF NOT EXISTS assignments_deadline ON assignments(status, deadline);
CREATE TABLE IF NOT EXISTS request_tokens (
    operation TEXT NOT NULL, token TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (operation, token));
CREATE TABLE IF NOT EXISTS bonuses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT NOT NULL, assignment_id TEXT NOT NULL,
    hit_id TEXT NOT NULL, amount TEXT NOT NULL, reason TEXT NOT NULL, grant_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, reference TEXT NOT NULL,
    amount TEXT NOT NULL, fee TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    worker_id TEXT PRIMARY KEY, reason TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS qualification_types (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL, keywords TEXT,
    status TEXT NOT NULL, retry_delay INTEGER, test TEXT, answer_key TEXT,
    test_duration INTEGER, auto_granted INTEGER NOT NULL, auto_granted_value INTEGER,
    created REAL NOT NULL, disposing INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS qualifications (
    type_id TEXT NOT NULL, worker_id TEXT NOT NULL, integer_value INTEGER,
    status TEXT NOT NULL, granted REAL NOT NULL, PRIMARY KEY (type_id, worker_id));
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY, country TEXT NOT NULL, subdivision TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL, message TEXT NOT NULL,
    worker_id TEXT NOT NULL, sent REAL NOT NULL);
CREATE TABLE IF NOT EXISTS qualification_requests (
    id TEXT PRIMARY KEY, type_id TEXT NOT NULL, worker_id TEXT NOT NULL, test TEXT,
    answer TEXT, submit_time REAL NOT NULL, status TEXT NOT NULL, reason TEXT, decided REAL);
CREATE INDEX IF NOT EXISTS qualification_requests_type
    ON qualification_requests(type_id, worker_id);
CREATE TABLE IF NOT EXISTS event_notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, hit_type_id TEXT, event_type TEXT NOT NULL,
    destination TEXT NOT NULL, transport TEXT NOT NULL, test INTEGER NOT NULL,
    sent REAL NOT NULL);
"""

_ADDED_COLUMNS = (
    ("hit_types", "disposed", "INTEGER NOT NULL DEFAULT 0"),
    ("hit_types", "notification", "TEXT"),
    ("hit_types", "notification_active", "INTEGER NOT NULL DEFAULT 0"),
    ("hits", "review_policies", "TEXT"),
    ("qualification_types", "disposing", "INTEGER NOT NULL DEFAULT 0"),
)
"""Columns added since schema 1 (``CREATE TABLE IF NOT EXISTS`` leaves old tables as they are)."""

CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    """Format an amount as MTurk's money string (two decimals, e.g. ``"0.05"``).

    Args:
        value: The amount.

    Returns:
        The string MTurk sends.
    """
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def new_id(length: int = 30) -> str:
    """Return a random identifier in MTurk's alphabet (upper-case letters and digits).

    Args:
        length: Number of characters (MTurk's HIT and assignment ids have 30).

    Returns:
        The identifier.
    """
    # base32 letters and digits are all in MTurk's id alphabet (and much cheaper to draw).
    return base64.b32encode(secrets.token_bytes(length)).decode()[:length]


class Store:
    """One SQLite file holding everything the sandbox knows; safe to share between threads.

    Every public read or write runs under one lock, so the request handlers of the server
    and the test thread that advances the clock never interleave half-done work.
    """

    def __init__(self, path: Path, start_balance: Decimal = Decimal("10000.00")) -> None:
        """Open (or create) the store.

        Args:
            path: The SQLite file; created with its folder when missing.
            start_balance: Account balance of a new store (an existing store keeps its own).

        Raises:
            SandboxError: The file is not a sandbox store or cannot be opened.
        """
        self.path = Path(path)
        self.lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None
            )
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=5000")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise SandboxError(
                f"{self.path}: not a usable sandbox state file ({exc}); pass another --state"
            ) from exc
        with self.transaction():
            version = self.get_meta("schema_version")
            if version is not None and int(version) > SCHEMA_VERSION:
                raise SandboxError(
                    f"{self.path}: written by a newer sandbox (schema {version}); "
                    "upgrade turk or pass another --state"
                )
            self._add_missing_columns()
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            if self.get_meta("balance") is None:
                self.set_meta("balance", money(start_balance))
            if self.get_meta("clock_offset") is None:
                self.set_meta("clock_offset", "0")
        self._clock_offset = float(self.get_meta("clock_offset") or 0)
        self.last_sweep = 0.0

    def _add_missing_columns(self) -> None:
        for table, column, declaration in _ADDED_COLUMNS:
            present = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        """Close the SQLite connection."""
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one write transaction (committed on success, rolled back on error).

        Yields:
            The connection.
        """
        with self.lock:
            if self.conn.in_transaction:  # nested: the outer block commits
                yield self.conn
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        """Return one value of the ``meta`` table, or None.

        Args:
            key: The key.

        Returns:
            The stored string or None.
        """
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store one value in the ``meta`` table.

        Args:
            key: The key.
            value: The value.
        """
        with self.lock:
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def now(self) -> float:
        """Return the sandbox clock: wall time plus the offset set by :meth:`advance_clock`.

        Returns:
            Seconds since the epoch.
        """
        return time.time() + self._clock_offset

    @property
    def clock_offset(self) -> float:
        """Seconds the clock has been moved on in all (kept in the state file)."""
        return self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox clock forward (kept across restarts), to reach deadlines fast.

        Args:
            seconds: How far to move it (>= 0).

        Raises:
            SandboxError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise SandboxError(f"advance_clock: {seconds} is negative; the clock only moves on")
        with self.transaction():
            self._clock_offset += seconds
            self.set_meta("clock_offset", repr(self._clock_offset))
            self.last_sweep = 0.0

    def balance(self) -> Decimal:
        """Return the account's available balance.

        Returns:
            The balance.
        """
        return Decimal(self.get_meta("balance") or "0")

    def charge(self, kind: str, reference: str, amount: Decimal, fee: Decimal) -> None:
        """Take a payment and its fee from the balance and record it.

        Args:
            kind: ``assignment`` or ``bonus``.
            reference: The assignment id (or bonus reference).
            amount: What the worker receives.
            fee: MTurk's commission.
        """
        with self.transaction() as conn:
            self.set_meta("balance", money(self.balance() - amount - fee))
            conn.execute(
                "INSERT INTO payments(kind, reference, amount, fee, time) VALUES (?,?,?,?,?)",
                (kind, reference, money(amount), money(fee), self.now()),
            )
