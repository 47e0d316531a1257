"""Split the ingested images into time buckets by upload time (``turk buckets``).

Wires :mod:`retrieval.buckets` to the ledger: plans the ranges (equal count, by year,
or a ranges file), then in one transaction clears the previous assignment, sets
``images.bucket`` and replaces the ``buckets`` table. A bad option or ranges file is
refused before anything is written, so the ledger is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.buckets import (
    TimeRange,
    equal_count_ranges,
    format_time,
    load_ranges,
    yearly_ranges,
)
from turk.errors import ConfigError, StageError
from turk.ledger import Ledger
from turk.text import format_table

DEFAULT_COUNT = 11
DEFAULT_RESERVE: tuple[int, ...] = (0,)
"""Buckets kept unlabeled by default: CLEAR keeps bucket 0 for unsupervised pre-training."""
"""Equal-count buckets made when no scheme is given (CLEAR-10's 11 buckets)."""


@dataclass(frozen=True)
class BucketRow:
    """One row of the ``buckets`` table.

    Attributes:
        id: Bucket number, 0-based in time order.
        start_uploaded: First upload second in the bucket (epoch, inclusive).
        end_uploaded: Last upload second in the bucket (epoch, inclusive).
        image_count: Images assigned to the bucket.
        reserved: True when the bucket is unlabeled (pre-training only).
        scheme: How the buckets were made (``count:N``, ``by-year``, ``ranges:<file>``).
    """

    id: int
    start_uploaded: int
    end_uploaded: int
    image_count: int
    reserved: bool
    scheme: str


@dataclass(frozen=True)
class BucketingResult:
    """What one ``turk buckets`` did.

    Attributes:
        scheme: How the buckets were made.
        buckets: The new buckets, in time order.
        total_images: Images in the ledger.
        unassigned: Images outside every range (possible only with a ranges file).
    """

    scheme: str
    buckets: list[BucketRow]
    total_images: int
    unassigned: int


def _sorted_upload_times(ledger: Ledger) -> Iterator[int]:
    # Streams over the date_uploaded index: memory stays flat for any ledger size.
    for (t,) in ledger.conn.execute("SELECT date_uploaded FROM images ORDER BY date_uploaded"):
        yield int(t)


def plan_ranges(
    ledger: Ledger,
    *,
    count: int | None = None,
    by_year: bool = False,
    ranges_file: str | os.PathLike[str] | None = None,
) -> tuple[str, list[TimeRange], int]:
    """Work out the bucket ranges without changing the ledger.

    Args:
        ledger: The open ledger.
        count: Equal-count buckets (default :data:`DEFAULT_COUNT` when nothing is given).
        by_year: One bucket per calendar year (UTC).
        ranges_file: CLEAR ``clear_10_time.json``-style ranges file.

    Returns:
        ``(scheme, ranges, total_images)``.

    Raises:
        ConfigError: More than one scheme given, or a count below 1.
        StageError: No images in the ledger yet.
        CollectionError: A bad ranges file, or more buckets than images.
    """
    chosen = [
        name
        for name, on in (
            ("--count", count is not None),
            ("--by-year", by_year),
            ("--ranges", ranges_file is not None),
        )
        if on
    ]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)}: choose one way to make buckets")
    if count is not None and count < 1:
        raise ConfigError(f"--count {count}: need at least 1 bucket")
    total = int(ledger.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    if ranges_file is not None:
        ranges = load_ranges(ranges_file)
        if total == 0:
            raise StageError("no images in the ledger; run 'turk ingest METADATA' first")
        return f"ranges:{Path(ranges_file).name}", ranges, total
    if total == 0:
        raise StageError("no images in the ledger; run 'turk ingest METADATA' first")
    if by_year:
        first, last = ledger.conn.execute(
            "SELECT MIN(date_uploaded), MAX(date_uploaded) FROM images"
        ).fetchone()
        return "by-year", yearly_ranges(int(first), int(last)), total
    n = count if count is not None else DEFAULT_COUNT
    return f"count:{n}", equal_count_ranges(_sorted_upload_times(ledger), total, n), total


def make_buckets(
    ledger: Ledger,
    *,
    count: int | None = None,
    by_year: bool = False,
    ranges_file: str | os.PathLike[str] | None = None,
    reserve: Iterable[int] = DEFAULT_RESERVE,
) -> BucketingResult:
    """Assign every image to a time bucket, replacing any previous assignment.

    Args:
        ledger: The open ledger.
        count: Equal-count buckets (default 11 when no scheme is given).
        by_year: One bucket per calendar year (UTC).
        ranges_file: CLEAR ``clear_10_time.json``-style ranges file.
        reserve: Bucket numbers to mark unlabeled (default :data:`DEFAULT_RESERVE`).

    Returns:
        The new buckets with their image counts.

    Raises:
        ConfigError: Conflicting schemes, a bad count, or a reserved bucket that does
            not exist.
        StageError: No images in the ledger yet.
        CollectionError: A bad ranges file, or more buckets than images.
    """
    scheme, ranges, total = plan_ranges(
        ledger, count=count, by_year=by_year, ranges_file=ranges_file
    )
    reserved = sorted(set(reserve))
    for k in reserved:
        if not 0 <= k < len(ranges):
            raise ConfigError(
                f"--reserve {k}: no such bucket; buckets are numbered 0..{len(ranges) - 1}"
            )
    settings = {
        "scheme": scheme,
        "ranges_file": str(ranges_file) if ranges_file is not None else None,
        "reserve": reserved,
    }
    conn = ledger.conn
    rows: list[BucketRow] = []
    with ledger.run("buckets", settings) as run:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("UPDATE images SET bucket = NULL WHERE bucket IS NOT NULL")
            conn.execute("DELETE FROM buckets")
            for number, r in enumerate(ranges):
                cur = conn.execute(
                    "UPDATE images SET bucket = ? WHERE date_uploaded BETWEEN ? AND ?",
                    (number, r.start, r.end),
                )
                row = BucketRow(number, r.start, r.end, cur.rowcount, number in reserved, scheme)
                conn.execute(
                    "INSERT INTO buckets (id, start_uploaded, end_uploaded, image_count, "
                    "reserved, scheme) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        row.id,
                        row.start_uploaded,
                        row.end_uploaded,
                        row.image_count,
                        int(row.reserved),
                        scheme,
                    ),
                )
                rows.append(row)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        assigned = sum(r.image_count for r in rows)
        run.add("buckets", len(rows))
        run.add("images", assigned)
        run.add("unassigned", total - assigned)
    return BucketingResult(scheme, rows, total, total - assigned)


def read_buckets(ledger: Ledger) -> list[BucketRow]:
    """Return the current buckets in time order (empty before ``turk buckets``).

    Args:
        ledger: The open ledger.

    Returns:
        The rows of the ``buckets`` table.
    """
    return [
        BucketRow(int(i), int(s), int(e), int(c), bool(r), str(scheme))
        for i, s, e, c, r, scheme in ledger.conn.execute(
            "SELECT id, start_uploaded, end_uploaded, image_count, reserved, scheme "
            "FROM buckets ORDER BY id"
        )
    ]


def format_bucket_table(buckets: Sequence[BucketRow]) -> str:
    """Render buckets as a plain-text table: bucket, time range (UTC), image count, use.

    Args:
        buckets: Rows in time order.

    Returns:
        The table, one line per bucket after a header line, without a final newline.
    """
    header = ("bucket", "from (UTC)", "to (UTC)", "images", "use")
    lines = [
        (
            str(b.id),
            format_time(b.start_uploaded),
            format_time(b.end_uploaded),
            f"{b.image_count:,}",
            "unlabeled" if b.reserved else "labeled",
        )
        for b in buckets
    ]
    return format_table(header, lines, right={0, 3})
