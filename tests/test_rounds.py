"""Curation rounds: batch sizing, re-ranking, stop rules, ``turk round`` and resume."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.project import edit_yaml, free_port
from turk.candidates.pool import latest_round
from turk.dataset.results import crowd_results
from turk.dataset.rounds import (
    RoundPlan,
    _fill_size,
    _fit_probe,
    _heldout,
    _probe_p,
    plan_round,
)
from turk.dataset.rules import STOP_REASONS, RoundSettings
from turk.ledger import Ledger
from turk.project.config import load_project
from turk.project.pipeline import run_pipeline
from turk.project.scaffold import init_project

QUOTA = 8  # images_per_class of the projects below: more than their first pass fills


def _binomial_at_least(k: int, p: float, missing: int) -> float:
    return sum(math.comb(k, j) * p**j * (1 - p) ** (k - j) for j in range(missing, k + 1))


@pytest.mark.parametrize(("p", "missing"), [(0.5, 10), (0.8, 3), (0.3, 6), (0.95, 12)])
def test_batch_is_the_fewest_candidates_that_fill_the_cell_with_the_chance_asked(
    p: float, missing: int
) -> None:
    k = _fill_size(np.full(200, p), missing, 0.8)
    # The normal approximation with continuity correction lands on the exact answer or
    # next to it: never a batch that fills less often than about the chance asked.
    assert _binomial_at_least(k, p, missing) >= 0.75
    assert _binomial_at_least(k - 2, p, missing) < 0.8
    assert missing <= k < 3 * missing / p
    assert _fill_size(np.full(200, p), missing + 5, 0.8) > k  # more missing, bigger batch
    assert _fill_size(np.full(200, p), missing, 0.95) >= k  # surer, bigger batch


def test_batch_never_exceeds_the_pool_nor_asks_for_nothing() -> None:
    assert _fill_size(np.full(5, 0.2), 10, 0.8) == 5
    assert _fill_size(np.full(50, 0.9), 0, 0.8) == 0
    assert _fill_size(np.ones(50), 7, 0.99) == 7  # certain answers: exactly what is missing


def test_probe_ranks_held_back_verdicts_better_than_a_noisy_prompt_score() -> None:
    rng = np.random.default_rng(3)
    n, dim = 240, 16
    truth = rng.random(n) < 0.5
    direction = rng.normal(size=dim)
    emb = rng.normal(size=(n, dim)) + np.outer(np.where(truth, 1.0, -1.0), direction) * 0.6
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    prompt = truth * 0.3 + rng.normal(scale=0.5, size=n)  # the prompt sees the concept dimly
    x = np.hstack([emb, ((prompt - prompt.mean()) / prompt.std()).reshape(-1, 1)])
    y = truth.astype(float)
    by_prompt, by_probe = _heldout(x, y, prompt)
    assert by_probe > by_prompt + 0.1
    p = _probe_p(_fit_probe(x, y), x)
    assert ((p > 0.5) == truth).mean() > 0.85


def _small_quota_project(folder: Path, n: int) -> None:
    init_project(folder, from_sample=True, n=n, image_size=(96, 72))
    edit_yaml(folder / "turk.yaml", "crowd.endpoint", f"http://127.0.0.1:{free_port()}")
    edit_yaml(folder / "concepts.yaml", "settings.images_per_class", QUOTA)
    edit_yaml(folder / "concepts.yaml", "settings.candidates_per_class", QUOTA + 1)


def _run(folder: Path, **kwargs: object) -> list[str]:
    result = run_pipeline(load_project(folder / "turk.yaml"), **kwargs)  # type: ignore[arg-type]
    return [f"{o.name} ({o.status}): {' | '.join(o.lines)}" for o in result.outcomes]


@pytest.fixture(scope="module")
def rounds_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample project run through one pass, then ``turk round`` once, then to the end."""
    folder = tmp_path_factory.mktemp("rounds") / "project"
    _small_quota_project(folder, n=800)
    _run(folder, until="review")
    with Ledger(folder / "turk.db") as ledger:
        assert latest_round(ledger) == 1
    from typer.testing import CliRunner

    from turk.cli.main import app

    done = CliRunner().invoke(app, ["round", "--project", str(folder)])
    assert done.exit_code == 0, done.output
    assert "round 2:" in done.output and "round: " in done.output
    with Ledger(folder / "turk.db") as ledger:
        assert latest_round(ledger) == 2
        pending = ledger.conn.execute(
            "SELECT COUNT(*) FROM hits WHERE batch_id LIKE '%-r2-%' AND hit_id IS NULL"
        ).fetchone()
        assert pending == (0,)  # the round's HITs were sent, answered and reviewed
    _run(folder)
    return folder


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_rounds_fill_short_cells_and_state_why_each_stopped(rounds_project: Path) -> None:
    db = rounds_project / "turk.db"
    rounds = int(_rows(db, "SELECT MAX(round) FROM candidates")[0][0])  # type: ignore[arg-type]
    assert 2 <= rounds <= 4  # max_rounds in the sample's turk.yaml
    cells = _rows(db, "SELECT concept, bucket FROM candidates WHERE role='positive' GROUP BY 1, 2")
    last = dict(
        ((c, b), stop)
        for c, b, stop in _rows(
            db,
            "SELECT concept, bucket, stop FROM rounds r WHERE round = (SELECT MAX(round) "
            "FROM rounds s WHERE s.concept = r.concept AND s.bucket = r.bucket)",
        )
    )
    assert set(last) == set(cells)
    assert set(last.values()) <= set(STOP_REASONS)  # every cell stopped, for a known reason
    with Ledger(db) as ledger:
        results = crowd_results(ledger)
    accepted = results.items[results.items["accepted"]].groupby(["concept", "bucket"]).size()
    for cell, stop in last.items():
        assert (stop == "quota") == (accepted.get(cell, 0) >= QUOTA), (cell, stop)
    # Later rounds filled cells the first pass left short.
    first = _rows(
        db,
        "SELECT c.concept, c.bucket, COUNT(*) FROM candidates c WHERE c.round = 1 AND "
        "c.role = 'positive' GROUP BY 1, 2",
    )
    later_sql = "SELECT DISTINCT concept, bucket FROM candidates WHERE round > 1"
    later = {(c, b) for c, b in _rows(db, later_sql)}
    assert later and len(first) == len(cells)
    filled_later = [cell for cell in later if accepted.get(cell, 0) >= QUOTA]
    assert filled_later
    # Nothing was sent twice: every non-gold item is in exactly one HIT.
    twice = _rows(
        db,
        "SELECT concept, image_id, COUNT(*) FROM hit_items WHERE NOT is_gold "
        "GROUP BY concept, image_id HAVING COUNT(*) > 1",
    )
    assert twice == []
    report = json.loads((rounds_project / "report" / "report.json").read_text())
    assert report["summary"]["rounds"] == rounds
    assert len(report["rounds"]) == rounds and len(report["cells"]) == len(cells)
    assert {row["stop"] for row in report["cells"]} <= set(STOP_REASONS.values())
    total = sum(Decimal(row["dollars"]) for row in report["cells"])
    assert total > 0 and all(row["answers"] > 0 for row in report["cells"])
    assert all("% of " in row["precision_at_depth"] for row in report["cells"])
    html = (rounds_project / "report" / "report.html").read_text()
    assert "Curation rounds" in html and "stopped because" in html


def test_status_shows_every_cell_with_its_cost_and_stop(rounds_project: Path) -> None:
    from typer.testing import CliRunner

    from turk.cli.main import app

    done = CliRunner().invoke(app, ["--db", str(rounds_project / "turk.db"), "status", "--cells"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("concept"))
    cells = lines[header + 1 : -1]
    assert len(cells) == 50 and lines[-1].startswith("total")
    assert all(line.rstrip().endswith(tuple(STOP_REASONS.values())) for line in cells)
    assert "$/acc" in lines[header] and "$" in lines[-1]


def test_stop_rules(rounds_project: Path) -> None:
    with Ledger(rounds_project / "turk.db") as ledger:
        results = crowd_results(ledger)
        base = RoundSettings(max_rounds=99)
        plan = plan_round(ledger, results, quota=QUOTA, settings=base)
        for cell in plan.cells:  # the run is over: each cell holds its quota or stopped
            if cell.accepted >= QUOTA:
                assert cell.stop == "quota" and not cell.picks
            elif cell.pool_left == 0:
                assert cell.stop == "exhausted"
        # A bigger quota opens again the cells that still have a pool.
        quota = QUOTA + 4
        more = plan_round(ledger, results, quota=quota, settings=base)
        short = [c for c in more.cells if c.stop is None]
        assert short and {c.stop for c in more.cells} <= {None, "quota", "exhausted", "yield"}
        for cell in short:
            assert 0 < len(cell.picks) <= cell.pool_left
            # Sized to fill the cell, not one candidate at a time (unless the pool runs out).
            assert cell.expected >= cell.missing * 0.5 or len(cell.picks) == cell.pool_left
        would_send = {(c.concept, c.bucket) for c in short}

        def stops(other: RoundPlan) -> set[str | None]:
            return {c.stop for c in other.cells if (c.concept, c.bucket) in would_send}

        strict = plan_round(ledger, results, quota=quota, settings=replace(base, min_yield=1.0))
        assert stops(strict) == {"yield"}
        over = plan_round(
            ledger,
            results,
            quota=quota,
            settings=base,
            budget_left=Decimal("0.00"),
            cost_per_item=Decimal("0.02"),
        )
        assert stops(over) == {"budget"}
        done = plan_round(
            ledger, results, quota=quota, settings=replace(base, max_rounds=latest_round(ledger))
        )
        assert stops(done) == {"rounds"}


def test_a_second_run_sends_nothing(rounds_project: Path) -> None:
    db = rounds_project / "turk.db"
    hits = _rows(db, "SELECT COUNT(*) FROM hits")
    lines = _run(rounds_project)
    assert any("every cell stopped" in line for line in lines), lines
    assert _rows(db, "SELECT COUNT(*) FROM hits") == hits


def _turk_run(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "turk", "run", "--project", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_resume_after_sigkill_during_a_round(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    _small_quota_project(folder, n=800)
    db = folder / "turk.db"
    process = _turk_run(folder)
    deadline = time.monotonic() + 240
    while True:  # kill it once round 2 is chosen, while its HITs go out
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "round 2 never started"
        try:
            found = _rows(db, "SELECT COUNT(*) FROM candidates WHERE round = 2")[0][0]
        except sqlite3.OperationalError:
            found = 0
        if found:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    again = _turk_run(folder)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "every cell stopped" in out
    # Round 2 was chosen once and sent once; no HIT or answer exists twice.
    assert _rows(db, "SELECT COUNT(DISTINCT round) FROM rounds WHERE round = 2") == [(1,)]
    assert _rows(
        db, "SELECT COUNT(*) FROM (SELECT hit_key FROM hits GROUP BY hit_key HAVING COUNT(*) > 1)"
    ) == [(0,)]
    assert _rows(
        db,
        "SELECT COUNT(*) FROM (SELECT concept, image_id FROM hit_items WHERE NOT is_gold "
        "GROUP BY concept, image_id HAVING COUNT(*) > 1)",
    ) == [(0,)]
    # The double holds exactly the HITs the ledger knows: none was created twice.
    published = _rows(db, "SELECT COUNT(*) FROM hits WHERE hit_id IS NOT NULL")
    assert _rows(folder / "sandbox.db", "SELECT COUNT(*) FROM hits") == published
