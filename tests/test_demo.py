"""``turk demo``: a sample project made by ``turk init --from-sample``, run by ``turk run``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from retrieval.demomodel import DEMO_MODEL_LABEL
from tests.fixtures.core import CliRunner
from turk.project.pipeline import STAGES


@pytest.mark.slow
@pytest.mark.xdist_group("local-sandbox-port")  # a sample project's sandbox: the default port
def test_demo_is_init_from_sample_then_the_whole_run(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = cli("demo", "--out", out, "--n", "150")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    for name in STAGES:
        assert f"{name} (done)" in text, name
    assert DEMO_MODEL_LABEL in text and "from (UTC)" in text
    assert (out / "turk.yaml").is_file() and (out / "models" / "turk-demo-clip.pt").is_file()
    assert (out / "report" / "report.html").is_file()
    assert (out / "dataset" / "class_names.txt").is_file()
    with sqlite3.connect(out / "turk.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 150
        assert conn.execute("SELECT COUNT(*) FROM buckets WHERE reserved=1").fetchone()[0] == 1
        hits = conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
    assert hits > 0
    # The demo folder is a project like any other: a rerun only looks for new crowd work.
    again = cli("demo", "--out", out)
    assert again.exit_code == 0, again.stderr
    for name in STAGES:
        status = "done" if name in ("collect", "review", "rounds") else "skipped"
        assert f"{name} ({status})" in again.stdout, name
    with sqlite3.connect(out / "turk.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0] == hits


def test_demo_model_override_is_checked_like_turk_yaml(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = cli("demo", "--out", out, "--n", "120", "--pretrained", "missing/weights.pt")
    assert result.exit_code == 1
    assert "missing/weights.pt" in result.stderr and "weights file not found" in result.stderr
    assert (out / "turk.yaml").is_file()  # the project is there; a rerun with good weights goes on
