"""How other areas read the tables the candidates area owns: ``candidates`` and the
embedding shards.

Only :mod:`turk.candidates` writes ``embedding_shards``, ``embedding_failures`` and
``candidates`` (``turk embed``, ``turk rank``); every other area reads them through these
functions (and :func:`turk.candidates.embed.registered_shards` /
:func:`turk.candidates.embed.load_embeddings` for the vectors).
"""

from __future__ import annotations

import pandas as pd

from turk.ledger import Ledger

__all__ = [
    "CANDIDATE_COLUMNS",
    "candidate_counts",
    "candidate_rows",
    "ranking_models",
]

CANDIDATE_COLUMNS = ["concept", "bucket", "image_id", "score", "rank", "role"]
"""Columns of a candidate row (and of the candidates exports), in order."""


def candidate_rows(ledger: Ledger, *, role: str | None = None, pool: bool = False) -> pd.DataFrame:
    """Return the candidates chosen for people (every round so far), by concept, bucket, rank.

    Args:
        ledger: The open ledger.
        role: Only candidates of this role (``positive`` for a concept's ranking,
            ``background`` for the background class); ``None`` for all.
        pool: Also the ranked candidates no round has chosen yet (``round`` NaN).

    Returns:
        A frame with :data:`CANDIDATE_COLUMNS` and ``round`` (empty before ``turk rank``).
    """
    sql = f"SELECT {', '.join(CANDIDATE_COLUMNS)}, round FROM candidates WHERE 1=1"
    params: tuple[str, ...] = ()
    if not pool:
        sql += " AND round IS NOT NULL"
    if role is not None:
        sql += " AND role = ?"
        params = (role,)
    sql += " ORDER BY concept, bucket, rank, image_id"
    frame = pd.read_sql_query(sql, ledger.conn, params=params)
    return frame.astype({"bucket": "int64", "image_id": "int64", "rank": "int64"})


def candidate_counts(ledger: Ledger, *, role: str = "positive") -> dict[tuple[str, int], int]:
    """Count the candidates chosen for people in each concept x bucket cell.

    Args:
        ledger: The open ledger.
        role: The role counted.

    Returns:
        ``{(concept, bucket): candidates}`` for the cells that have any.
    """
    return {
        (str(concept), int(bucket)): int(n)
        for concept, bucket, n in ledger.conn.execute(
            "SELECT concept, bucket, COUNT(*) FROM candidates WHERE role = ? "
            "AND round IS NOT NULL GROUP BY concept, bucket",
            (role,),
        )
    }


def ranking_models(ledger: Ledger) -> list[tuple[str, str | None]]:
    """The models whose embeddings the current candidates were ranked from.

    Args:
        ledger: The open ledger.

    Returns:
        ``(model, pretrained)`` pairs; empty before ``turk rank``.
    """
    return [
        (str(model), None if pretrained is None else str(pretrained))
        for model, pretrained in ledger.conn.execute(
            "SELECT DISTINCT s.model, s.pretrained FROM embedding_shards s "
            "WHERE s.slug IN (SELECT DISTINCT slug FROM candidates)"
        )
    ]
