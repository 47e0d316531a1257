"""``turk report``: the verified dataset as it stands, for a person to read.

:func:`ledger_report` starts from :func:`turk.dataset.results.crowd_results`, adds the
audits, the cost (:func:`turk.crowd.spend.work_cost`) and the curation notes, and builds
the :class:`analysis.report.Report` (HTML page, JSON summary).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.report import Report, ReportSettings, build_report
from turk.candidates.tables import candidate_counts, candidate_rows, ranking_models
from turk.collection.tables import bucket_ids
from turk.crowd.backend import pays_workers
from turk.crowd.spend import work_cost
from turk.crowd.tables import answer_dates
from turk.dataset.aggregators import DEFAULT_AGGREGATOR
from turk.dataset.results import MIN_POSTERIOR, CrowdResults, crowd_results
from turk.dataset.rounds import cell_table, round_table, stop_reasons
from turk.dataset.rules import STOP_REASONS
from turk.errors import ConfigError
from turk.ledger import Ledger, utc_now

__all__ = ["curation_notes", "ledger_report", "load_audits", "short_cells"]


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
    aggregator: str = DEFAULT_AGGREGATOR,
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
    paid = pays_workers(results.target)
    if not paid:
        notes = (
            *notes,
            f"Target {results.target}: nobody is paid through turk; approvals, rejections "
            "and bonuses are decisions in the ledger only, and no cost is shown.",
        )
    if results.skipped:
        detail = ", ".join(f"{n} {why}" for why, n in sorted(results.skipped.items()))
        notes = (*notes, f"Answer rows left out of the aggregation: {detail}.")
    items = results.items
    if truth_file is not None:
        from turk.collection.sample import load_truth

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
        cost=work_cost(ledger, results.target) if paid else None,
        gold_by_concept=results.gold_by_concept,
        settings=settings,
    )
    if quota is not None:
        report.summary.update(quota=quota, cells=cells, cells_at_quota=cells - len(short))
        report.cells = cell_table(ledger, results, quota=quota)
        if not paid:
            for column in ("dollars", "dollars_per_accepted"):
                report.cells[column] = "not paid"
        report.rounds = round_table(ledger, results)
        in_cells = int(report.cells["accepted"].sum()) if not report.cells.empty else 0
        report.summary["rounds"] = int(report.rounds["round"].max()) if len(report.rounds) else 0
        report.summary["answers_per_accepted"] = (
            float(report.cells["answers"].sum()) / in_cells if in_cells else None
        )
    if truth_file is not None:
        accepted = items[items["accepted"]]
        report.summary["truth_precision"] = (
            float(accepted["true"].mean()) if len(accepted) else float("nan")
        )
    report.summary["target"] = results.target
    first, last = answer_dates(ledger, results.target)
    report.summary["answer_dates"] = {"first_answer": first, "last_answer": last}
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
    for model, pretrained in ranking_models(ledger):
        notes.append(f"Candidates were ranked with {describe_model(model, pretrained)}.")
    picks = candidate_rows(ledger, role="background")
    background = (len(picks), picks["bucket"].nunique())
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
    candidates = candidate_counts(ledger)
    buckets = bucket_ids(ledger, reserved=False)
    stops = stop_reasons(ledger)
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
            if key in stops:
                why = f"stopped: {STOP_REASONS[stops[key]]}; {why}"
            short.append(f"{concept} in bucket {bucket}: {got} ({why})")
    return short, len(concepts) * len(buckets)
