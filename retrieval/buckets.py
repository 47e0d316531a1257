"""Temporal buckets: split a collection by upload time, the three ways CLEAR did.

* **equal count** (:func:`equal_count_ranges`): N buckets with about the same number of
  images each (CLEAR-10 used 11 over YFCC100M's upload times; bucket 0 kept unlabeled
  for pre-training);
* **by year** (:func:`yearly_ranges`): one bucket per calendar year (UTC), every year from
  the first upload to the last;
* **given ranges** (:func:`load_ranges`): a JSON list of ``{"start": ..., "end": ...}``
  in CLEAR's ``clear_10_time.json`` format, e.g.
  ``{"start": "2004-01-01 11:52:13.0", "end": "2007-04-09 03:27:17.0"}``; times are UTC
  and both ends are inclusive.

Times are epoch seconds (the YFCC ``date_uploaded``). Every function works on plain
iterables and arrays; the caller decides where the times come from.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retrieval.errors import CollectionError

_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


@dataclass(frozen=True)
class TimeRange:
    """An inclusive range of upload times in epoch seconds.

    Attributes:
        start: First second in the range.
        end: Last second in the range (inclusive).
    """

    start: int
    end: int

    def __contains__(self, t: object) -> bool:
        return isinstance(t, int | np.integer) and self.start <= int(t) <= self.end


def parse_time(text: str) -> float:
    """Parse a UTC time as CLEAR writes it (``2004-01-01 11:52:13.0``).

    Args:
        text: ``YYYY-MM-DD HH:MM:SS[.f]``, ``YYYY-MM-DDTHH:MM:SS`` or ``YYYY-MM-DD``.

    Returns:
        Epoch seconds (fractions kept).

    Raises:
        ValueError: The text matches none of the formats.
    """
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a time like '2004-01-01 11:52:13.0'")


def format_time(epoch: int | float) -> str:
    """Format epoch seconds as ``YYYY-MM-DD HH:MM:SS`` (UTC).

    Args:
        epoch: Seconds since 1970-01-01 UTC.

    Returns:
        The formatted time.
    """
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def equal_count_ranges(sorted_times: Iterable[int], total: int, count: int) -> list[TimeRange]:
    """Split sorted upload times into ``count`` buckets of about equal size.

    Images uploaded in the same second always share a bucket, so sizes may differ
    slightly where the boundaries fall on ties. Streams its input: memory does not grow
    with the number of images.

    Args:
        sorted_times: Upload times in ascending order (epoch seconds).
        total: How many times ``sorted_times`` yields.
        count: Number of buckets wanted (>= 1).

    Returns:
        ``count`` ranges in time order, each from its first to its last upload time.

    Raises:
        CollectionError: Fewer images (or distinct upload times) than buckets.
    """
    if count < 1:
        raise CollectionError(f"--count {count}: need at least one bucket")
    if total < count:
        raise CollectionError(
            f"cannot make {count} buckets from {total} images; pass --count {max(total, 1)} "
            "or fewer, or ingest more images"
        )
    # Bucket k (0-based) should hold the images at positions [cut[k], cut[k+1]).
    cuts = [round(k * total / count) for k in range(1, count)]
    ranges: list[TimeRange] = []
    start: int | None = None
    previous: int | None = None
    next_cut = 0
    position = -1
    for position, raw in enumerate(sorted_times):
        t = int(raw)
        if previous is not None and t < previous:
            raise CollectionError("upload times are not sorted; pass them in ascending order")
        if start is None:
            start = t
        elif (
            next_cut < len(cuts)
            and position >= cuts[next_cut]
            and t != previous
            and previous is not None
        ):
            ranges.append(TimeRange(start, previous))
            start = t
            # After a long tie `position` may be past later cuts too; each of those
            # buckets then closes at the next distinct time, so none is empty.
            next_cut += 1
        previous = t
    if position + 1 != total:
        raise CollectionError(f"expected {total} upload times, got {position + 1}")
    if start is not None and previous is not None:
        ranges.append(TimeRange(start, previous))
    if len(ranges) != count:
        raise CollectionError(
            f"cannot make {count} buckets: too many images share upload times; "
            f"pass --count {len(ranges)} or fewer"
        )
    return ranges


def yearly_ranges(first: int, last: int) -> list[TimeRange]:
    """One range per calendar year (UTC) from the year of ``first`` to that of ``last``.

    Args:
        first: Earliest upload time (epoch seconds).
        last: Latest upload time (epoch seconds).

    Returns:
        Ranges from January 1 00:00:00 to December 31 23:59:59 of each year.
    """
    y0 = datetime.fromtimestamp(first, UTC).year
    y1 = datetime.fromtimestamp(last, UTC).year
    out = []
    for year in range(y0, y1 + 1):
        start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
        end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()) - 1
        out.append(TimeRange(start, end))
    return out


def load_ranges(path: str | os.PathLike[str]) -> list[TimeRange]:
    """Read and validate a ranges file in CLEAR's ``clear_10_time.json`` format.

    The file is a JSON list of objects with ``start`` and ``end`` times (UTC, both ends
    inclusive), in time order and not overlapping.

    Args:
        path: The JSON file.

    Returns:
        The ranges, in file order (fractional seconds rounded inward).

    Raises:
        CollectionError: Missing or unreadable file, bad JSON, a malformed entry, a
            range that ends before it starts, or ranges out of order or overlapping.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CollectionError(f"{p}: no such ranges file; check --ranges") from exc
    except (OSError, UnicodeError) as exc:
        raise CollectionError(f"{p}: cannot read the ranges file ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CollectionError(
            f"{p}: not JSON ({exc.msg} at line {exc.lineno}); expected a list of "
            '{"start": "2004-01-01 11:52:13.0", "end": "..."}'
        ) from exc
    if not isinstance(data, list) or not data:
        raise CollectionError(
            f'{p}: expected a non-empty JSON list of {{"start": ..., "end": ...}} ranges'
        )
    ranges: list[TimeRange] = []
    for number, entry in enumerate(data, start=1):
        where = f"{p}: range {number}"
        if not isinstance(entry, dict) or "start" not in entry or "end" not in entry:
            raise CollectionError(f'{where}: expected an object with "start" and "end"')
        try:
            start = parse_time(str(entry["start"]))
            end = parse_time(str(entry["end"]))
        except ValueError as exc:
            raise CollectionError(f"{where}: {exc}") from exc
        if end < start:
            raise CollectionError(
                f"{where}: ends ({entry['end']}) before it starts ({entry['start']})"
            )
        ranges.append(TimeRange(math.ceil(start), math.floor(end)))
    validate_ranges(ranges, str(p))
    return ranges


def validate_ranges(ranges: Sequence[TimeRange], where: str = "ranges") -> None:
    """Check that ranges are in time order and do not overlap.

    Args:
        ranges: The ranges, in bucket order.
        where: Name of their source, for messages.

    Raises:
        CollectionError: A range starts before the previous one, or overlaps it.
    """
    for number in range(1, len(ranges)):
        prev, cur = ranges[number - 1], ranges[number]
        if cur.start < prev.start:
            raise CollectionError(
                f"{where}: range {number + 1} ({format_time(cur.start)}) starts before range "
                f"{number} ({format_time(prev.start)}); list the ranges in time order"
            )
        if cur.start <= prev.end:
            raise CollectionError(
                f"{where}: range {number + 1} overlaps range {number} (starts "
                f"{format_time(cur.start)}, before {format_time(prev.end)} ends it); "
                "ranges must not share a second"
            )


def assign_buckets(times: npt.ArrayLike, ranges: Sequence[TimeRange]) -> npt.NDArray[np.int64]:
    """Bucket number of each upload time, or -1 for times outside every range.

    Args:
        times: Upload times (epoch seconds), any order.
        ranges: Validated ranges in time order.

    Returns:
        An int64 array of bucket numbers, aligned with ``times``.
    """
    t = np.asarray(times, dtype=np.int64)
    starts = np.array([r.start for r in ranges], dtype=np.int64)
    ends = np.array([r.end for r in ranges], dtype=np.int64)
    idx = np.searchsorted(starts, t, side="right") - 1
    valid = idx >= 0
    valid[valid] = t[valid] <= ends[idx[valid]]
    return np.where(valid, idx, -1).astype(np.int64)
