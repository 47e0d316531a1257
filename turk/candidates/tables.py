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


def candidate_rows(ledger: Ledger, *, role: str | None = None) -> pd.DataFrame:
    """Return the current candidates, ordered by concept, bucket and rank.

    Args:
        ledger: The open ledger.
        role: Only candidates of this role (``positive`` for a concept's ranking,
            ``background`` for the background class); ``None`` for all.

    Returns:
        A frame with :data:`CANDIDATE_COLUMNS` (empty before ``turk rank``).
    """
    sql = f"SELECT {', '.join(CANDIDATE_COLUMNS)} FROM candidates"
    params: tuple[str, ...] = ()
    if role is not None:
        sql += " WHERE role = ?"
        params = (role,)
    sql += " ORDER BY concept, bucket, rank, image_id"
    frame = pd.read_sql_query(sql, ledger.conn, params=params)
    return frame.astype({"bucket": "int64", "image_id": "int64", "rank": "int64"})


def candidate_counts(ledger: Ledger, *, role: str = "positive") -> dict[tuple[str, int], int]:
    """Count the candidates of each concept x bucket cell.

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
            "GROUP BY concept, bucket",
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
