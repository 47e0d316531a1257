"""``turk demo``: the offline pipeline so far (sample -> ingest -> buckets)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.fixtures.core import CliRunner
from turk.demo import STAGES, DemoContext, run_demo


def test_demo_prints_each_stage_and_the_bucket_table(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = cli("demo", "--out", out, "--n", "120")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    for name in ("sample:", "ingest:", "buckets:"):
        assert name in text
    assert "from (UTC)" in text and "unlabeled" in text
    with sqlite3.connect(out / "turk.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 120
        assert conn.execute("SELECT COUNT(*) FROM buckets WHERE reserved=1").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM buckets").fetchone()[0] == 11
    again = cli("demo", "--out", out, "--n", "120")
    assert again.exit_code == 0
    assert "kept 120 photos" in again.stdout and "0 new images, 120 already present" in again.stdout


def test_stages_are_an_ordered_list_later_stages_can_extend(tmp_path: Path) -> None:
    assert [name for name, _ in STAGES[:3]] == ["sample", "ingest", "buckets"]
    seen: list[tuple[str, str]] = []

    def count_buckets(ctx: DemoContext) -> str:
        n = ctx.ledger.conn.execute("SELECT COUNT(*) FROM buckets").fetchone()[0]
        return f"{n} buckets"

    run_demo(
        tmp_path / "d",
        n=40,
        image_size=(64, 48),
        stages=[*STAGES[:3], ("count", count_buckets)],
        on_stage=lambda name, summary: seen.append((name, summary)),
    )
    assert [name for name, _ in seen] == ["sample", "ingest", "buckets", "count"]
    assert seen[-1][1] == "11 buckets"
