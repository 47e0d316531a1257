"""From the ledger to the analysis library: answers, decisions, workers, audits, cost, report.

The crowd answers in the ledger (``answers`` joined with ``hits`` and ``images``) become
the DataFrames :mod:`analysis` works on. Every item is a binary question "is image I
a C?", its task id ``"<concept>/<image id>"``: binary-grid answers are ``yes``/``no``
already; a multi-select answer says ``yes`` for the item's concept when that concept is
among the classes the worker picked. Gold items give the known label of their task.

:func:`crowd_results` fits the chosen aggregator and decides which items are accepted
(the aggregated label is ``yes``); :func:`ledger_report` adds audits and cost and builds
the :class:`analysis.report.Report`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.aggregation import (
    GLAD,
    MACE,
    Aggregator,
    DawidSkene,
    GoldMajorityVote,
    MajorityVote,
    OneCoinDawidSkene,
)
from analysis.report import CostSummary, Report, ReportSettings, build_report
from analysis.workers import worker_table
from turk.errors import ConfigError, StageError
from turk.ledger import Ledger, utc_now
from turk.money import assignment_fee, bonus_fee

YES = "yes"
NO = "no"
NONE = "none"

AGGREGATORS: dict[str, type[Aggregator]] = {
    "ds": DawidSkene,
    "one-coin": OneCoinDawidSkene,
    "mv": MajorityVote,
    "gold-mv": GoldMajorityVote,
    "glad": GLAD,
    "mace": MACE,
}
"""Aggregation models by the name ``--aggregator`` takes."""

AGGREGATOR_HELP = (
    "ds (Dawid-Skene), one-coin (one-coin Dawid-Skene), mv (majority vote), "
    "gold-mv (gold-weighted majority vote), glad, mace"
)


MIN_POSTERIOR = 0.95
"""Posterior an item needs to be accepted into the dataset (see :func:`crowd_results`)."""


def task_id(concept: str, image_id: int) -> str:
    """Return the task id of the question "is image ``image_id`` a ``concept``?".

    Args:
        concept: Concept name.
        image_id: Image id.

    Returns:
        ``"<concept>/<image id>"``.
    """
    return f"{concept}/{int(image_id)}"


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


def answer_targets(ledger: Ledger) -> list[str]:
    """Return the crowd targets that have answers in the ledger, sorted.

    Args:
        ledger: The open ledger.

    Returns:
        Target names.
    """
    rows = ledger.conn.execute("SELECT DISTINCT target FROM answers ORDER BY target").fetchall()
    return [str(r[0]) for r in rows]


def resolve_target(ledger: Ledger, target: str | None) -> str:
    """Pick the target to analyse: the one named, else the only one with answers.

    Args:
        ledger: The open ledger.
        target: ``--target`` as given, or None.

    Returns:
        The target name.

    Raises:
        StageError: No answers at all, or none for the named target.
        ConfigError: Several targets have answers and none was named.
    """
    targets = answer_targets(ledger)
    if not targets:
        raise StageError(
            f"{ledger.path}: no answers yet; publish HITs and run 'turk collect' first"
        )
    if target is None:
        if len(targets) > 1:
            raise ConfigError(
                f"--target: answers from several targets ({', '.join(targets)}); "
                "name the one to analyse"
            )
        return targets[0]
    if target not in targets:
        raise StageError(
            f"--target {target}: no answers from this target (answers exist for "
            f"{', '.join(targets)}); run 'turk collect --target {target}' first"
        )
    return target


def load_answers(
    ledger: Ledger, target: str, *, include_hit_key: bool = False
) -> tuple[pd.DataFrame, pd.Series, dict[str, int]]:
    """Read the valid answers of one target as binary ``yes``/``no`` questions.

    A binary-grid answer is one question about the HIT's concept. A multi-select answer
    becomes one question per class the HIT offered: ``yes`` for the classes the worker
    picked, ``no`` for the others (``none`` is ``no`` for every class).

    Args:
        ledger: The open ledger.
        target: The crowd target.
        include_hit_key: Also return each answer's ``hit_key``.

    Returns:
        ``(answers, gold, skipped)``: answers with ``task, worker, label, concept,
        image_id, bucket, is_gold, multi`` (and ``hit_key``); gold labels indexed by
        task; counts of answer rows left out (``flagged``: no valid label; ``no
        concept``: a binary item with no concept; ``no bucket``: an image in no time
        bucket).
    """
    frame = pd.read_sql_query(
        "SELECT a.worker_id AS worker, a.hit_key, a.image_id, a.concept, a.label, a.is_gold, "
        "a.expected, h.task AS kind, h.labels AS hit_labels, i.bucket AS image_bucket, "
        "h.bucket AS hit_bucket "
        "FROM answers a JOIN hits h ON h.target = a.target AND h.hit_key = a.hit_key "
        "LEFT JOIN images i ON i.id = a.image_id "
        "WHERE a.target = ? AND a.image_id IS NOT NULL",
        ledger.conn,
        params=(target,),
    )
    skipped: dict[str, int] = {}
    flagged = frame["label"].isna()
    if flagged.any():
        skipped["flagged"] = int(flagged.sum())
    multi = frame["kind"] == "multi"
    no_concept = ~flagged & ~multi & frame["concept"].isna()
    if no_concept.any():
        skipped["no concept"] = int(no_concept.sum())
    frame = frame[~flagged & ~no_concept].copy()
    multi = frame["kind"] == "multi"
    # One question per offered class for multi-select answers.
    frame["concept"] = [
        [c for c in json.loads(labels or "[]") if c != NONE] if is_multi else [concept]
        for is_multi, labels, concept in zip(
            multi, frame["hit_labels"], frame["concept"], strict=True
        )
    ]
    frame = frame.explode("concept")
    frame = frame[frame["concept"].notna()].copy()
    frame["bucket"] = frame["image_bucket"].fillna(frame["hit_bucket"])
    no_bucket = frame["bucket"].isna()
    if no_bucket.any():
        skipped["no bucket"] = int(no_bucket.sum())
        frame = frame[~no_bucket]
    frame["bucket"] = frame["bucket"].astype("int64")
    frame["image_id"] = frame["image_id"].astype("int64")
    frame["label"] = [
        _binary(label, concept, kind)
        for label, concept, kind in zip(
            frame["label"], frame["concept"], frame["kind"], strict=True
        )
    ]
    frame["task"] = [
        task_id(c, i) for c, i in zip(frame["concept"], frame["image_id"], strict=True)
    ]
    frame["is_gold"] = frame["is_gold"].astype(bool)
    gold_rows = frame[frame["is_gold"] & frame["expected"].notna()]
    gold = pd.Series(
        [
            _binary(e, c, k)
            for e, c, k in zip(
                gold_rows["expected"], gold_rows["concept"], gold_rows["kind"], strict=True
            )
        ],
        index=pd.Index(gold_rows["task"], name="task"),
        dtype=object,
        name="label",
    )
    gold = gold[~gold.index.duplicated()]
    frame["multi"] = frame["kind"] == "multi"
    columns = ["task", "worker", "label", "concept", "image_id", "bucket", "is_gold", "multi"]
    answers = frame[[*columns, "hit_key"] if include_hit_key else columns]
    return answers.reset_index(drop=True), gold, skipped


def _binary(label: str, concept: str, kind: str) -> str:
    if kind == "multi":
        return YES if concept in str(label).split("|") else NO
    return YES if str(label).strip().lower() == YES else NO


def make_aggregator(name: str) -> Aggregator:
    """Return a fresh aggregator for an ``--aggregator`` name.

    Args:
        name: One of :data:`AGGREGATORS`.

    Returns:
        The unfitted aggregator.

    Raises:
        ConfigError: Unknown name.
    """
    try:
        return AGGREGATORS[name]()
    except KeyError:
        raise ConfigError(
            f"--aggregator {name!r}: unknown; use one of {', '.join(AGGREGATORS)}"
        ) from None


def crowd_results(
    ledger: Ledger,
    *,
    target: str | None = None,
    aggregator: str = "ds",
    min_posterior: float = MIN_POSTERIOR,
) -> CrowdResults:
    """Aggregate the answers of one target and decide which items are accepted.

    An item is accepted when the model's posterior that it shows its concept reaches
    ``min_posterior``; a bare majority is not enough for a high-precision dataset.

    Args:
        ledger: The open ledger.
        target: The crowd target, or None for the only one with answers.
        aggregator: Aggregation model name (see :data:`AGGREGATORS`).
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
    if not ledger.db["candidates"].exists():
        return items.assign(score=float("nan"), rank=float("nan"))
    ranking = pd.read_sql_query(
        "SELECT concept, bucket, image_id, score, rank, role FROM candidates "
        "WHERE role = 'positive'",
        ledger.conn,
    )
    ranking = ranking.drop_duplicates(["concept", "bucket", "image_id"])
    return items.merge(ranking, on=["concept", "bucket", "image_id"], how="left")


def crowd_cost(ledger: Ledger, target: str) -> CostSummary:
    """Sum what the collected work costs: rewards and fees of every assignment not
    rejected, plus bonuses paid and their fees.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        The :class:`CostSummary`.
    """
    rows = ledger.conn.execute(
        "SELECT h.reward, h.max_assignments, COUNT(*) FROM assignments a "
        "JOIN hits h ON h.target = a.target AND h.hit_key = a.hit_key "
        "WHERE a.target = ? AND a.status != 'Rejected' GROUP BY h.reward, h.max_assignments",
        (target,),
    ).fetchall()
    rewards = Decimal("0.00")
    fees = Decimal("0.00")
    assignments = 0
    for reward_text, max_assignments, count in rows:
        reward = Decimal(str(reward_text))
        per_assignment_fee = assignment_fee(reward, int(max_assignments))
        rewards += reward * int(count)
        fees += per_assignment_fee * int(count)
        assignments += int(count)
    bonuses = Decimal("0.00")
    for (amount,) in ledger.conn.execute(
        "SELECT amount FROM actions WHERE target = ? AND kind = 'bonus' AND status = 'done'",
        (target,),
    ):
        value = Decimal(str(amount))
        bonuses += value
        fees += bonus_fee(value)
    cent = Decimal("0.01")
    return CostSummary(
        rewards=rewards.quantize(cent),
        fees=fees.quantize(cent),
        bonuses=bonuses.quantize(cent),
        assignments=assignments,
    )


def load_audits(ledger: Ledger, target: str) -> pd.DataFrame:
    """Read the marked audit items of one target with their audit's scope and source.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        ``concept, bucket, image_id, correct, source, audit_id, scope_concept,
        scope_bucket, marked_at``, one row per marked item.
    """
    frame = pd.read_sql_query(
        "SELECT i.concept, i.bucket, i.image_id, i.correct, a.source, a.id AS audit_id, "
        "a.scope_concept, a.scope_bucket, i.marked_at FROM audit_items i "
        "JOIN audits a ON a.id = i.audit_id "
        "WHERE a.target = ? AND i.correct IS NOT NULL ORDER BY a.id, i.position",
        ledger.conn,
        params=(target,),
    )
    frame["correct"] = frame["correct"].astype(bool)
    return frame


def ledger_report(
    ledger: Ledger,
    *,
    target: str | None = None,
    aggregator: str = "ds",
    target_precision: float = 0.99,
    confidence: float = 0.95,
    title: str = "turk dataset report",
    notes: tuple[str, ...] = (),
    min_posterior: float = MIN_POSTERIOR,
    quota: int | None = None,
    asked: int | None = None,
    truth_file: Path | None = None,
) -> tuple[Report, CrowdResults]:
    """Build the report of the ledger's crowd verification.

    Args:
        ledger: The open ledger.
        target: The crowd target, or None for the only one with answers.
        aggregator: Aggregation model name.
        target_precision: Precision to certify.
        confidence: Confidence of the certification.
        title: Report title.
        notes: Notes shown at the top of the report.
        min_posterior: Posterior an item needs to be accepted.
        quota: Accepted images wanted per concept and bucket (``images_per_class``);
            cells below it are listed with the reason. None: not listed.
        asked: Candidates asked of the ranking per cell (``candidates_per_class``), to
            tell a short ranking from rejected candidates.
        truth_file: A sample's ``truth.csv``: the report states the precision of the
            accepted images against it. None for a real collection.

    Returns:
        The report and the crowd results it was built from.

    Raises:
        StageError: No answers yet.
        ConfigError: Bad aggregator, target, precision or confidence.
    """
    if not 0 < target_precision < 1 or not 0 < confidence < 1:
        raise ConfigError(
            f"--target-precision {target_precision} / --confidence {confidence}: "
            "both must lie strictly between 0 and 1"
        )
    results = crowd_results(
        ledger, target=target, aggregator=aggregator, min_posterior=min_posterior
    )
    audits = load_audits(ledger, results.target)
    if (audits["source"] == "truth").any():
        notes = (
            *notes,
            "Some audit verdicts were read from a known truth file (sample collection), "
            "not given by a person; certificates built on them show 'truth' as their source.",
        )
    if results.skipped:
        detail = ", ".join(f"{n} {why}" for why, n in sorted(results.skipped.items()))
        notes = (*notes, f"Answer rows left out of the aggregation: {detail}.")
    items = results.items
    if truth_file is not None:
        from turk.sample import load_truth

        truth = load_truth(truth_file)
        items = items.assign(
            true=[
                truth.get(int(i)) == str(c)
                for i, c in zip(items["image_id"], items["concept"], strict=True)
            ]
        )
    short, cells = short_cells(ledger, items, quota, asked or quota) if quota else ([], 0)
    notes = (*notes, *curation_notes(ledger, items, quota=quota, short=short, cells=cells))
    settings = ReportSettings(
        target=target_precision,
        confidence=confidence,
        aggregator=aggregator,
        title=title,
        generated_at=utc_now(),
        notes=notes,
    )
    on_items = results.answers["task"].isin(results.items["task"])
    report = build_report(
        items,
        results.answers.loc[on_items, ["task", "worker", "label"]],
        workers=results.workers,
        audits=audits,
        cost=crowd_cost(ledger, results.target),
        gold_by_concept=results.gold_by_concept,
        settings=settings,
    )
    if quota is not None:
        report.summary.update(quota=quota, cells=cells, cells_at_quota=cells - len(short))
    if truth_file is not None:
        accepted = items[items["accepted"]]
        report.summary["truth_precision"] = (
            float(accepted["true"].mean()) if len(accepted) else float("nan")
        )
    report.summary["target"] = results.target
    report.summary["answer_dates"] = _answer_dates(ledger, results.target)
    return report, results


def curation_notes(
    ledger: Ledger,
    items: pd.DataFrame,
    *,
    quota: int | None = None,
    short: list[str] | None = None,
    cells: int = 0,
) -> list[str]:
    """Say how the dataset was made: the model, the background class, short cells, truth.

    Args:
        ledger: The open ledger.
        items: The verified items (:attr:`CrowdResults.items`), with a ``true`` column
            when a sample's truth is known.
        quota: Accepted images wanted per concept and bucket; None not to speak of cells.
        short: What :func:`short_cells` found below the quota.
        cells: How many labeled cells there are.

    Returns:
        Plain sentences for the top of the report and the datasheet.
    """
    from retrieval.demomodel import describe_model

    notes: list[str] = []
    models = ledger.conn.execute(
        "SELECT DISTINCT s.model, s.pretrained FROM embedding_shards s "
        "WHERE s.slug IN (SELECT DISTINCT slug FROM candidates)"
    ).fetchall()
    for model, pretrained in models:
        notes.append(f"Candidates were ranked with {describe_model(model, pretrained)}.")
    background = ledger.conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT bucket) FROM candidates WHERE role = 'background'"
    ).fetchone()
    if background[0]:
        notes.append(
            f"BACKGROUND holds {background[0]} images ({background[0] // background[1]} per "
            "bucket) taken from the bottom of every concept's ranking: the images least "
            "like any concept. Nobody verified them; they are 'probably none of the "
            "concepts', not a checked class."
        )
    if quota is not None and not short:
        notes.append(f"Every one of the {cells} concept x bucket cells holds its quota of {quota}.")
    elif quota is not None:
        notes.append(
            f"{cells - len(short or [])} of {cells} concept x bucket cells hold their quota of "
            f"{quota} accepted images; below it: {'; '.join(short or [])}."
        )
    if "true" in items.columns:
        accepted = items[items["accepted"]]
        right, n = int(accepted["true"].sum()), len(accepted)
        notes.append(
            f"Against the sample's truth, {right} of {n} accepted images show their concept: "
            f"precision {right / n:.2%} (a sample only; real collections have no truth file)."
            if n
            else "No image accepted yet to compare with the sample's truth."
        )
    return notes


def short_cells(
    ledger: Ledger, items: pd.DataFrame, quota: int, asked: int
) -> tuple[list[str], int]:
    """The labeled cells holding fewer accepted images than the quota, each with why.

    Args:
        ledger: The open ledger.
        items: The verified items.
        quota: Accepted images wanted per concept and bucket.
        asked: Candidates asked of the ranking per cell (``candidates_per_class``).

    Returns:
        ``(one "concept in bucket b: n (why)" per short cell, labeled cells in all)``.
    """
    candidates: dict[tuple[str, int], int] = {}
    for concept, bucket, n in ledger.conn.execute(
        "SELECT concept, bucket, COUNT(*) FROM candidates WHERE role = 'positive' "
        "GROUP BY concept, bucket"
    ):
        candidates[(str(concept), int(bucket))] = int(n)
    buckets = [int(b) for (b,) in ledger.conn.execute("SELECT id FROM buckets WHERE NOT reserved")]
    concepts = sorted({c for c, _ in candidates} | set(items["concept"].astype(str)))
    verified = items.groupby(["concept", "bucket"]).size().to_dict()
    accepted = items[items["accepted"]].groupby(["concept", "bucket"]).size().to_dict()
    short: list[str] = []
    for concept in concepts:
        for bucket in sorted(buckets):
            key = (concept, bucket)
            got = int(accepted.get(key, 0))
            if got >= quota:
                continue
            found, checked = candidates.get(key, 0), int(verified.get(key, 0))
            if found == 0:
                why = "the ranking gave no candidates (the bucket holds none that score for it)"
            elif checked < found:
                why = f"{checked} of {found} candidates verified so far"
            else:
                why = f"{checked - got} of {checked} verified candidates not accepted"
            if 0 < found < asked:
                why = (
                    f"the ranking gave only {found} of the {asked} candidates asked: a small "
                    f"bucket, or other concepts scored higher; {why}"
                )
            short.append(f"{concept} in bucket {bucket}: {got} ({why})")
    return short, len(concepts) * len(buckets)


def _answer_dates(ledger: Ledger, target: str) -> dict[str, Any]:
    row = ledger.conn.execute(
        "SELECT MIN(submit_time), MAX(submit_time) FROM assignments WHERE target = ?",
        (target,),
    ).fetchone()
    return {"first_answer": row[0] or "", "last_answer": row[1] or ""}
