"""The dataset report: what was verified, what is certified, and what is only estimated.

:func:`build_report` turns the outcome of a crowd verification (one row per verified
item with its posterior and decision, the raw answers, the worker table, the audited
items and the cost) into a :class:`Report`: precision per concept x bucket with
intervals, certified from an audit (exact one-sided Clopper-Pearson bound) or only
estimated from the aggregation model, plus the worker accuracy distribution, answers
per item, agreement against the CLIP score rank and the cost per accepted image.
:func:`write_report` writes it as one self-contained HTML file (inline CSS, inline SVG,
no script, nothing fetched), ``report.json`` and CSV tables.

Inputs (pandas DataFrames):

- ``items``: one row per verified item: ``task`` (unique), ``concept``, ``bucket``,
  ``image_id``, ``label`` (aggregated label), ``accepted`` (bool: the item goes into
  the dataset as its concept), ``posterior`` (model probability that the accepted
  decision is right, i.e. P(item is its concept)), optional ``score`` and ``rank``
  (CLIP score and 0-based rank within concept and bucket) and ``is_gold``.
- ``answers``: ``task, worker, label`` (one row per answer).
- ``workers``: the worker table of :func:`analysis.workers.worker_table` with
  ``worker`` as a column (or as the index); the report shows ``answers``,
  ``gold_answers``, ``gold_correct``, ``accuracy`` (share right on gold, plotted),
  ``accuracy_low``/``accuracy_high``, ``sensitivity_mean``, ``specificity_mean``,
  ``spammer`` and ``clicker`` where present.
- ``audits``: one row per audited item: ``concept``, ``bucket``, ``image_id``,
  ``correct`` (bool, or missing while not yet marked), and optionally ``source``
  (``requester`` when a person looked, ``truth`` when read from a known truth file),
  ``audit_id``, ``scope_concept`` / ``scope_bucket`` (the population the audit sampled
  from; missing means all) and ``in_pooled`` (the item belongs to the audit's pooled
  sample, uniform over its whole scope). Without these columns the rows are taken as
  one uniform sample of the whole dataset.

Which audited items back which claim: a concept x bucket cell uses every marked item
of one audit covering it that falls in the cell; a pooled row (a concept over all
buckets, or the whole dataset) uses only the pooled sample of an audit whose scope is
that whole set. Items sampled within an audit share one random ranking
(:func:`analysis.certify.audit_sample`), so both are uniform samples. When several
audits qualify, the one with the most marked items is used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import certify
from analysis.errors import AnalysisError
from analysis.svgplot import IntervalPoint, bar_chart, interval_chart, line_chart

ALL = "all"
"""Value of ``concept`` or ``bucket`` in a pooled row of the precision table."""

AUDIT_SOURCES = {
    "requester": "marked by the requester on the audit page",
    "answers-file": "marked by the requester in an answers file",
    "truth": "read from a known truth file (sample or demo collection), not a human audit",
}
"""Where audit verdicts came from, as the report explains them."""

_ITEM_COLUMNS = ("task", "concept", "bucket", "image_id", "label", "accepted", "posterior")
_ANSWER_COLUMNS = ("task", "worker", "label")
_AUDIT_COLUMNS = ("concept", "bucket", "image_id", "correct")


@dataclass(frozen=True)
class CostSummary:
    """What the verification cost.

    Attributes:
        rewards: Rewards paid or owed for approved and submitted assignments.
        fees: Marketplace fees on rewards and bonuses.
        bonuses: Bonuses paid.
        assignments: Number of assignments the cost covers.
        currency: Currency code.
    """

    rewards: Decimal
    fees: Decimal
    bonuses: Decimal = Decimal("0.00")
    assignments: int = 0
    currency: str = "USD"

    @property
    def total(self) -> Decimal:
        """Rewards, fees and bonuses together."""
        return self.rewards + self.fees + self.bonuses


@dataclass(frozen=True)
class ReportSettings:
    """How the report certifies and what it says about itself.

    Attributes:
        target: Precision the dataset is meant to reach (e.g. 0.99).
        confidence: Confidence of the one-sided certification (e.g. 0.95).
        aggregator: Name of the aggregation model behind the estimates.
        title: Report title.
        generated_at: Timestamp shown in the report.
        notes: Plain-text notes shown at the top (e.g. how the CLIP model was chosen).
        rank_bins: Number of CLIP rank bins in the agreement table.
    """

    target: float = 0.99
    confidence: float = 0.95
    aggregator: str = "ds"
    title: str = "Dataset report"
    generated_at: str = ""
    notes: tuple[str, ...] = ()
    rank_bins: int = 10


@dataclass
class Report:
    """A built report: its tables, plots and statements.

    Attributes:
        settings: The settings it was built with.
        precision: One row per concept x bucket, per concept (bucket ``all``) and for
            the whole dataset (both ``all``): accepted, audited, errors, Clopper-Pearson
            bounds, model estimate, status.
        workers: The worker table.
        answers_per_item: ``answers`` (count per item) -> ``items`` (how many items).
        rank_agreement: Per CLIP rank bin: items, share accepted (precision at depth as
            the crowd judged it), share true (against a known truth: an item column
            ``true``; NaN without one), mean agreement of
            answers with the aggregated label, mean posterior.
        items: The verified items as given.
        audits: The audited items matched against the current decisions.
        cost: The cost summary, or None when unknown.
        claims: Plain statements of what is certified and what is only estimated.
        warnings: Problems the reader should know about (no gold, stale audits...).
        summary: Headline numbers.
        cells: How each concept x bucket cell was filled, when the caller knows:
            ``concept, bucket, rounds, sent, answers, dollars, accepted, overshoot,
            answers_per_accepted, dollars_per_accepted, precision_at_depth, stop,
            workforce, language``;
            empty otherwise.
        rounds: One row per curation round, when the caller knows: ``round, cells,
            sent, verified, accepted, yield, expected, reranked_cells, heldout_prompt,
            heldout_rerank``; empty otherwise.
    """

    settings: ReportSettings
    precision: pd.DataFrame
    workers: pd.DataFrame
    answers_per_item: pd.DataFrame
    rank_agreement: pd.DataFrame
    items: pd.DataFrame
    audits: pd.DataFrame
    cost: CostSummary | None
    claims: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    rounds: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON-serialisable data (money as strings).

        Returns:
            A dict with ``settings``, ``summary``, ``claims``, ``warnings``, ``cost`` and
            the tables as lists of records.
        """
        cost = None
        if self.cost is not None:
            cost = {
                "currency": self.cost.currency,
                "rewards": str(self.cost.rewards),
                "fees": str(self.cost.fees),
                "bonuses": str(self.cost.bonuses),
                "total": str(self.cost.total),
                "assignments": self.cost.assignments,
                "per_accepted_image": _per_image(self.cost, self.summary.get("accepted", 0)),
            }
        return {
            "settings": {
                "target": self.settings.target,
                "confidence": self.settings.confidence,
                "aggregator": self.settings.aggregator,
                "title": self.settings.title,
                "generated_at": self.settings.generated_at,
                "notes": list(self.settings.notes),
            },
            "summary": _jsonable(self.summary),
            "claims": self.claims,
            "warnings": self.warnings,
            "cost": cost,
            "precision": _records(self.precision),
            "workers": _records(self.workers),
            "answers_per_item": _records(self.answers_per_item),
            "rank_agreement": _records(self.rank_agreement),
            "cells": _records(self.cells),
            "rounds": _records(self.rounds),
        }


@dataclass(frozen=True)
class ReportFiles:
    """Files :func:`write_report` wrote.

    Attributes:
        html: The self-contained HTML report.
        json: ``report.json``.
        csvs: The CSV tables, by name.
    """

    html: Path
    json: Path
    csvs: dict[str, Path]


def _per_image(cost: CostSummary, accepted: int) -> str | None:
    if accepted <= 0:
        return None
    return str((cost.total / accepted).quantize(Decimal("0.0001")))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is pd.NA or value is None:
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(dict(row)) for row in frame.to_dict(orient="records")]


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AnalysisError(
            f"{name}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}"
        )


def _status(lower: float, upper: float, audited: int, target: float) -> str:
    if audited == 0:
        return "not audited"
    if lower >= target:
        return "certified"
    if upper < target:
        return "refuted"
    return "not certified"


def _precision_row(
    concept: object,
    bucket: object,
    cell_items: pd.DataFrame,
    marked: pd.DataFrame,
    settings: ReportSettings,
) -> dict[str, Any]:
    accepted = cell_items[cell_items["accepted"]]
    audited = len(marked)
    correct = int(marked["correct"].astype(bool).sum()) if audited else 0
    # The audit drew its sample without replacement from the accepted items: the exact
    # finite-population bound applies while the accepted set is the one it was drawn
    # from (a stale audit larger than today's set falls back to Clopper-Pearson).
    finite = 0 < audited <= len(accepted)
    cert = certify.certify_precision(
        correct,
        audited,
        settings.target,
        settings.confidence,
        population=len(accepted),
        finite_population=finite,
    )
    upper = (
        cert.precision
        if cert.census
        else certify.clopper_pearson_upper(correct, audited, settings.confidence)
    )
    posterior = accepted["posterior"].astype(float)
    estimate = float(posterior.mean()) if len(posterior) else math.nan
    sources = sorted(set(marked["source"].dropna().astype(str))) if audited else []
    return {
        "concept": str(concept),
        "bucket": str(bucket),
        "verified": len(cell_items),
        "accepted": len(accepted),
        "estimated_precision": estimate,
        "expected_errors": float((1 - posterior).sum()) if len(posterior) else 0.0,
        "audited": audited,
        "audit_errors": audited - correct,
        "audit_precision": cert.precision if audited else math.nan,
        "certified_lower": cert.lower_bound if audited else math.nan,
        "binomial_lower": cert.lower_binomial if audited else math.nan,
        "certified_upper": upper if audited else math.nan,
        "census": bool(cert.census),
        "status": _status(cert.lower_bound, upper, audited, settings.target),
        "audit_id": int(marked["audit_id"].iloc[0]) if audited else None,
        "audit_source": "+".join(sources),
        "zero_error_sample_needed": _sample_needed(len(accepted), settings, 0),
    }


def _sample_needed(accepted: int, settings: ReportSettings, errors: int) -> int | None:
    """Audit size that certifies the target for ``accepted`` images with ``errors`` found
    (None when even auditing every one cannot)."""
    if accepted == 0:
        return certify.required_sample_size(settings.target, settings.confidence, errors)
    try:
        return certify.required_sample_size_finite(
            accepted, settings.target, settings.confidence, errors
        )
    except AnalysisError:
        return None


def _bound_name(row: Mapping[Any, Any]) -> str:
    """Which exact bound a precision row's certificate used."""
    if row["census"]:
        return "every accepted image audited"
    if row["binomial_lower"] != row["certified_lower"]:
        return (
            f"exact hypergeometric bound for {row['accepted']} accepted images; "
            f"Clopper-Pearson would give {row['binomial_lower']:.2%}"
        )
    return "exact Clopper-Pearson"


def _covering(audits: pd.DataFrame, concept: object, bucket: object) -> pd.Series:
    """Audits whose scope contains the scope (concept, bucket); ALL means every one."""
    concept_ok = audits["scope_concept"].isna()
    if concept != ALL:
        concept_ok |= audits["scope_concept"] == concept
    bucket_ok = audits["scope_bucket"].isna()
    if bucket != ALL:
        bucket_ok |= audits["scope_bucket"] == bucket
    return concept_ok & bucket_ok


def _audit_for(audits: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """The marked items of the one audit with the most marked items under ``mask``."""
    chosen = audits[mask]
    if chosen.empty:
        return chosen
    counts = chosen.groupby("audit_id").size()
    best = max(counts.index, key=lambda a: (int(counts[a]), int(a)))
    return chosen[chosen["audit_id"] == best]


def _precision_table(
    items: pd.DataFrame, audits: pd.DataFrame, settings: ReportSettings
) -> pd.DataFrame:
    # A cell draws on every marked item of one covering audit that falls in the cell:
    # all of an audit's items come from one random ranking, so the marked items of a
    # cell are its lowest-ranked items, a uniform sample of the cell. A pooled row
    # (a concept over all buckets, or the whole dataset) uses only the audit's pooled
    # sample, the one that is uniform over the pooled set.
    rows: list[dict[str, Any]] = []
    for (concept, bucket), cell in items.groupby(["concept", "bucket"], sort=True):
        mask = (
            _covering(audits, concept, bucket)
            & (audits["concept"] == concept)
            & (audits["bucket"] == bucket)
        )
        rows.append(_precision_row(concept, bucket, cell, _audit_for(audits, mask), settings))
    for concept, cell in items.groupby("concept", sort=True):
        mask = (
            _covering(audits, concept, ALL) & (audits["concept"] == concept) & audits["in_pooled"]
        )
        rows.append(_precision_row(concept, ALL, cell, _audit_for(audits, mask), settings))
    mask = _covering(audits, ALL, ALL) & audits["in_pooled"]
    rows.append(_precision_row(ALL, ALL, items, _audit_for(audits, mask), settings))
    return pd.DataFrame(rows)


def _match_audits(items: pd.DataFrame, audits: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep marked audit items that are still accepted; return them and how many were dropped."""
    audits = audits.copy()
    defaults: dict[str, Any] = {
        "source": "requester",
        "audit_id": 0,
        "scope_concept": None,
        "scope_bucket": None,
        "in_pooled": True,
    }
    for column, value in defaults.items():
        if column not in audits.columns:
            audits[column] = value
    audits = audits[audits["correct"].notna()]
    audits["in_pooled"] = audits["in_pooled"].astype(bool)
    audits["scope_concept"] = audits["scope_concept"].astype(object)
    audits["scope_bucket"] = pd.to_numeric(audits["scope_bucket"]).astype("Int64")
    if audits.empty:
        return audits, 0
    audits["bucket"] = audits["bucket"].astype("int64")
    audits["image_id"] = audits["image_id"].astype("int64")
    accepted = items.loc[items["accepted"], ["concept", "bucket", "image_id"]]
    keys = pd.MultiIndex.from_frame(accepted.astype({"bucket": "int64", "image_id": "int64"}))
    keep = pd.MultiIndex.from_frame(audits[["concept", "bucket", "image_id"]]).isin(keys)
    return audits[keep].reset_index(drop=True), int((~keep).sum())


def _answers_per_item(items: pd.DataFrame, answers: pd.DataFrame) -> pd.DataFrame:
    counts = answers.groupby("task").size().reindex(items["task"], fill_value=0)
    table = counts.value_counts().sort_index()
    return pd.DataFrame({"answers": table.index.astype(int), "items": table.to_numpy(int)})


def _rank_agreement(items: pd.DataFrame, answers: pd.DataFrame, bins: int) -> pd.DataFrame:
    columns = [
        "rank_from", "rank_to", "items", "share_accepted", "share_true", "agreement", "posterior",
    ]  # fmt: skip
    if "rank" not in items.columns or items["rank"].isna().all():
        return pd.DataFrame(columns=columns)
    ranked = items[items["rank"].notna()].copy()
    ranked["rank"] = ranked["rank"].astype(int)
    merged = answers.merge(ranked[["task", "label"]], on="task", suffixes=("", "_agg"))
    merged["agrees"] = merged["label"].astype(str) == merged["label_agg"].astype(str)
    agreement = merged.groupby("task")["agrees"].mean()
    ranked["agreement"] = ranked["task"].map(agreement)
    top = int(ranked["rank"].max()) + 1
    edges = np.unique(np.linspace(0, top, min(bins, top) + 1).round().astype(int))
    ranked["bin"] = np.searchsorted(edges, ranked["rank"].to_numpy(), side="right") - 1
    rows = []
    for b, group in ranked.groupby("bin", sort=True):
        position = int(str(b))
        rows.append(
            {
                "rank_from": int(edges[position]),
                "rank_to": int(edges[position + 1]) - 1,
                "items": len(group),
                "share_accepted": float(group["accepted"].mean()),
                "share_true": float(group["true"].astype(float).mean())
                if "true" in group.columns
                else math.nan,
                "agreement": float(group["agreement"].mean()),
                "posterior": float(group["posterior"].mean()),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _claims(
    precision: pd.DataFrame, settings: ReportSettings, dropped: int
) -> tuple[list[dict[str, str]], list[str]]:
    claims: list[dict[str, str]] = []
    warnings: list[str] = []
    target = f"{settings.target:.2%}"
    confidence = f"{settings.confidence:.0%}"
    for row in precision.to_dict(orient="records"):
        scope = _scope_name(row["concept"], row["bucket"])
        if row["census"] and row["status"] in ("certified", "refuted"):
            # Every accepted image was looked at: the precision is exact, no bound needed,
            # but a handful of images says little about the ones not collected yet.
            verdict = "meets" if row["status"] == "certified" else "is below"
            few = (
                f" Only {row['accepted']} images: too few to say much beyond them."
                if row["accepted"]
                < certify.required_sample_size(settings.target, settings.confidence, 0)
                else ""
            )
            claims.append(
                {
                    "scope": scope,
                    "kind": str(row["status"]),
                    "text": (
                        f"{scope}: all {row['accepted']} accepted images audited (a census), "
                        f"{row['audit_errors']} error(s): precision {row['audit_precision']:.2%} "
                        f"exactly, which {verdict} the {target} target.{few}"
                    ),
                }
            )
        elif row["status"] == "certified":
            source = row["audit_source"]
            how = " (audit verdicts read from a truth file)" if "truth" in source else ""
            claims.append(
                {
                    "scope": scope,
                    "kind": "certified",
                    "text": (
                        f"{scope}: precision >= {row['certified_lower']:.2%} at {confidence} "
                        f"confidence ({_bound_name(row)}), from {row['audited']} audited "
                        f"items with {row['audit_errors']} error(s); meets the {target} "
                        f"target{how}."
                    ),
                }
            )
        elif row["status"] == "refuted":
            claims.append(
                {
                    "scope": scope,
                    "kind": "refuted",
                    "text": (
                        f"{scope}: precision <= {row['certified_upper']:.2%} at {confidence} "
                        f"confidence from {row['audited']} audited items with "
                        f"{row['audit_errors']} error(s); below the {target} target."
                    ),
                }
            )
        elif row["status"] == "not certified":
            claims.append(
                {
                    "scope": scope,
                    "kind": "not certified",
                    "text": (
                        f"{scope}: {row['audited']} audited items with {row['audit_errors']} "
                        f"error(s) give a lower bound of {row['certified_lower']:.2%}, not "
                        f"enough to certify {target}; audit more items."
                    ),
                }
            )
        elif (
            row["bucket"] == ALL
            and row["accepted"] > 0
            and not math.isnan(row["estimated_precision"])
        ):
            # Unaudited cells stay in the table; the claims list only the pooled estimates.
            claims.append(
                {
                    "scope": scope,
                    "kind": "estimated",
                    "text": (
                        f"{scope}: not audited; the {settings.aggregator} model estimates "
                        f"precision {row['estimated_precision']:.2%} (an estimate, not a "
                        f"certificate; {row['zero_error_sample_needed']} audited items "
                        f"without error would certify {target})."
                    ),
                }
            )
    claims.sort(key=lambda c: (c["scope"] != "whole dataset", not c["scope"].endswith("buckets)")))
    if dropped:
        warnings.append(
            f"{dropped} audited item(s) are no longer accepted by the current aggregation "
            "and were left out of the certification; rerun 'turk audit' if the accepted "
            "set changed much since the audit."
        )
    return claims, warnings


def _scope_name(concept: str, bucket: str) -> str:
    if concept == ALL:
        return "whole dataset"
    if bucket == ALL:
        return f"concept {concept} (all buckets)"
    return f"concept {concept}, bucket {bucket}"


def build_report(
    items: pd.DataFrame,
    answers: pd.DataFrame,
    *,
    workers: pd.DataFrame | None = None,
    audits: pd.DataFrame | None = None,
    cost: CostSummary | None = None,
    gold_by_concept: Mapping[str, int] | None = None,
    settings: ReportSettings | None = None,
) -> Report:
    """Build the report of a verified dataset.

    Args:
        items: Verified items (columns in the module docstring).
        answers: Answers, ``task, worker, label``.
        workers: The worker table, or None.
        audits: Audited items, or None when no audit was made.
        cost: What the verification cost, or None when unknown.
        gold_by_concept: Number of gold items answered per concept; a concept with none
            gets a warning (worker quality unmeasured there). None skips the check.
        settings: Target, confidence and labels; defaults to 99% at 95%.

    Returns:
        The :class:`Report`.

    Raises:
        AnalysisError: No verified items or no answers (nothing to report yet), a
            missing column, or audits naming items that were never verified.
    """
    settings = settings or ReportSettings()
    if not 0 < settings.target < 1 or not 0 < settings.confidence < 1:
        raise AnalysisError(
            f"target {settings.target} and confidence {settings.confidence} must lie "
            "strictly between 0 and 1"
        )
    if answers.empty or items.empty:
        raise AnalysisError(
            "no answers to report on yet; publish HITs and run 'turk collect' first"
        )
    _require(items, _ITEM_COLUMNS, "items")
    _require(answers, _ANSWER_COLUMNS, "answers")
    items = items.copy()
    items["accepted"] = items["accepted"].astype(bool)
    if items["task"].duplicated().any():
        dup = items.loc[items["task"].duplicated(), "task"].iloc[0]
        raise AnalysisError(f"items: task {dup!r} appears twice; tasks must be unique")
    unknown = set(answers["task"]) - set(items["task"])
    if unknown:
        raise AnalysisError(
            f"answers: {len(unknown)} answer task(s) are not verified items "
            f"(e.g. {sorted(map(str, unknown))[0]!r}); pass the items they belong to"
        )
    if audits is None:
        audits = pd.DataFrame(columns=list(_AUDIT_COLUMNS))
    _require(audits, _AUDIT_COLUMNS, "audits")
    if not audits.empty:
        known = pd.MultiIndex.from_frame(
            items[["concept", "bucket", "image_id"]].astype(
                {"bucket": "int64", "image_id": "int64"}
            )
        )
        audit_keys = pd.MultiIndex.from_frame(
            audits[["concept", "bucket", "image_id"]].astype(
                {"bucket": "int64", "image_id": "int64"}
            )
        )
        stray = ~audit_keys.isin(known)
        if stray.any():
            first = audits[stray].iloc[0]
            raise AnalysisError(
                f"audits: image {first['image_id']} ({first['concept']}, bucket "
                f"{first['bucket']}) was never verified; audit only accepted items"
            )
    matched, dropped = _match_audits(items, audits)
    precision = _precision_table(items, matched, settings)
    claims, warnings = _claims(precision, settings, dropped)
    if gold_by_concept is not None:
        for concept in sorted(items["concept"].astype(str).unique()):
            if gold_by_concept.get(concept, 0) == 0:
                warnings.append(
                    f"concept {concept}: no gold items were answered, so worker quality "
                    "is unmeasured there; its model estimate rests on agreement alone."
                )
    if workers is None:
        workers_table = pd.DataFrame(columns=["worker"])
    elif "worker" not in workers.columns:
        workers_table = workers.reset_index()
    else:
        workers_table = workers.copy()
    n_answers = answers.groupby("task").size()
    accepted_count = int(items["accepted"].sum())
    dataset = precision.iloc[-1]
    summary: dict[str, Any] = {
        "verified": len(items),
        "accepted": accepted_count,
        "answers": len(answers),
        "workers": int(answers["worker"].nunique()),
        "mean_answers_per_item": float(n_answers.mean()),
        "concepts": int(items["concept"].nunique()),
        "buckets": int(items["bucket"].nunique()),
        "audited": int(dataset["audited"]),
        "audit_errors": int(dataset["audit_errors"]),
        "dataset_status": str(dataset["status"]),
        "dataset_certified_lower": float(dataset["certified_lower"]),
        "dataset_estimated_precision": float(dataset["estimated_precision"]),
        "dataset_binomial_lower": float(dataset["binomial_lower"]),
        "zero_error_sample_needed": _sample_needed(accepted_count, settings, 0),
        "one_error_sample_needed": _sample_needed(accepted_count, settings, 1),
        "stale_audits": dropped,
    }
    if cost is not None:
        summary["cost_total"] = str(cost.total)
        summary["cost_per_accepted_image"] = _per_image(cost, accepted_count)
    return Report(
        settings=settings,
        precision=precision,
        workers=workers_table,
        answers_per_item=_answers_per_item(items, answers),
        rank_agreement=_rank_agreement(items, answers, settings.rank_bins),
        items=items,
        audits=matched,
        cost=cost,
        claims=claims,
        warnings=warnings,
        summary=summary,
    )


def _plots(report: Report) -> dict[str, str]:
    settings = report.settings
    cells = report.precision[report.precision["bucket"] != ALL]
    pooled = report.precision[report.precision["bucket"] == ALL]
    points: list[IntervalPoint] = []
    for row in [*cells.to_dict(orient="records"), *pooled.to_dict(orient="records")]:
        label = _scope_label(row["concept"], row["bucket"])
        if row["accepted"] and not math.isnan(row["estimated_precision"]):
            points.append(IntervalPoint(label, row["estimated_precision"], None, None, "estimated"))
        if row["audited"]:
            points.append(
                IntervalPoint(
                    label, row["audit_precision"], row["certified_lower"], None, "certified"
                )
            )
    lows = [p.low for p in points if p.low is not None] + [
        p.value for p in points if p.value is not None
    ]
    y_low = max(0.0, math.floor((min([*lows, settings.target]) - 0.02) * 20) / 20)
    plots = {
        "precision": interval_chart(
            points,
            title="Precision per concept x bucket",
            y_label="precision",
            y_low=y_low,
            y_high=1.0,
            reference=settings.target,
            width=max(640, 60 * len({p.label for p in points}) + 80),
            css_class="precision-plot",
        )
    }
    workers = report.workers
    if "accuracy" in workers.columns and workers["accuracy"].notna().any():
        acc = workers["accuracy"].dropna().astype(float).clip(0, 1)
        edges = np.linspace(0, 1, 11)
        counts, _ = np.histogram(acc, bins=edges)
        labels = [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in range(len(counts))]
        plots["workers"] = bar_chart(
            labels,
            counts.tolist(),
            title="Worker accuracy on gold",
            y_label="workers",
            css_class="workers-plot",
        )
    else:
        plots["workers"] = bar_chart(
            [], [], title="Worker accuracy on gold", y_label="workers", css_class="workers-plot"
        )
    api = report.answers_per_item
    plots["answers"] = bar_chart(
        [str(a) for a in api["answers"]],
        api["items"].astype(float).tolist(),
        title="Answers per item",
        y_label="items",
        css_class="answers-plot",
    )
    ra = report.rank_agreement
    plots["rank"] = line_chart(
        [f"{a}-{b}" for a, b in zip(ra["rank_from"], ra["rank_to"], strict=True)],
        {
            "share accepted": ra["share_accepted"].astype(float).tolist(),
            **(
                {"share true": ra["share_true"].astype(float).tolist()}
                if ra["share_true"].notna().any()
                else {}
            ),
            "answer agreement": ra["agreement"].astype(float).tolist(),
        },
        title="Precision at depth: each CLIP rank band",
        y_label="share",
        css_class="rank-plot",
    )
    return plots


def _scope_label(concept: str, bucket: str) -> str:
    if concept == ALL:
        return "dataset"
    if bucket == ALL:
        return f"{concept} (all)"
    return f"{concept} b{bucket}"


def render_report_html(report: Report) -> str:
    """Render the report as one self-contained HTML document.

    Every value is autoescaped (worker ids, labels and concept names come from outside);
    the plots are inline SVG built in Python. The page needs no script and no network.

    Args:
        report: The built report.

    Returns:
        The HTML document.
    """
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    template = env.get_template("report.html.j2")
    plots = {name: Markup(svg) for name, svg in _plots(report).items()}
    data = report.to_json()
    worker_columns = [c for c in _WORKER_COLUMNS if c in report.workers.columns]
    return template.render(
        report=data,
        plots=plots,
        sources={s: AUDIT_SOURCES.get(s, s) for s in _sources(report)},
        worker_columns=worker_columns,
        workers=data["workers"][:_WORKER_ROWS],
        worker_rows_left=max(0, len(data["workers"]) - _WORKER_ROWS),
    )


_WORKER_COLUMNS = (
    "worker",
    "answers",
    "gold_answers",
    "gold_correct",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "sensitivity_mean",
    "specificity_mean",
    "spammer",
    "clicker",
)
_WORKER_ROWS = 200


def _sources(report: Report) -> list[str]:
    if report.audits.empty or "source" not in report.audits.columns:
        return []
    return sorted(set(report.audits["source"].dropna().astype(str)))


def _pct(value: object, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return f"{float(value) * 100:.{digits}f}%"
    return "–"


def write_report(report: Report, out_dir: Path) -> ReportFiles:
    """Write ``report.html``, ``report.json`` and the CSV tables into ``out_dir``.

    Args:
        report: The built report.
        out_dir: Folder to write into (created when missing; files replaced).

    Returns:
        The paths written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    json_path = out_dir / "report.json"
    _write_atomic(html_path, render_report_html(report))
    _write_atomic(json_path, json.dumps(report.to_json(), indent=2, sort_keys=False) + "\n")
    tables = {
        "precision": report.precision,
        "workers": report.workers,
        "answers_per_item": report.answers_per_item,
        "rank_agreement": report.rank_agreement,
        "items": report.items,
        "audit_items": report.audits,
    }
    if not report.cells.empty:
        tables["cells"] = report.cells
    if not report.rounds.empty:
        tables["rounds"] = report.rounds
    csvs: dict[str, Path] = {}
    for name, frame in tables.items():
        path = out_dir / f"{name}.csv"
        _write_atomic(path, frame.to_csv(index=False))
        csvs[name] = path
    return ReportFiles(html=html_path, json=json_path, csvs=csvs)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
