"""The pool: each cell's ranked candidates that no round has sent yet.

``turk rank`` stores every cell's ranking to ``query_depth`` (after the overlap rule,
so an image waits in one concept's pool only); round 1 takes the top
``candidates_per_class``. A later curation round (:mod:`turk.dataset.rounds`) chooses
more from the pool with :func:`send_in_round`; the HIT planner then lays the round's
candidates out as HITs of their own.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from turk.candidates.embed import load_embeddings
from turk.errors import StageError
from turk.ledger import Ledger

__all__ = ["candidate_vectors", "latest_round", "send_in_round"]


def latest_round(ledger: Ledger) -> int:
    """Return the highest round that has chosen candidates (0 before ``turk rank``).

    Args:
        ledger: The open ledger.

    Returns:
        The round number.
    """
    (found,) = ledger.conn.execute("SELECT MAX(round) FROM candidates").fetchone()
    return int(found or 0)


def send_in_round(ledger: Ledger, number: int, picks: Iterable[tuple[str, int, int]]) -> int:
    """Mark pool candidates as chosen by round ``number``, in one transaction.

    Args:
        ledger: The open ledger.
        number: The round (2 or more; round 1 is ``turk rank``'s choice).
        picks: ``(concept, bucket, image_id)`` of positive candidates still in the pool.

    Returns:
        Candidates marked.

    Raises:
        StageError: A pick is not in the pool (chosen already, or never ranked).
    """
    rows = [(number, c, int(b), int(i)) for c, b, i in picks]
    with ledger.conn:
        for row in rows:
            cur = ledger.conn.execute(
                "UPDATE candidates SET round = ? WHERE concept = ? AND bucket = ? "
                "AND image_id = ? AND role = 'positive' AND round IS NULL",
                row,
            )
            if cur.rowcount != 1:
                raise StageError(
                    f"{ledger.path}: candidate {row[3]} of {row[1]} in bucket {row[2]} is not in "
                    "the pool; rerun 'turk rank' if the ranking changed"
                )
    return len(rows)


def candidate_vectors(ledger: Ledger, image_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """Read the embeddings the current candidates were ranked from, for some images.

    Args:
        ledger: The open ledger.
        image_ids: The images wanted.

    Returns:
        ``{image id: unit vector}`` for those embedded with the ranking's model.
    """
    wanted = np.asarray(sorted(set(int(i) for i in image_ids)), dtype=np.int64)
    row = ledger.conn.execute("SELECT slug FROM candidates LIMIT 1").fetchone()
    if row is None:
        raise StageError(f"{ledger.path}: no candidates; run 'turk rank CONCEPTS.yaml' first")
    found: dict[int, np.ndarray] = {}
    for ids, vectors in load_embeddings(ledger, str(row[0])):
        keep = np.flatnonzero(np.isin(ids, wanted))
        for k in keep:
            found[int(ids[k])] = np.asarray(vectors[k], dtype=np.float32)
    return found
