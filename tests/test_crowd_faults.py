"""Publish, collect and review under the sandbox's faults, restarts and SIGKILL.

Whatever goes wrong, every intended HIT exists exactly once, no assignment is lost and
no bonus is paid twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.crowd import CrowdProject
from tests.fixtures.sandbox import submit_work
from turk.crowd.collect import collect
from turk.crowd.publish import (
    execute_publish,
    load_publish_config,
    plan_for_publish,
    prepare_publish,
)
from turk.crowd.review import GoldRule, ReviewOptions, review
from turk.sandbox import FaultPlan
from turk.sandbox.workers import run_workers


def _plans(project: CrowdProject, **options: object):
    return plan_for_publish(
        project.ledger,
        project.backend,
        gold=project.seeded.gold,
        gold_rate=0.2,
        **options,  # type: ignore[arg-type]
    )


def _publish(project: CrowdProject, backend=None, concurrency: int = 4, on_progress=None, **cfg):
    backend = backend or project.backend
    plans = _plans(project)
    prepared = prepare_publish(
        project.ledger,
        backend,
        plans,
        load_publish_config(**cfg),
        media_dir=project.media_dir,
    )
    return plans, execute_publish(
        project.ledger, backend, prepared, concurrency=concurrency, on_progress=on_progress
    )


def _assert_each_hit_once(project: CrowdProject, expected: int) -> None:
    annotations = Counter(h.annotation for h in project.backend.list_hits())
    assert len(annotations) == expected and set(annotations.values()) == {1}
    rows = project.ledger.conn.execute(
        "SELECT annotation, hit_id FROM hits WHERE target='local'"
    ).fetchall()
    assert len(rows) == expected and all(hit_id for _, hit_id in rows)
    remote = {h.annotation: h.hit_id for h in project.backend.list_hits()}
    assert {a: h for a, h in rows} == remote


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(FaultPlan(throttle=0.1, seed=1), marks=pytest.mark.slow),
        FaultPlan(fault=0.3, seed=2),
        FaultPlan(lost=0.3, seed=3),
        FaultPlan(throttle=0.05, fault=0.1, lost=0.15, seed=4),
    ],
    ids=["throttle", "service-fault", "lost-reply", "mixed"],
)
def test_publish_and_collect_survive_faults(crowd_project, crowd_backend, faults):
    project = crowd_project
    backend = crowd_backend(project.server, max_attempts=10)
    project.server.set_faults(faults)
    _, report = _publish(project, backend)
    assert report.published == 8 and report.failed == 0
    assert backend.stats.requests > backend.stats.total_calls  # retries happened
    if faults.lost:
        assert report.duplicates > 0  # lost replies came back as "already processed"
    project.server.set_faults(None)
    _assert_each_hit_once(project, 8)
    work = run_workers(project.server.url, project.truth, n=3, seed=2)
    project.server.set_faults(faults)
    collected = collect(project.ledger, backend)
    project.server.set_faults(None)
    assert collected.assignments_new == work.submitted == 24
    stored = project.ledger.conn.execute("SELECT COUNT(*) FROM assignments").fetchone()[0]
    assert stored == 24


def test_bonuses_under_lost_replies_are_paid_once(crowd_project, crowd_backend):
    project = crowd_project
    _publish(project)
    run_workers(project.server.url, project.truth, n=2, seed=5)
    collect(project.ledger, project.backend)
    backend = crowd_backend(project.server, max_attempts=10)
    project.server.set_faults(FaultPlan(lost=0.4, seed=7))
    options = ReviewOptions(rule=GoldRule(min_accuracy=0.5), bonus=Decimal("0.05"))
    options.bonus_accuracy = 0.0
    report = review(project.ledger, backend, options)
    project.server.set_faults(None)
    assert report.failed == 0 and report.bonuses <= 16
    done = project.ledger.conn.execute(
        "SELECT COUNT(*) FROM actions WHERE kind='bonus' AND status='done'"
    ).fetchone()[0]
    assert done == 16
    for (assignment_id,) in project.ledger.conn.execute("SELECT assignment_id FROM assignments"):
        assert len(project.backend.list_bonuses(assignment_id)) == 1


def test_server_restart_mid_publish(crowd_project, crowd_backend):
    project = crowd_project
    backend = crowd_backend(project.server, max_attempts=10)
    done = []

    def restart_once(n: int) -> None:
        done.append(n)
        if len(done) == 3:
            project.server.restart()

    _, report = _publish(project, backend, concurrency=2, on_progress=restart_once)
    assert len(done) == 8 and report.published + report.reconciled == 8
    _assert_each_hit_once(project, 8)


def _turk(db: Path, *args: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TURK_DB": str(db)}
    return subprocess.Popen(
        [sys.executable, "-m", "turk", "--db", str(db), *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(db: Path, sql: str, at_least: int, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(db, timeout=1)
            try:
                n = conn.execute(sql).fetchone()[0]
            finally:
                conn.close()
        except sqlite3.OperationalError:
            n = 0
        if n >= at_least:
            return int(n)
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"finished before being killed: {err!r}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting for progress")


@pytest.mark.slow
def test_sigkill_mid_publish_then_rerun_publishes_each_hit_once(crowd_project, cli):
    project = crowd_project
    project.server.set_faults(FaultPlan(slow=0.15))
    args = (
        "publish",
        *project.cli_target(),
        "--media-dir",
        project.media_dir,
        "--gold",
        project.seeded.gold,
        "--gold-rate",
        "0.2",
        "--items-per-hit",
        "2",
        "--concurrency",
        "3",
    )
    expected = len(_plans(project, items_per_hit=2))
    assert expected > 20
    proc = _turk(project.db_path, *args)
    try:
        sent = _wait_for(
            project.db_path, "SELECT COUNT(*) FROM hits WHERE hit_id IS NOT NULL", 6, proc
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and sent < expected
    project.server.set_faults(None)
    result = cli("--db", project.db_path, *args)
    assert result.exit_code == 0, result.stderr
    _assert_each_hit_once(project, expected)


@pytest.mark.slow
def test_sigkill_mid_collect_and_mid_review_loses_nothing_and_pays_once(crowd_project, cli):
    project = crowd_project
    _publish(project, max_assignments=3)
    work = run_workers(project.server.url, project.truth, n=3, seed=6)
    project.server.set_faults(FaultPlan(slow=0.1))
    proc = _turk(project.db_path, "collect", *project.cli_target(), "--concurrency", "1")
    try:
        _wait_for(project.db_path, "SELECT COUNT(*) FROM assignments", 3, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    project.server.set_faults(None)
    result = cli("--db", project.db_path, "collect", *project.cli_target())
    assert result.exit_code == 0, result.stderr
    conn = project.ledger.conn
    assert conn.execute("SELECT COUNT(*) FROM assignments").fetchone()[0] == work.submitted
    assert (
        conn.execute("SELECT COUNT(*) FROM assignments WHERE parse_status='raw'").fetchone()[0] == 0
    )

    project.server.set_faults(FaultPlan(slow=0.1))
    review_args = (
        "review",
        *project.cli_target(),
        "--min-accuracy",
        "0.5",
        "--bonus",
        "0.05",
        "--bonus-accuracy",
        "0",
    )
    proc = _turk(project.db_path, *review_args)
    try:
        _wait_for(project.db_path, "SELECT COUNT(*) FROM actions WHERE kind='bonus'", 2, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    project.server.set_faults(None)
    result = cli("--db", project.db_path, *review_args)
    assert result.exit_code == 0, result.stderr
    for (assignment_id,) in conn.execute("SELECT assignment_id FROM assignments"):
        assert len(project.backend.list_bonuses(assignment_id)) == 1


@pytest.mark.slow
def test_more_than_100_assignments_on_one_hit_and_auto_approval(crowd_project):
    project = crowd_project
    plans = _plans(project, concepts=["bus"], buckets=[1])
    prepared = prepare_publish(
        project.ledger,
        project.backend,
        plans[:1],
        load_publish_config(max_assignments=120),
        media_dir=project.media_dir,
    )
    execute_publish(project.ledger, project.backend, prepared)
    hit_id, n_items = project.ledger.conn.execute(
        "SELECT h.hit_id, COUNT(*) FROM hits h JOIN hit_items i ON i.hit_key=h.hit_key"
    ).fetchone()
    fields = {f"item-{i}": "yes" for i in range(n_items)}
    for k in range(60):
        submit_work(project.server.url, hit_id, f"AMANY{k:05d}", fields)
    project.server.advance_clock(4 * 86400)  # the first 60 are approved automatically
    for k in range(60, 120):
        submit_work(project.server.url, hit_id, f"AMANY{k:05d}", fields)
    report = collect(project.ledger, project.backend)
    assert report.assignments_new == 120 and report.answers == 120 * n_items
    assert project.backend.stats.calls["ListAssignmentsForHIT"] == 2
    statuses = dict(
        project.ledger.conn.execute(
            "SELECT status, COUNT(*) FROM assignments GROUP BY status"
        ).fetchall()
    )
    assert statuses == {"Approved": 60, "Submitted": 60}
