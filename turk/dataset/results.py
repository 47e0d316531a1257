"""The crowd's verdict: aggregated answers and the items accepted into the dataset.

:func:`crowd_results` reads one target's answers (:func:`turk.crowd.tables.load_answers`),
fits the chosen aggregator and accepts the items whose posterior of showing their
concept reaches ``min_posterior``; audit, report and export all start from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.workers import worker_table
from turk.candidates.tables import candidate_rows
from turk.crowd.tables import NO, YES, load_answers, resolve_target
from turk.dataset.aggregators import DEFAULT_AGGREGATOR, make_aggregator
from turk.errors import ConfigError, StageError
from turk.ledger import Ledger

__all__ = ["MIN_POSTERIOR", "CrowdResults", "crowd_results"]

MIN_POSTERIOR = 0.95
"""Posterior an item needs to be accepted into the dataset (see :func:`crowd_results`)."""


@dataclass
class CrowdResults:
    """The aggregated outcome of the crowd verification on one target.

    Attributes:
        target: The crowd target the answers came from.
        aggregator: Name of the aggregation model.
        answers: One row per answer: ``task, worker, label`` (``yes``/``no``) and
            ``concept, image_id, bucket, is_gold, multi``.
        gold: Known labels indexed by task.
        items: One row per verified (non-gold) item: ``task, concept, bucket, image_id,
            label, accepted, posterior`` (P(yes)), ``answers`` (count), and ``score``,
            ``rank`` when the ranking is known.
        workers: The worker table (:func:`analysis.workers.worker_table`), ``worker``
            as a column.
        gold_by_concept: Gold answers per concept.
        skipped: Answer rows left out, by reason.
    """

    target: str
    aggregator: str
    answers: pd.DataFrame
    gold: pd.Series
    items: pd.DataFrame
    workers: pd.DataFrame
    gold_by_concept: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> pd.DataFrame:
        """The accepted items."""
        return self.items[self.items["accepted"]]


def crowd_results(
    ledger: Ledger,
    *,
    target: str | None = None,
    aggregator: str = DEFAULT_AGGREGATOR,
    min_posterior: float = MIN_POSTERIOR,
) -> CrowdResults:
    """Aggregate the answers of one target and decide which items are accepted.

    An item is accepted when the model's posterior that it shows its concept reaches
    ``min_posterior``; a bare majority is not enough for a high-precision dataset.

    Args:
        ledger: The open ledger.
        target: The crowd target, or None for the only one with answers.
        aggregator: Aggregation model name (see :data:`turk.dataset.aggregators.AGGREGATORS`).
        min_posterior: Posterior an item needs to be accepted.

    Returns:
        The :class:`CrowdResults`.

    Raises:
        StageError: No answers yet (or none valid).
        ConfigError: Unknown aggregator, or several targets and none named.
    """
    if not 0.5 <= min_posterior < 1:
        raise ConfigError(f"--min-posterior {min_posterior}: use a value in [0.5, 1)")
    model = make_aggregator(aggregator)
    target = resolve_target(ledger, target)
    answers, gold, skipped = load_answers(ledger, target)
    if answers.empty:
        raise StageError(
            f"{ledger.path}: no valid answers from {target} yet "
            f"({sum(skipped.values())} flagged); run 'turk collect' when workers have answered"
        )
    model.fit(answers[["task", "worker", "label"]], gold if len(gold) else None, labels=[NO, YES])
    posterior = model.probas_[YES]
    decided = model.labels_
    regular = answers[~answers["is_gold"]]
    items = (
        regular.groupby("task", sort=True)
        .agg(
            concept=("concept", "first"),
            bucket=("bucket", "first"),
            image_id=("image_id", "first"),
            multi=("multi", "all"),
        )
        .reset_index()
    )
    items["label"] = items["task"].map(decided).astype(object)
    items["posterior"] = items["task"].map(posterior).astype(float)
    items["accepted"] = (items["label"] == YES) & (items["posterior"] >= min_posterior)
    items["answers"] = items["task"].map(answers.groupby("task").size()).astype(int)
    items = _with_ranking(ledger, items)
    if "role" in items.columns:
        # Multi-select HITs ask every class about every image; of those questions the
        # dataset's items are the ranked positive candidates.
        keep = ~items["multi"] | (items["role"] == "positive")
        items = items[keep].drop(columns=["role"]).reset_index(drop=True)
    items = items.drop(columns=["multi"])
    workers = worker_table(
        answers[["task", "worker", "label"]], gold if len(gold) else None, positive_label=YES
    )
    workers = workers.reset_index()
    gold_answers = answers[answers["is_gold"]]
    gold_by_concept = {str(k): int(v) for k, v in gold_answers.groupby("concept").size().items()}
    return CrowdResults(
        target=target,
        aggregator=aggregator,
        answers=answers,
        gold=gold,
        items=items,
        workers=workers,
        gold_by_concept=gold_by_concept,
        skipped=skipped,
    )


def _with_ranking(ledger: Ledger, items: pd.DataFrame) -> pd.DataFrame:
    """Add the CLIP ``score``, ``rank`` and ``role`` of each item from the candidates."""
    ranking = candidate_rows(ledger, role="positive")
    ranking = ranking.drop_duplicates(["concept", "bucket", "image_id"])
    return items.merge(ranking, on=["concept", "bucket", "image_id"], how="left")
