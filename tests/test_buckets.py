"""``turk buckets``: equal count, by year, ranges files, reserve, replacement, bad input."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from retrieval.buckets import (
    TimeRange,
    assign_buckets,
    equal_count_ranges,
    load_ranges,
    parse_time,
    yearly_ranges,
)
from retrieval.errors import CollectionError
from tests.fixtures.core import CliRunner


def table(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT id, start_uploaded, end_uploaded, image_count, reserved, scheme "
            "FROM buckets ORDER BY id"
        ).fetchall()


def per_bucket(db: Path) -> dict:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT bucket, COUNT(*) FROM images GROUP BY bucket"))


def snapshot(db: Path) -> tuple:
    with sqlite3.connect(db) as conn:
        images = conn.execute("SELECT id, bucket FROM images ORDER BY id").fetchall()
    return images, table(db)


def one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("turk: error: "), result.stderr
    return lines[0]


def test_equal_count_default_is_eleven(cli: CliRunner, ingested_db: Path) -> None:
    result = cli("buckets")
    assert result.exit_code == 0, result.stderr
    rows = table(ingested_db)
    assert len(rows) == 11 and rows[0][5] == "count:11"
    counts = [r[3] for r in rows]
    assert sum(counts) == 240 and max(counts) - min(counts) <= 1
    assert per_bucket(ingested_db) == {r[0]: r[3] for r in rows}
    assert "bucket" in result.stdout and "from (UTC)" in result.stdout
    assert result.stdout.count("labeled") == 11
    # Bucket 0 is kept unlabeled by default, as turk.yaml does; --no-reserve labels all.
    assert [r[4] for r in rows] == [1] + [0] * 10
    assert cli("buckets", "--no-reserve").exit_code == 0
    assert [r[4] for r in table(ingested_db)] == [0] * 11
    # Ranges are in time order and do not overlap.
    assert all(a[2] < b[1] for a, b in itertools.pairwise(rows))


def test_fixture_buckets_and_reserve(ingested_db: Path) -> None:
    rows = table(ingested_db)
    assert [r[4] for r in rows] == [1, 0, 0, 0]
    assert sum(r[3] for r in rows) == 240


def test_rebucketing_replaces_and_reserve_marks_unlabeled(
    cli: CliRunner, ingested_db: Path
) -> None:
    result = cli("buckets", "--count", "3", "--reserve", "0", "--reserve", "2")
    assert result.exit_code == 0, result.stderr
    rows = table(ingested_db)
    assert [r[0] for r in rows] == [0, 1, 2] and [r[4] for r in rows] == [1, 0, 1]
    assert set(per_bucket(ingested_db)) == {0, 1, 2}
    assert "unlabeled" in result.stdout.splitlines()[1]


def test_by_year(cli: CliRunner, ingested_db: Path) -> None:
    assert cli("buckets", "--by-year").exit_code == 0
    rows = table(ingested_db)
    assert len(rows) == 11  # 2004 .. 2014
    assert rows[0][1] == int(parse_time("2004-01-01 00:00:00"))
    assert rows[-1][2] == int(parse_time("2014-12-31 23:59:59"))
    assert sum(r[3] for r in rows) == 240


def test_ranges_file_in_clear_format(cli: CliRunner, ingested_db: Path, tmp_path: Path) -> None:
    ranges = [
        {"start": "2004-01-01 00:00:00.0", "end": "2008-12-31 23:59:59.0"},
        {"start": "2009-01-01 00:00:00.0", "end": "2011-06-30 23:59:59.0"},
    ]
    path = tmp_path / "clear_10_time.json"
    path.write_text(json.dumps(ranges))
    result = cli("buckets", "--ranges", path, "--reserve", "0")
    assert result.exit_code == 0, result.stderr
    rows = table(ingested_db)
    assert len(rows) == 2 and rows[0][5] == "ranges:clear_10_time.json"
    outside = 240 - sum(r[3] for r in rows)
    assert outside > 0 and f"{outside} outside every range" in result.stdout
    assert None in per_bucket(ingested_db)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"start": "2004-01-01"}', "non-empty JSON list"),
        ("[]", "non-empty JSON list"),
        ('[{"start": "2004-01-01"}]', 'range 1: expected an object with "start" and "end"'),
        ('[{"start": "yesterday", "end": "2005-01-01"}]', "range 1: 'yesterday' is not a time"),
        ('[{"start": "2006-01-01", "end": "2005-01-01"}]', "ends (2005-01-01) before it starts"),
        (
            '[{"start": "2004-01-01", "end": "2006-01-01"},'
            ' {"start": "2005-06-01", "end": "2007-01-01"}]',
            "range 2 overlaps range 1",
        ),
        (
            '[{"start": "2008-01-01", "end": "2009-01-01"},'
            ' {"start": "2004-01-01", "end": "2005-01-01"}]',
            "range 2 (2004-01-01 00:00:00) starts before range 1",
        ),
    ],
    ids=["json", "object", "empty", "keys", "time", "reversed", "overlap", "unordered"],
)
def test_bad_ranges_files_leave_the_ledger_unchanged(
    cli: CliRunner, ingested_db: Path, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "ranges.json"
    path.write_text(content)
    before = snapshot(ingested_db)
    line = one_line_error(cli("buckets", "--ranges", path))
    assert message in line and str(path) in line
    assert snapshot(ingested_db) == before


def test_bad_options_leave_the_ledger_unchanged(
    cli: CliRunner, ingested_db: Path, tmp_path: Path
) -> None:
    before = snapshot(ingested_db)
    cases = [
        (("--count", "241"), "cannot make 241 buckets from 240 images"),
        (("--count", "0"), "--count 0"),
        (("--count", "3", "--by-year"), "choose one way"),
        (("--count", "3", "--reserve", "3"), "--reserve 3: no such bucket"),
        (("--ranges", tmp_path / "absent.json"), "no such ranges file"),
    ]
    for args, message in cases:
        line = one_line_error(cli("buckets", *args))
        assert message in line
        assert snapshot(ingested_db) == before


def test_buckets_without_ingest(cli: CliRunner, db_path: Path) -> None:
    line = one_line_error(cli("buckets"))
    assert "turk ingest" in line
    assert not db_path.exists()


def test_equal_count_keeps_ties_together() -> None:
    times = [1, 1, 1, 1, 2, 3, 4, 5]
    ranges = equal_count_ranges(times, len(times), 3)
    assert ranges == [TimeRange(1, 1), TimeRange(2, 2), TimeRange(3, 5)]
    with pytest.raises(CollectionError, match="share upload times"):
        equal_count_ranges([7, 7, 7, 7], 4, 2)
    with pytest.raises(CollectionError, match="not sorted"):
        equal_count_ranges([3, 2, 1], 3, 1)


def test_assign_and_yearly_ranges() -> None:
    ranges = [TimeRange(0, 9), TimeRange(20, 29)]
    got = assign_buckets(np.array([-1, 0, 9, 10, 20, 29, 30]), ranges)
    assert got.tolist() == [-1, 0, 0, -1, 1, 1, -1]
    years = yearly_ranges(int(parse_time("2007-05-01")), int(parse_time("2009-01-01")))
    assert len(years) == 3 and years[1].start == years[0].end + 1


def test_load_ranges_end_inclusive(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('[{"start": "2004-01-01 11:52:13.0", "end": "2007-04-09 03:27:17.0"}]')
    (r,) = load_ranges(path)
    end = int(parse_time("2007-04-09 03:27:17"))
    assert end in r and end + 1 not in r
