"""Export a curated dataset in the CLEAR benchmark's layout.

:func:`export_dataset` writes, under one folder::

    class_names.txt                         sorted class names, one per line (BACKGROUND
                                            included when on); line i is label i
    labeled_images/<bucket>/<class>/<id>.jpg
    labeled_metadata.json                   {bucket: {class: "labeled_metadata/<b>/<c>.json"}}
    labeled_metadata/<bucket>/<class>.json  {id: metadata}; metadata["IMG_PATH"] is the
                                            image path relative to the export folder
    training_folder/bucket_indices.json     the labeled buckets, in order
    training_folder/filelists/<bucket>/all.txt            "path label" lines (caffe style)
    training_folder/testset_ratio_<r>/split_<seed>/<bucket>/{train,test}.txt
    all_metadata/<bucket>.json              {id: metadata} for every image of the bucket
    unlabeled_images/<bucket>.txt           images of the bucket that carry no label
    instructions/                           the instruction sets the workers saw
    datasheet.md, datasheet.json            counts, certified precision, workers, cost, dates

``training_folder/`` follows the layout Avalanche's CLEAR loader reads (``path label``
lines with paths relative to the export folder), so the export loads there unchanged.
Buckets marked reserved (unlabeled, for pre-training) appear only in ``all_metadata/`` and
``unlabeled_images/``. Metadata keys are the collection's field names in upper case
(``ID``, ``USER_NSID``, ``DATE_UPLOADED``, ``TITLE``, ``DOWNLOAD_URL``...), plus
``IMG_PATH``, ``CLIP_SCORE``, ``CLIP_RANK`` and ``POSTERIOR`` where known.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError

BACKGROUND = "BACKGROUND"
"""Name of the background class (images from the bottom of the rankings)."""

LinkMode = Literal["copy", "hardlink", "symlink"]
"""How image files get into the export: copied, hard-linked (copied when the export
is on another file system), or symbolically linked (absolute links)."""

MARKER = "datasheet.json"
"""File whose presence marks a folder as a previous export (safe to update)."""

_LABELED_COLUMNS = ("image_id", "bucket", "class_name", "path")
_SKIP_METADATA = {"bucket", "local_path", "source", "line_number"}


@dataclass(frozen=True)
class DatasheetInfo:
    """What the datasheet says beyond the counts the export computes itself.

    Attributes:
        title: Dataset name.
        precision: Rows of the report's precision table (concept, bucket, accepted,
            audited, audit_errors, certified_lower, estimated_precision, status...).
        target: Precision target.
        confidence: Confidence of the certification.
        aggregator: Aggregation model that decided the labels.
        workers: Number of distinct workers whose answers count.
        answers: Number of answers.
        cost: Total cost as a string (Decimal formatted), or None.
        currency: Currency of ``cost``.
        dates: Named dates, e.g. ``first_answer``, ``last_answer``, ``exported_at``.
        notes: Plain-text notes (how audits were made, model caveats...).
        workforce: Who verified the images (MTurk workers, an in-house team on Turkle,
            a vendor through a file hand-off...).
        languages: Cells per language the HIT pages' own words were in (BCP 47 tags).
    """

    title: str = "turk dataset"
    precision: list[dict[str, Any]] = field(default_factory=list)
    target: float = 0.99
    confidence: float = 0.95
    aggregator: str = ""
    workers: int = 0
    answers: int = 0
    cost: str | None = None
    currency: str = "USD"
    dates: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    workforce: str = ""
    languages: dict[str, int] = field(default_factory=dict)


@dataclass
class ExportSummary:
    """What :func:`export_dataset` wrote.

    Attributes:
        out_dir: The export folder.
        class_names: Class names in label order.
        images: Labeled images exported.
        images_reused: Of those, files already in place from a previous export.
        stale_removed: Files of a previous export no longer in the dataset, removed.
        counts: ``{bucket: {class: n}}`` for the labeled buckets.
        unlabeled: ``{bucket: n}`` images without a label per bucket.
        reserved_buckets: Buckets exported only as unlabeled.
        skipped_reserved: Labeled rows dropped because their bucket is reserved.
        splits: Split folders written, relative to the export folder.
    """

    out_dir: Path
    class_names: list[str]
    images: int = 0
    images_reused: int = 0
    stale_removed: int = 0
    counts: dict[int, dict[str, int]] = field(default_factory=dict)
    unlabeled: dict[int, int] = field(default_factory=dict)
    reserved_buckets: list[int] = field(default_factory=list)
    skipped_reserved: int = 0
    splits: list[str] = field(default_factory=list)


def class_names_for(concepts: Iterable[str], background: bool) -> list[str]:
    """Return the sorted class names, with BACKGROUND when the background class is on.

    Args:
        concepts: Concept names.
        background: Whether the background class is part of the dataset.

    Returns:
        Sorted, unique class names (``sorted`` order: BACKGROUND sorts before lower case).
    """
    names = set(concepts)
    names.discard(BACKGROUND)
    if background:
        names.add(BACKGROUND)
    return sorted(names)


def split_train_test(
    image_ids: Sequence[int], labels: Sequence[int], seed: int, test_fraction: float
) -> tuple[list[int], list[int]]:
    """Split one bucket's images into train and test, stratified by class.

    Each class keeps ``round(n * test_fraction)`` images for test (at least one when the
    class has two or more), drawn with ``numpy.random.default_rng(seed)``; the same ids,
    seed and ratio always give the same split.

    Args:
        image_ids: Image ids of the bucket.
        labels: Class index of each image.
        seed: Random seed.
        test_fraction: Share of each class that goes to test, in (0, 1).

    Returns:
        ``(train_ids, test_ids)``, each sorted.
    """
    ids = np.asarray(image_ids, dtype=np.int64)
    labs = np.asarray(labels, dtype=np.int64)
    order = np.lexsort((ids, labs))
    ids, labs = ids[order], labs[order]
    rng = np.random.default_rng(seed)
    test: list[int] = []
    train: list[int] = []
    for label in np.unique(labs):
        members = ids[labs == label]
        # Every class with two or more images keeps at least one on each side.
        n_test = round(len(members) * test_fraction)
        n_test = min(max(n_test, 1), len(members) - 1) if len(members) >= 2 else 0
        picked = rng.permutation(len(members))
        test.extend(int(i) for i in members[picked[:n_test]])
        train.extend(int(i) for i in members[picked[n_test:]])
    return sorted(train), sorted(test)


def _metadata_record(row: Mapping[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in row.items():
        if key in _SKIP_METADATA:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if value is pd.NA or value is pd.NaT:
            value = None
        record[str(key).upper()] = value
    return record


def _write_json_stream(path: Path, records: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Write ``{key: record, ...}`` one entry at a time; return the number written."""
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("{")
        for key, record in records:
            fh.write(",\n" if count else "\n")
            fh.write(json.dumps(key))
            fh.write(": ")
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True, default=str))
            count += 1
        fh.write("\n}\n" if count else "}\n")
    tmp.replace(path)
    return count


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _place(source: Path, target: Path, mode: LinkMode) -> bool:
    """Put ``source`` at ``target``; return True when a correct file was already there."""
    if target.is_symlink() or target.exists():
        if mode == "symlink" and target.is_symlink() and Path(os.readlink(target)) == source:
            return True
        if mode != "symlink" and not target.is_symlink():
            same = target.samefile(source) if mode == "hardlink" else False
            if same or (
                mode == "copy"
                and target.stat().st_size == source.stat().st_size
                and target.stat().st_mtime_ns >= source.stat().st_mtime_ns
            ):
                return True
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    if mode == "symlink":
        tmp.symlink_to(source)
    elif mode == "hardlink":
        try:
            os.link(source, tmp)
        except OSError:  # another file system: fall back to a copy
            shutil.copy2(source, tmp)
    else:
        shutil.copy2(source, tmp)
    tmp.replace(target)
    return False


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise AnalysisError(f"{out_dir}: exists and is not a folder; pass another OUTDIR")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise AnalysisError(
            f"{out_dir}: folder is not empty and holds no previous export ({MARKER}); "
            "pass an empty or new OUTDIR"
        )


def export_dataset(
    out_dir: Path,
    labeled: pd.DataFrame,
    metadata: pd.DataFrame,
    buckets: pd.DataFrame,
    *,
    concepts: Sequence[str],
    background: bool = False,
    instructions: Mapping[str, Path] | None = None,
    datasheet: DatasheetInfo | None = None,
    mode: LinkMode = "copy",
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    test_fraction: float = 0.3,
    on_progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write the dataset in CLEAR's layout (see the module docstring).

    Safe to rerun into the same folder: images already in place are kept, files of a
    previous export that left the dataset are removed, every text file is replaced.

    Args:
        out_dir: Export folder; new, empty, or a previous export.
        labeled: One row per labeled image: ``image_id``, ``bucket``, ``class_name``,
            ``path`` (the image file), optional ``score``, ``rank``, ``posterior``.
        metadata: Collection metadata indexed by image id, with a ``bucket`` column and
            the collection's fields; every image of every exported bucket.
        buckets: ``id`` and ``reserved`` (1 for unlabeled, pre-training buckets), optional
            ``start_uploaded``, ``end_uploaded`` (epoch seconds).
        concepts: The concept names (a concept with no image still gets a class).
        background: Whether BACKGROUND is a class.
        instructions: Instruction files the workers saw, by name; copied under
            ``instructions/``.
        datasheet: Facts for the datasheet; None writes counts only.
        mode: ``copy``, ``hardlink`` or ``symlink``.
        seeds: Seeds of the train/test splits.
        test_fraction: Share of each class per bucket held out for test, in (0, 1).
        on_progress: Called with the number of images just placed.

    Returns:
        The :class:`ExportSummary`.

    Raises:
        AnalysisError: A bad option, a non-empty folder that is not an export, a class
            name that is not a known concept, an image twice, or image files missing
            (checked before anything is written).
    """
    if mode not in ("copy", "hardlink", "symlink"):
        raise AnalysisError(f"export mode {mode!r}: use copy, hardlink or symlink")
    if not 0 < test_fraction < 1:
        raise AnalysisError(f"--test-fraction {test_fraction}: pass a value between 0 and 1")
    missing_columns = [c for c in _LABELED_COLUMNS if c not in labeled.columns]
    if missing_columns:
        raise AnalysisError(f"labeled: missing column(s) {', '.join(missing_columns)}")
    if "bucket" not in metadata.columns:
        raise AnalysisError("metadata: missing column bucket")
    _check_out_dir(out_dir)
    classes = class_names_for(concepts, background)
    label_of = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labeled["class_name"].astype(str)) - set(label_of))
    if unknown:
        raise AnalysisError(
            f"labeled: class {unknown[0]!r} is not a concept of the dataset "
            f"({', '.join(classes)}); fix the concepts or the labels"
        )
    if labeled["image_id"].duplicated().any():
        dup = int(labeled.loc[labeled["image_id"].duplicated(), "image_id"].iloc[0])
        raise AnalysisError(
            f"labeled: image {dup} has more than one class; an exported image has one label"
        )
    reserved = {int(b) for b in buckets.loc[buckets["reserved"].astype(bool), "id"]}
    is_reserved = labeled["bucket"].astype(int).isin(reserved)
    summary = ExportSummary(out_dir=out_dir, class_names=classes)
    summary.reserved_buckets = sorted(reserved)
    summary.skipped_reserved = int(is_reserved.sum())
    rows = labeled[~is_reserved].copy()
    rows["image_id"] = rows["image_id"].astype(np.int64)
    rows["bucket"] = rows["bucket"].astype(int)
    sources: list[Path | None] = [
        Path(str(p)) if isinstance(p, str | Path) and str(p) else None for p in rows["path"]
    ]
    rows["source"] = pd.Series(sources, index=rows.index, dtype=object)
    absent = [
        (int(i), s)
        for i, s in zip(rows["image_id"], sources, strict=True)
        if s is None or not s.is_file()
    ]
    if absent:
        first_id, first_path = absent[0]
        raise AnalysisError(
            f"{len(absent)} labeled image file(s) missing (e.g. image {first_id}: "
            f"{first_path or 'no local file'}); fetch the images, then export again"
        )
    rows["file"] = [
        f"labeled_images/{b}/{c}/{i}{_suffix(s)}"
        for b, c, i, s in zip(
            rows["bucket"], rows["class_name"], rows["image_id"], rows["source"], strict=True
        )
    ]
    rows = rows.sort_values(["bucket", "class_name", "image_id"], kind="stable")
    out_dir.mkdir(parents=True, exist_ok=True)

    wanted = {out_dir / f for f in rows["file"]}
    for source, target in zip(rows["source"], rows["file"], strict=True):
        if _place(Path(source).resolve(), out_dir / target, mode):
            summary.images_reused += 1
        summary.images += 1
        if on_progress is not None:
            on_progress(1)
    images_root = out_dir / "labeled_images"
    for path in sorted(images_root.rglob("*")):
        if (path.is_file() or path.is_symlink()) and path not in wanted:
            path.unlink()
            summary.stale_removed += 1
    for folder in sorted(images_root.rglob("*"), reverse=True):
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()

    _write_text(out_dir / "class_names.txt", "\n".join(classes))
    meta = metadata.copy()
    meta.index = meta.index.astype(np.int64)
    labeled_buckets = sorted(
        {int(b) for b in buckets["id"]} - reserved
        | set(rows["bucket"].astype(int).unique().tolist())
    )
    index: dict[str, dict[str, str]] = {}
    for bucket in labeled_buckets:
        in_bucket = rows[rows["bucket"] == bucket]
        index[str(bucket)] = {}
        summary.counts[bucket] = {}
        lines: list[str] = []
        for name in classes:
            members = in_bucket[in_bucket["class_name"] == name]
            rel = f"labeled_metadata/{bucket}/{name}.json"
            index[str(bucket)][name] = rel
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            _write_json_stream(out_dir / rel, _labeled_records(members, meta))
            summary.counts[bucket][name] = len(members)
            lines.extend(f"{f} {label_of[name]}" for f in members["file"])
        _write_text(
            out_dir / "training_folder" / "filelists" / str(bucket) / "all.txt",
            "".join(line + "\n" for line in lines),
        )
        for seed in seeds:
            train, test = split_train_test(
                in_bucket["image_id"].tolist(),
                [label_of[c] for c in in_bucket["class_name"]],
                seed,
                test_fraction,
            )
            split_dir = (
                out_dir / "training_folder" / f"testset_ratio_{test_fraction:g}" / f"split_{seed}"
            )
            by_id = dict(zip(in_bucket["image_id"], in_bucket["file"], strict=True))
            label_by_id = dict(
                zip(in_bucket["image_id"], in_bucket["class_name"].map(label_of), strict=True)
            )
            for name, ids in (("train", train), ("test", test)):
                _write_text(
                    split_dir / str(bucket) / f"{name}.txt",
                    "".join(f"{by_id[i]} {label_by_id[i]}\n" for i in ids),
                )
    for seed in seeds:
        summary.splits.append(f"training_folder/testset_ratio_{test_fraction:g}/split_{seed}")
    _write_text(
        out_dir / "labeled_metadata.json", json.dumps(index, indent=2, sort_keys=False) + "\n"
    )
    _write_text(
        out_dir / "training_folder" / "bucket_indices.json",
        json.dumps([str(b) for b in labeled_buckets]) + "\n",
    )

    labeled_ids = set(rows["image_id"].tolist())
    all_dir = out_dir / "all_metadata"
    all_dir.mkdir(parents=True, exist_ok=True)
    bucket_ids = sorted({int(b) for b in buckets["id"]})
    for bucket in bucket_ids:
        in_bucket_meta = meta[meta["bucket"].astype("Int64") == bucket].sort_index()
        _write_json_stream(
            all_dir / f"{bucket}.json",
            ((str(i), _metadata_record({"id": i, **r})) for i, r in _iter_rows(in_bucket_meta)),
        )
        unlabeled = [i for i in in_bucket_meta.index.tolist() if i not in labeled_ids]
        paths = [_image_ref(in_bucket_meta.loc[i]) for i in unlabeled]
        _write_text(
            out_dir / "unlabeled_images" / f"{bucket}.txt",
            "".join(f"{i} {p}\n" for i, p in zip(unlabeled, paths, strict=True)),
        )
        summary.unlabeled[bucket] = len(unlabeled)

    if instructions:
        for name, path in sorted(instructions.items()):
            if not Path(path).is_file():
                raise AnalysisError(
                    f"instructions for {name}: {path} is missing; restore it and export again"
                )
            target = out_dir / "instructions" / f"{name}{Path(path).suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    _write_datasheet(out_dir, summary, buckets, datasheet or DatasheetInfo(), seeds, test_fraction)
    return summary


def _suffix(source: Path) -> str:
    suffix = source.suffix.lower()
    return ".jpg" if suffix in ("", ".jpeg", ".jpg") else suffix


def _iter_rows(frame: pd.DataFrame) -> Iterable[tuple[int, dict[str, Any]]]:
    columns = list(frame.columns)
    for image_id, values in zip(frame.index, frame.itertuples(index=False, name=None), strict=True):
        yield int(image_id), dict(zip(columns, values, strict=True))


def _image_ref(row: pd.Series) -> str:
    local = row.get("local_path")
    if isinstance(local, str) and local:
        return local
    url = row.get("download_url")
    return str(url) if isinstance(url, str) and url else ""


def _labeled_records(
    members: pd.DataFrame, meta: pd.DataFrame
) -> Iterable[tuple[str, dict[str, Any]]]:
    for row in members.to_dict(orient="records"):
        image_id = int(row["image_id"])
        base: dict[str, Any] = {"id": image_id}
        if image_id in meta.index:
            base.update({str(k): v for k, v in meta.loc[image_id].to_dict().items()})
        record = _metadata_record(base)
        record["IMG_PATH"] = row["file"]
        for key, name in (
            ("score", "CLIP_SCORE"),
            ("rank", "CLIP_RANK"),
            ("posterior", "POSTERIOR"),
        ):
            value = row.get(key)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                record[name] = value.item() if isinstance(value, np.generic) else value
        yield str(image_id), record


def _iso(epoch: object) -> str:
    from datetime import UTC, datetime

    if epoch is None or (isinstance(epoch, float) and math.isnan(epoch)):
        return ""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[call-overload]


def _write_datasheet(
    out_dir: Path,
    summary: ExportSummary,
    buckets: pd.DataFrame,
    info: DatasheetInfo,
    seeds: Sequence[int],
    test_fraction: float,
) -> None:
    bucket_rows = []
    for bucket_row in buckets.sort_values("id").to_dict(orient="records"):
        bucket_id = int(bucket_row["id"])
        bucket_rows.append(
            {
                "bucket": bucket_id,
                "reserved": bool(bucket_row.get("reserved", 0)),
                "start": _iso(bucket_row.get("start_uploaded")),
                "end": _iso(bucket_row.get("end_uploaded")),
                "labeled": sum(summary.counts.get(bucket_id, {}).values()),
                "unlabeled": summary.unlabeled.get(bucket_id, 0),
            }
        )
    data = {
        "title": info.title,
        "class_names": summary.class_names,
        "counts": {str(b): c for b, c in summary.counts.items()},
        "buckets": bucket_rows,
        "images": summary.images,
        "certification": {
            "target": info.target,
            "confidence": info.confidence,
            "method": "exact one-sided finite-population (hypergeometric) lower bound on a "
            "uniform random audit without replacement; Clopper-Pearson beside it",
            "rows": info.precision,
        },
        "aggregator": info.aggregator,
        "workforce": info.workforce,
        "languages": info.languages,
        "workers": info.workers,
        "answers": info.answers,
        "cost": info.cost,
        "currency": info.currency,
        "dates": info.dates,
        "splits": {"seeds": list(seeds), "test_fraction": test_fraction},
        "notes": list(info.notes),
    }
    lines = [f"# {info.title}", "", "## Composition", ""]
    header = "| bucket | " + " | ".join(summary.class_names) + " | total |"
    lines += [header, "|" + " --- |" * (len(summary.class_names) + 2)]
    for bucket, counts in sorted(summary.counts.items()):
        cells = [str(counts.get(c, 0)) for c in summary.class_names]
        lines.append(f"| {bucket} | " + " | ".join(cells) + f" | {sum(counts.values())} |")
    lines += [
        "",
        "## Time buckets",
        "",
        "| bucket | from | to | labeled | unlabeled | reserved |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in bucket_rows:
        lines.append(
            f"| {b['bucket']} | {b['start']} | {b['end']} | {b['labeled']} | {b['unlabeled']} "
            f"| {'yes' if b['reserved'] else 'no'} |"
        )
    lines += [
        "",
        "## Precision",
        "",
        f"Target {info.target:.2%} at {info.confidence:.0%} confidence, certified with the exact "
        "one-sided finite-population (hypergeometric) lower bound on a uniform random audit of "
        "accepted images (the Clopper-Pearson bound, which ignores the population's size, is "
        "in the report). "
        "Rows without an audit carry only the aggregation model's estimate.",
        "",
        "| concept | bucket | accepted | audited | errors | certified lower bound | "
        "estimated | status | verified by | HIT language |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in info.precision:
        lines.append(
            f"| {row.get('concept', '')} | {row.get('bucket', '')} | {row.get('accepted', '')} "
            f"| {row.get('audited', '')} | {row.get('audit_errors', '')} "
            f"| {_pct(row.get('certified_lower'))} | {_pct(row.get('estimated_precision'))} "
            f"| {row.get('status', '')} | {row.get('verified_by', '')} "
            f"| {row.get('language', '')} |"
        )
    lines += [
        "",
        "## Crowd",
        "",
        f"- verified by: {info.workforce or 'unknown'}",
        "- HIT pages' language (question, answers, Submit; the instructions are the "
        "project's own text): "
        + (
            ", ".join(f"{tag} ({n} cells)" for tag, n in sorted(info.languages.items()))
            or "unknown"
        ),
        f"- aggregation model: {info.aggregator or 'unknown'}",
        f"- workers: {info.workers}",
        f"- answers: {info.answers}",
        f"- cost: {info.cost + ' ' + info.currency if info.cost is not None else 'unknown'}",
    ]
    for name, value in sorted(info.dates.items()):
        lines.append(f"- {name.replace('_', ' ')}: {value}")
    lines += [
        "",
        "## Splits",
        "",
        f"Per bucket and class, {test_fraction:g} of the images held out for test, seeds "
        f"{', '.join(str(s) for s in seeds)} (training_folder/testset_ratio_{test_fraction:g}/).",
    ]
    if info.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in info.notes]
    _write_text(out_dir / "datasheet.md", "\n".join(lines) + "\n")
    _write_text(out_dir / MARKER, json.dumps(data, indent=2, default=str) + "\n")


def _pct(value: object) -> str:
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return f"{float(value):.2%}"
    return "–"
