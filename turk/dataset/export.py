"""From the ledger to the exported dataset (CLEAR layout, :mod:`analysis.export`).

:func:`export_from_ledger` aggregates the answers (as ``turk report`` does), takes the
accepted items as the labeled images, adds the BACKGROUND class from the background
candidates that no concept accepted, reads the collection metadata and the time
buckets, finds the instruction set the workers saw, and writes the export with a
datasheet built from the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.export import BACKGROUND, DatasheetInfo, ExportSummary, LinkMode, export_dataset
from analysis.report import Report
from retrieval.collection import METADATA_FIELDS
from turk.candidates.tables import candidate_rows
from turk.collection.buckets import read_buckets
from turk.collection.ingest import iter_image_metadata
from turk.collection.tables import bucket_ids, image_files
from turk.crowd.backend import workforce
from turk.crowd.tables import languages_by_cell
from turk.dataset.aggregators import DEFAULT_AGGREGATOR
from turk.dataset.report import ledger_report
from turk.dataset.results import MIN_POSTERIOR, CrowdResults
from turk.errors import StageError
from turk.hits.instructions import resolve_set
from turk.ledger import Ledger, utc_now


def _labeled(ledger: Ledger, results: CrowdResults) -> tuple[pd.DataFrame, int]:
    """Accepted items as labeled images; an image accepted twice keeps its surest concept."""
    accepted = results.accepted.sort_values(
        ["image_id", "posterior", "concept"], ascending=[True, False, True]
    )
    conflicts = int(accepted["image_id"].duplicated().sum())
    accepted = accepted.drop_duplicates("image_id")
    paths = image_files(ledger, accepted["image_id"].tolist())
    labeled = pd.DataFrame(
        {
            "image_id": accepted["image_id"].astype("int64").to_numpy(),
            "bucket": accepted["bucket"].astype(int).to_numpy(),
            "class_name": accepted["concept"].astype(str).to_numpy(),
            "path": [paths.get(int(i)) for i in accepted["image_id"]],
            "score": accepted["score"].to_numpy(),
            "rank": accepted["rank"].to_numpy(),
            "posterior": accepted["posterior"].to_numpy(),
        }
    )
    return labeled, conflicts


def _background(ledger: Ledger, results: CrowdResults) -> pd.DataFrame:
    """Background candidates no concept accepted (empty when the ranking made none)."""
    reserved = bucket_ids(ledger, reserved=True)
    picks = candidate_rows(ledger, role="background")
    picks = picks[~picks["bucket"].isin(reserved)]
    rows = pd.DataFrame(
        picks.groupby(["image_id", "bucket"], as_index=False)["score"].min()
        if not picks.empty
        else pd.DataFrame(columns=["image_id", "bucket", "score"])
    )
    paths = image_files(ledger, rows["image_id"].tolist())
    rows = rows[rows["image_id"].isin(list(paths))].copy()
    rows["path"] = rows["image_id"].map(paths)
    positive_ids = set(results.accepted["image_id"].astype(int))
    rows = rows[~rows["image_id"].isin(positive_ids)].copy()
    rows["class_name"] = BACKGROUND
    return rows.drop_duplicates("image_id")


def _instruction_files(ledger: Ledger, concepts: list[str], given: Path | None) -> dict[str, Path]:
    name: str | Path | None = given
    if name is None:
        for command in ("publish", "render"):
            run = ledger.last_run(command)
            if run and run["settings"].get("instructions"):
                name = str(run["settings"]["instructions"])
                break
    folder = resolve_set(name, concepts)
    files: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            relative = path.relative_to(folder)
            files[str(relative.with_suffix(""))] = path
    return files


def _language_cells(ledger: Ledger, target: str) -> dict[str, int]:
    """How many cells had HITs in each language (a cell with two counts for both)."""
    counts: dict[str, int] = {}
    for languages in languages_by_cell(ledger, target).values():
        for tag in languages:
            counts[tag] = counts.get(tag, 0) + 1
    return counts


def _datasheet(ledger: Ledger, report: Report, results: CrowdResults, title: str) -> DatasheetInfo:
    data = report.to_json()
    dates = dict(report.summary.get("answer_dates", {}))
    dates["exported_at"] = utc_now()
    notes = list(report.settings.notes)
    if (data["cost"] or {}).get("per_accepted_image"):
        notes.append(f"Cost per accepted image: {data['cost']['per_accepted_image']} USD.")
    languages = languages_by_cell(ledger, results.target)
    verified_by = workforce(results.target)
    precision = []
    for row in data["precision"]:
        bucket = str(row.get("bucket"))
        cell = languages.get((str(row.get("concept")), int(bucket)), {}) if bucket.isdigit() else {}
        precision.append({**row, "verified_by": verified_by, "language": ", ".join(sorted(cell))})
    return DatasheetInfo(
        title=title,
        precision=precision,
        target=report.settings.target,
        confidence=report.settings.confidence,
        aggregator=results.aggregator,
        workers=int(results.answers["worker"].nunique()),
        answers=len(results.answers),
        cost=data["cost"]["total"] if data["cost"] else None,
        dates={k: str(v) for k, v in dates.items() if v},
        notes=tuple(notes),
        workforce=workforce(results.target),
        languages=_language_cells(ledger, results.target),
    )


def export_from_ledger(
    ledger: Ledger,
    out_dir: Path,
    *,
    target: str | None = None,
    aggregator: str = DEFAULT_AGGREGATOR,
    min_posterior: float = MIN_POSTERIOR,
    mode: LinkMode = "copy",
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    test_fraction: float = 0.3,
    target_precision: float = 0.99,
    confidence: float = 0.95,
    instructions: Path | None = None,
    title: str = "turk dataset",
    on_progress: Callable[[int], None] | None = None,
    quota: int | None = None,
    asked: int | None = None,
    truth_file: Path | None = None,
) -> tuple[ExportSummary, Report]:
    """Export the ledger's verified dataset in CLEAR's layout.

    Args:
        ledger: The open ledger.
        out_dir: Export folder (new, empty, or a previous export).
        target: Crowd target (None: the only one with answers).
        aggregator: Aggregation model name.
        min_posterior: Posterior an item needs to be accepted.
        mode: ``copy``, ``hardlink`` or ``symlink``.
        seeds: Seeds of the train/test splits.
        test_fraction: Share held out for test per bucket and class.
        target_precision: Precision target for the datasheet.
        confidence: Confidence for the datasheet.
        instructions: Instruction set folder or packaged name (None: the one used to
            publish, else the packaged set covering the concepts).
        title: Dataset name in the datasheet.
        on_progress: Called with the number of images placed.
        quota: Accepted images wanted per cell; the datasheet lists the cells below it.
        asked: Candidates asked of the ranking per cell (``candidates_per_class``).
        truth_file: A sample's truth file; the datasheet states the accepted images'
            precision against it.

    Returns:
        The export summary and the report the datasheet was built from.

    Raises:
        StageError: No answers or no accepted item yet, or no time buckets.
    """
    report, results = ledger_report(
        ledger,
        target=target,
        aggregator=aggregator,
        target_precision=target_precision,
        confidence=confidence,
        min_posterior=min_posterior,
        quota=quota,
        asked=asked,
        truth_file=truth_file,
    )
    # An export is the record of the curation as it stands: with nothing accepted yet it
    # still writes the layout, the background class and the unlabeled lists, and its
    # datasheet says so, rather than failing the last stage of a run.
    nothing_accepted = results.accepted.empty
    buckets = pd.DataFrame(
        [(b.id, int(b.reserved), b.start_uploaded, b.end_uploaded) for b in read_buckets(ledger)],
        columns=["id", "reserved", "start_uploaded", "end_uploaded"],
    )
    if buckets.empty:
        raise StageError(f"{ledger.path}: no time buckets; run 'turk buckets' first")
    labeled, conflicts = _labeled(ledger, results)
    background = _background(ledger, results)
    if not background.empty:
        labeled = pd.concat([labeled, background], ignore_index=True)
    metadata = pd.DataFrame.from_records(
        list(iter_image_metadata(ledger, bucketed_only=True)),
        columns=[*METADATA_FIELDS, "bucket"],
    ).set_index("id")
    concepts = sorted(set(results.items["concept"].astype(str)))
    info = _datasheet(ledger, report, results, title)
    if nothing_accepted:
        info = replace(
            info,
            notes=(
                *info.notes,
                f"No item reached the acceptance posterior ({min_posterior}) yet: the labeled "
                "classes are empty. Ask for more answers ('turk review --extend') and export "
                "again.",
            ),
        )
    if conflicts:
        info = DatasheetInfo(
            **{
                **info.__dict__,
                "notes": (
                    *info.notes,
                    f"{conflicts} image(s) accepted for two concepts kept the one with the "
                    "higher posterior.",
                ),
            }
        )
    summary = export_dataset(
        out_dir,
        labeled,
        metadata,
        buckets,
        concepts=concepts,
        background=not background.empty,
        instructions=_instruction_files(ledger, concepts, instructions),
        datasheet=info,
        mode=mode,
        seeds=seeds,
        test_fraction=test_fraction,
        on_progress=on_progress,
    )
    (out_dir / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return summary, report
