"""The rules of curation rounds: their settings and why a cell stops.

Kept apart from :mod:`turk.dataset.rounds` so that reading turk.yaml (and ``turk
--help``) does not load numpy or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STOP_REASONS", "RoundSettings"]

STOP_REASONS = {
    "quota": "holds its quota",
    "exhausted": "ranking exhausted at query_depth",
    "yield": "expected precision of the next candidates below min_yield",
    "rounds": "max_rounds reached",
    "budget": "the next batch would cross the budget",
}
"""Why a cell stops, by the code stored in ``rounds.stop``."""


@dataclass(frozen=True)
class RoundSettings:
    """How rounds run (``rounds:`` in turk.yaml).

    Attributes:
        max_rounds: Most rounds in all, round 1 included (1: a single pass).
        min_yield: Stop a cell when its next candidates are expected to be right less
            often than this.
        fill_chance: Size each batch so the cell fills with this probability.
        rerank: Re-rank each concept's pool from the verdicts (else prompt order).
        min_labels: Verdicts of each kind (accepted, rejected) a concept needs before
            its probe is fitted.
        prior_strength: Weight, in items, of the concept's precision as the prior of a
            cell's.
    """

    max_rounds: int = 1
    min_yield: float = 0.1
    fill_chance: float = 0.8
    rerank: bool = True
    min_labels: int = 5
    prior_strength: float = 4.0
