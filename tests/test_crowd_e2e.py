"""End to end through the command line: sample -> ingest -> buckets -> embed -> rank ->
publish to the local sandbox -> simulated workers -> collect -> review -> status."""

from __future__ import annotations

import sqlite3

import pytest


@pytest.mark.slow
def test_sample_to_review_through_the_cli(cli, tmp_path, sandbox_server, tiny_clip):
    config, weights = tiny_clip
    sample = tmp_path / "sample"
    db = tmp_path / "turk.db"
    media = sandbox_server.config.media_dir
    target = ("--target", "local", "--endpoint-url", sandbox_server.url)

    def ok(*args: object) -> str:
        result = cli("--db", db, *args)
        assert result.exit_code == 0, f"{args[0]}: {result.stderr}"
        return result.stdout

    ok("sample", sample, "--n", "160", "--image-size", "64x48")
    ok("ingest", sample / "metadata.tsv", "--images", sample / "images")
    ok("buckets", "--count", "3", "--reserve", "0")
    ok("embed", "--model", config, "--pretrained", weights, "--device", "cpu")
    ok(
        "rank",
        sample / "concepts.yaml",
        "--model",
        config,
        "--pretrained",
        weights,
        "--device",
        "cpu",
    )
    published = ok(
        "publish",
        *target,
        "--media-dir",
        media,
        "--gold",
        sample / "gold.csv",
        "--gold-rate",
        "0.15",
        "--budget",
        "50",
    )
    assert " HITs published to local" in published
    worked = ok(
        "sandbox",
        "workers",
        "--endpoint-url",
        sandbox_server.url,
        "--truth",
        sample / "truth.csv",
        "--n",
        "4",
        "--spammers",
        "0.25",
    )
    assert "submitted" in worked
    collected = ok("collect", *target)
    ok("review", *target, "--dry-run")
    reviewed = ok("review", *target, "--approve-all-before-deadline")
    status = ok("status", "--target", "local")

    conn = sqlite3.connect(db)
    hits = conn.execute("SELECT COUNT(*) FROM hits WHERE hit_id IS NOT NULL").fetchone()[0]
    assignments = conn.execute("SELECT COUNT(*) FROM assignments").fetchone()[0]
    decided = conn.execute(
        "SELECT COUNT(*) FROM assignments WHERE status IN ('Approved', 'Rejected')"
    ).fetchone()[0]
    answers = conn.execute("SELECT COUNT(*) FROM answers WHERE label IS NOT NULL").fetchone()[0]
    conn.close()
    assert hits > 0 and assignments == hits * 3 and decided == assignments
    assert answers > assignments
    assert f"collect: {assignments} new assignments" in collected
    assert "review: approve" in reviewed
    rows = [line.split() for line in status.splitlines() if line.startswith("local ")]
    batches = [row[1] for row in rows if row[1] != "total"]
    assert batches and len(batches) == len(set(batches))
    assert status.startswith("status: target local: $")
