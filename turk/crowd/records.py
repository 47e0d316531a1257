"""Ledger helpers shared by publish, collect, review, status and expire.

Idempotency tokens, RequesterAnnotation strings, timestamps and the intent/done
bookkeeping of the ``actions`` table live here so that every command words them the
same way.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from typing import Any

from turk.ledger import utc_now

ANNOTATION_PREFIX = "turk"
"""First field of every RequesterAnnotation turk writes (``turk:<batch>:<hit key>``)."""

TOKEN_LENGTH = 64
"""MTurk's limit on UniqueRequestToken."""


def request_token(target: str, *parts: object) -> str:
    """Return a deterministic idempotency token for one request on one target.

    The same target and parts always give the same token, so a retried or rerun call
    is recognised by the service as the one it already processed.

    Args:
        target: The crowd target.
        parts: What identifies the request, e.g. ``("hit", hit_key)``.

    Returns:
        A hex digest of at most :data:`TOKEN_LENGTH` characters.
    """
    text = "|".join([target, *(str(p) for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:TOKEN_LENGTH]


def annotation(batch_id: str, hit_key: str) -> str:
    """Return the RequesterAnnotation for a HIT (batch and HIT key; at most 255 chars).

    Args:
        batch_id: The batch the HIT belongs to.
        hit_key: The HIT's deterministic key.

    Returns:
        ``turk:<batch_id>:<hit_key>``.
    """
    return f"{ANNOTATION_PREFIX}:{batch_id}:{hit_key}"[:255]


def parse_annotation(text: str) -> tuple[str, str] | None:
    """Split an annotation written by :func:`annotation` into batch id and HIT key.

    Args:
        text: A HIT's RequesterAnnotation.

    Returns:
        ``(batch_id, hit_key)``, or None for HITs turk did not create.
    """
    parts = text.split(":", 2)
    if len(parts) != 3 or parts[0] != ANNOTATION_PREFIX:
        return None
    return parts[1], parts[2]


def iso(when: datetime | None) -> str | None:
    """Format a service timestamp as UTC ISO-8601 (None stays None)."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    """Parse a timestamp written by :func:`iso` (None stays None)."""
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run a query and return its rows as dicts.

    Args:
        conn: The ledger connection.
        sql: The query.
        params: Its parameters.

    Returns:
        One dict per row, keyed by column name.
    """
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def record_intent(
    conn: sqlite3.Connection,
    *,
    target: str,
    kind: str,
    token: str,
    assignment_id: str | None = None,
    hit_id: str | None = None,
    worker_id: str | None = None,
    amount: str | None = None,
    count: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Write an action's intent (if new) and return its row.

    Args:
        conn: The ledger connection.
        target: The crowd target.
        kind: ``approve``, ``reject``, ``bonus``, ``block``, ``qualify``, ``extend``,
            ``expire`` or ``delete``.
        token: The action's deterministic token (unique per target and kind).
        assignment_id: The assignment acted on, if any.
        hit_id: The HIT acted on, if any.
        worker_id: The worker acted on, if any.
        amount: Money moved, as a string of dollars.
        count: Assignments added (extend).
        reason: What the worker or the log is told.

    Returns:
        The ``actions`` row (the existing one when the intent was already written).
    """
    with conn:
        conn.execute(
            "INSERT OR IGNORE INTO actions (target, kind, token, assignment_id, hit_id, "
            "worker_id, amount, count, reason, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'intent', ?)",
            (
                target,
                kind,
                token,
                assignment_id,
                hit_id,
                worker_id,
                amount,
                count,
                reason,
                utc_now(),
            ),
        )
    return rows(
        conn, "SELECT * FROM actions WHERE target=? AND kind=? AND token=?", (target, kind, token)
    )[0]


def mark_sent(conn: sqlite3.Connection, action_id: int) -> None:
    """Note that an action's call is about to go out (it may have been processed)."""
    with conn:
        conn.execute(
            "UPDATE actions SET sent_at=COALESCE(sent_at, ?) WHERE id=?", (utc_now(), action_id)
        )


def finish_action(
    conn: sqlite3.Connection, action_id: int, status: str, error: str | None = None
) -> None:
    """Close an action as ``done``, ``skipped`` or ``failed`` (with the error).

    Args:
        conn: The ledger connection.
        action_id: The ``actions`` row id.
        status: The final status.
        error: Why it failed or was skipped.
    """
    with conn:
        conn.execute(
            "UPDATE actions SET status=?, done_at=?, error=? WHERE id=?",
            (status, utc_now(), error, action_id),
        )
