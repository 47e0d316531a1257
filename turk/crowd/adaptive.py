"""Adaptive redundancy for ``turk review --extend``: buy answers only where they matter.

:func:`policy_rule` turns :class:`analysis.redundancy.RedundancyPolicy` into the
per-item rule :mod:`turk.crowd.review` asks when it decides which HITs to extend: an item is
uncertain while the policy says ``more`` (its posterior, from the answers so far
weighted by each worker's accuracy on gold, has not reached the threshold either way
and it has fewer than the most answers allowed). Answers of rejected assignments and of
workers flagged as spammers or clickers do not count, and those workers carry no weight.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from analysis.redundancy import RedundancyPolicy, gold_skill_estimates
from analysis.workers import worker_table
from turk.crowd.review import ItemAnswers
from turk.crowd.tables import YES, load_answers, task_id
from turk.ledger import Ledger

DEFAULT_THRESHOLD = 0.99
"""Posterior at which an item needs no more answers."""


def _rejected_workers_answers(ledger: Ledger, target: str) -> set[tuple[str, str]]:
    rows = ledger.conn.execute(
        "SELECT DISTINCT worker_id, hit_key FROM assignments WHERE target = ? "
        "AND status = 'Rejected'",
        (target,),
    ).fetchall()
    return {(str(w), str(h)) for w, h in rows}


def item_decisions(
    ledger: Ledger,
    target: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_answers: int = 2,
    max_answers: int | None = None,
) -> pd.DataFrame:
    """Decide accept / reject / more for every verified item of a target.

    Args:
        ledger: The open ledger.
        target: The crowd target.
        threshold: Posterior needed to stop asking.
        min_answers: Answers every item gets before a decision.
        max_answers: Answers after which no more are asked (None: the largest
            ``max_total_assignments`` of the target's HITs).

    Returns:
        The policy's table (:meth:`RedundancyPolicy.decide`) indexed by task, with
        ``image_id`` added; empty when there are no answers.
    """
    answers, gold, _ = load_answers(ledger, target, include_hit_key=True)
    if answers.empty:
        return pd.DataFrame(columns=["answers", "label", "confidence", "decision", "image_id"])
    rejected = _rejected_workers_answers(ledger, target)
    if rejected:
        keep = [
            (w, h) not in rejected
            for w, h in zip(answers["worker"], answers["hit_key"], strict=True)
        ]
        answers = answers[keep]
    if max_answers is None:
        row = ledger.conn.execute(
            "SELECT MAX(max_total_assignments) FROM hits WHERE target = ?", (target,)
        ).fetchone()
        max_answers = max(int(row[0] or 1), min_answers)
    triples = answers[["task", "worker", "label"]]
    skills = gold_skill_estimates(triples, gold) if len(gold) else None
    flagged: frozenset[str] = frozenset()
    if len(gold):
        table = worker_table(triples, gold, positive_label=YES)
        flagged = frozenset(str(w) for w in table.index[table["spammer"] | table["clicker"]])
    policy = RedundancyPolicy(
        threshold=threshold,
        min_answers=min_answers,
        max_answers=max_answers,
        positive_label=YES,
        skip_workers=flagged,
    )
    regular = answers[~answers["is_gold"]]
    # Gold answers weigh workers (skills); decisions are about the regular items.
    triples = regular[["task", "worker", "label"]]
    decisions = policy.decide(
        triples, skills, labels=["no", YES], tasks=sorted(set(regular["task"]))
    )
    image_of = regular.drop_duplicates("task").set_index("task")["image_id"]
    decisions["image_id"] = image_of.reindex(decisions.index).to_numpy()
    return decisions


def policy_rule(
    ledger: Ledger,
    target: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_answers: int = 2,
    max_answers: int | None = None,
) -> Callable[[ItemAnswers], bool]:
    """Return the rule ``turk review --extend`` uses: True for items the policy wants
    more answers for.

    Decisions are computed once from the ledger's answers when the rule is made. An item
    of a multi-select HIT (no concept) is uncertain when any class question about its
    image is.

    Args:
        ledger: The open ledger.
        target: The crowd target.
        threshold: Posterior needed to stop asking.
        min_answers: Answers every item gets before a decision.
        max_answers: Cap on answers per item (None: the HITs' extension cap).

    Returns:
        A callable taking a review :class:`turk.crowd.review.ItemAnswers`.
    """
    decisions = item_decisions(
        ledger, target, threshold=threshold, min_answers=min_answers, max_answers=max_answers
    )
    more = decisions[decisions["decision"] == "more"]
    uncertain_tasks = set(more.index.astype(str))
    uncertain_images = {int(i) for i in more["image_id"]}

    def uncertain(item: ItemAnswers) -> bool:
        if item.concept is None:
            return int(item.image_id) in uncertain_images
        return task_id(item.concept, item.image_id) in uncertain_tasks

    return uncertain
