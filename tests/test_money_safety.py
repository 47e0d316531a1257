"""Money and state safety: one budget over everything committed on a target, nothing sent
twice whatever the ledger's history, one command at a time per ledger and target.

All against the real local sandbox over loopback with real boto3 and real SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.crowd import CrowdProject
from turk.crowd.collect import collect, store_assignment
from turk.crowd.lock import crowd_lock, lock_path
from turk.crowd.publish import load_publish_config, plan_for_publish, publish
from turk.crowd.records import record_intent, request_token
from turk.crowd.review import GoldRule, ReviewOptions, review
from turk.crowd.spend import BudgetGuard, target_spend
from turk.errors import BusyError, MoneyError
from turk.money import assignment_cost, bonus_cost
from turk.sandbox.clock import advance_clock
from turk.sandbox.workers import run_workers

ROOT = Path(__file__).resolve().parents[1]
PER_HIT = Decimal("0.18")  # $0.05 x 3 assignments + $0.01 fee each


def _publish(project: CrowdProject, budget: Decimal | None = None, **plan: object):
    plans = plan_for_publish(
        project.ledger,
        project.backend,
        gold=project.seeded.gold,
        gold_rate=0.25,
        **plan,  # type: ignore[arg-type]
    )
    return publish(
        project.ledger,
        project.backend,
        plans,
        load_publish_config(),
        budget=budget,
        media_dir=project.media_dir,
        concurrency=1,
    )


def _worked(project: CrowdProject) -> None:
    _publish(project)
    run_workers(project.server.url, project.truth, n=2, seed=7, spammers=0.0)
    collect(project.ledger, project.backend)


def _copy(project: CrowdProject, path: Path) -> Path:
    with sqlite3.connect(path) as copy:
        project.ledger.conn.backup(copy)
    return path


def _restore(project: CrowdProject, path: Path) -> None:
    with sqlite3.connect(path) as copy:
        copy.backup(project.ledger.conn)


def _server_annotations(project: CrowdProject) -> Counter[str]:
    return Counter(h.annotation for h in project.backend.list_hits())


def _new_calls(project: CrowdProject, before: dict[str, int]) -> dict[str, int]:
    now = project.backend.stats.calls
    return {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}


def _bonus_options(**kwargs: object) -> ReviewOptions:
    options = ReviewOptions(
        rule=GoldRule(min_gold=3, min_accuracy=0.5),
        bonus=Decimal("0.02"),
        **kwargs,  # type: ignore[arg-type]
    )
    options.bonus_accuracy = 0.0
    return options


# -- 1. one budget over everything committed on the target --------------------------------


def test_committed_counts_every_hit_extension_and_bonus(crowd_project):
    project = crowd_project
    assert target_spend(project.ledger, "local").committed == 0
    report = _publish(project)
    hits = report.published
    assert report.cost_now == report.committed == PER_HIT * hits
    spend = target_spend(project.ledger, "local")
    assert spend.committed == PER_HIT * hits and spend.spent == 0 and spend.hits == hits
    run_workers(project.server.url, project.truth, n=2, seed=7, spammers=0.0)
    collect(project.ledger, project.backend)
    reviewed = review(project.ledger, project.backend, _bonus_options())
    spend = target_spend(project.ledger, "local")
    bonuses = bonus_cost(Decimal("0.02")) * reviewed.bonuses
    assert reviewed.bonuses > 0
    assert spend.committed == PER_HIT * hits + bonuses == reviewed.committed
    assert spend.spent == assignment_cost(Decimal("0.05"), 3) * reviewed.approved + bonuses


def test_publishes_of_different_concepts_share_one_budget(crowd_project):
    project = crowd_project
    first = _publish(project, budget=Decimal("1.00"), concepts=["bus"])
    assert first.published == 4 and first.committed == PER_HIT * 4
    # The second concept's HITs meet the same cap: one more HIT fits, not four.
    second = _publish(project, budget=Decimal("1.00"), concepts=["camera"])
    assert second.published == 1 and second.not_sent_budget == 3
    assert target_spend(project.ledger, "local").committed == PER_HIT * 5 <= Decimal("1.00")
    with pytest.raises(MoneyError, match=r"too small for one more HIT .*\$0\.90 already"):
        _publish(project, budget=Decimal("1.00"), concepts=["camera"])
    assert sum(_server_annotations(project).values()) == 5


def test_bonuses_and_extensions_stop_at_the_budget_of_the_target(crowd_project):
    project = crowd_project
    _worked(project)
    committed = target_spend(project.ledger, "local").committed
    # A budget the HITs already use up: no bonus and no extension is sent.
    options = _bonus_options(budget=committed, extend=True)
    calls = project.backend.stats.calls.get("SendBonus", 0)
    report = review(project.ledger, project.backend, options)
    assert report.bonuses == 0 and report.extended == 0 and report.budget_stopped > 0
    assert project.backend.stats.calls.get("SendBonus", 0) == calls
    assert "CreateAdditionalAssignmentsForHIT" not in project.backend.stats.calls
    assert target_spend(project.ledger, "local").committed == committed


def test_guard_agrees_with_the_ledger():
    guard = BudgetGuard(target="local", cap=Decimal("1.00"), committed=Decimal("0.90"))
    assert guard.take(Decimal("0.10")) and guard.left == 0
    assert not guard.take(Decimal("0.01")) and guard.refused == 1
    guard.give_back(Decimal("0.10"))
    assert guard.committed == Decimal("0.90") and guard.taken == 0


def test_cli_shows_committed_spent_and_left(cli, crowd_project):
    project = crowd_project
    base = ("--db", project.db_path)
    result = cli(*base, "publish", *project.cli_target(), "--budget", "0.60", "--concept", "bus")
    assert result.exit_code == 0, result.stderr
    assert "target local: $0.00 committed, $0.00 spent; budget $0.60, $0.60 left" in result.stdout
    assert "this run committed $0.36; target local: $0.36 committed, $0.00 spent" in result.stdout
    status = cli(*base, "status", "--budget", "0.60")
    assert "status: target local: $0.36 committed, $0.00 spent; budget $0.60, $0.24 left" in (
        status.stdout
    )
    more = cli(*base, "publish", *project.cli_target(), "--budget", "0.60")
    assert more.exit_code == 0, more.stderr
    assert "target local: $0.36 committed, $0.00 spent; budget $0.60, $0.24 left" in more.stdout
    assert "1 HITs published" in more.stdout
    assert "stopped by --budget $0.60: 1 HITs not published" in more.stderr


# -- 2. nothing sent twice, whatever the ledger's history ---------------------------------


def test_restored_ledger_past_the_token_window_creates_no_duplicate_hit(crowd_project, tmp_path):
    project = crowd_project
    before = _copy(project, tmp_path / "before-publish.db")
    first = _publish(project)
    assert first.published == 8 and set(_server_annotations(project).values()) == {1}
    _restore(project, before)
    assert target_spend(project.ledger, "local").committed == 0  # the ledger forgot it all
    advance_clock(project.server.url, 25 * 3600)  # MTurk no longer remembers the tokens
    calls = dict(project.backend.stats.calls)
    again = _publish(project)
    new_calls = _new_calls(project, calls)
    assert new_calls == {"ListHITs": 1}  # one scan; no create, not even a balance check
    assert again.published == 0 and again.reconciled == 8 and again.already == 8
    annotations = _server_annotations(project)
    assert set(annotations.values()) == {1} and sum(annotations.values()) == 8
    ids = project.ledger.conn.execute(
        "SELECT COUNT(*) FROM hits WHERE target='local' AND hit_id IS NOT NULL"
    ).fetchone()[0]
    assert ids == 8
    assert target_spend(project.ledger, "local").committed == PER_HIT * 8


def test_restored_ledger_past_the_token_window_pays_no_bonus_twice(crowd_project, tmp_path):
    project = crowd_project
    _worked(project)
    after_collect = _copy(project, tmp_path / "after-collect.db")
    first = review(project.ledger, project.backend, _bonus_options())
    assert first.bonuses > 0
    paid = project.backend.stats.calls["SendBonus"]
    _restore(project, after_collect)
    advance_clock(project.server.url, 25 * 3600)
    again = review(project.ledger, project.backend, _bonus_options())
    assert again.bonuses == 0 and again.bonus_total == 0
    assert again.already == first.approved + first.bonuses  # approvals and bonuses found
    assert project.backend.stats.calls["SendBonus"] == paid
    for (assignment_id,) in project.ledger.conn.execute("SELECT assignment_id FROM assignments"):
        assert len(project.backend.list_bonuses(assignment_id)) == 1
    done = project.ledger.conn.execute(
        "SELECT COUNT(*) FROM actions WHERE kind='bonus' AND status='done'"
    ).fetchone()[0]
    assert done == first.bonuses
    assert target_spend(project.ledger, "local").committed == first.committed


def test_restored_ledger_extends_no_hit_twice(crowd_project, tmp_path):
    project = crowd_project
    plans = plan_for_publish(project.ledger, project.backend, gold=project.seeded.gold)
    publish(
        project.ledger,
        project.backend,
        plans,
        load_publish_config(max_assignments=2, max_total_assignments=4),
        media_dir=project.media_dir,
        concurrency=1,
    )
    run_workers(project.server.url, project.truth, n=2, seed=3, spammers=0.5)
    collect(project.ledger, project.backend)
    before = _copy(project, tmp_path / "before-extend.db")
    options = ReviewOptions(rule=GoldRule(min_gold=1, min_accuracy=0.0), extend=True)
    first = review(project.ledger, project.backend, options)
    assert first.extended > 0
    maxima = {h.hit_id: h.max_assignments for h in project.backend.list_hits()}
    _restore(project, before)
    advance_clock(project.server.url, 25 * 3600)
    again = review(project.ledger, project.backend, options)
    assert again.extended == 0 and again.already >= first.extended
    assert {h.hit_id: h.max_assignments for h in project.backend.list_hits()} == maxima


def test_approve_reads_the_target_before_acting(crowd_project, tmp_path):
    project = crowd_project
    _worked(project)
    after_collect = _copy(project, tmp_path / "after-collect.db")
    first = review(project.ledger, project.backend, ReviewOptions())
    _restore(project, after_collect)
    calls = dict(project.backend.stats.calls)
    again = review(project.ledger, project.backend, ReviewOptions())
    new_calls = _new_calls(project, calls)
    assert again.approved == again.rejected == 0
    assert again.already == first.approved + first.rejected
    assert "ApproveAssignment" not in new_calls and "RejectAssignment" not in new_calls
    hits = project.ledger.conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
    assert new_calls["ListAssignmentsForHIT"] == hits


def test_clean_publish_reconciles_with_one_list_call(crowd_project):
    project = crowd_project
    report = _publish(project)
    assert report.calls["ListHITs"] == 1
    assert report.calls["CreateHITWithHITType"] == report.published == 8


# -- 3. one command at a time on one ledger and target ------------------------------------


def test_lock_is_reentrant_and_names_its_holder(crowd_project):
    project = crowd_project
    with (
        crowd_lock(project.ledger, "local", "publish"),
        crowd_lock(project.ledger, "local", "collect"),
    ):
        text = lock_path(project.db_path.resolve(), "local").read_text()
        assert f'"pid": {os.getpid()}' in text and '"command": "publish"' in text
    code = (
        "import sys, time\n"
        "from turk.ledger import Ledger\n"
        "from turk.crowd.lock import crowd_lock\n"
        "with crowd_lock(Ledger(sys.argv[1]), 'local', 'review'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(30)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(project.db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(BusyError, match=rf"pid {holder.pid} \(review, since "),
            crowd_lock(project.ledger, "local", "collect", wait_s=0.2),
        ):
            pass
        # Another target of the same ledger is not held.
        with crowd_lock(project.ledger, "mturk-sandbox", "collect", wait_s=0):
            pass
    finally:
        holder.kill()
        holder.wait()
    # A killed holder leaves no stale lock.
    with crowd_lock(project.ledger, "local", "collect", wait_s=0):
        pass


def _collect_process(project: CrowdProject, wait: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TURK_LOCK_WAIT": wait, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "turk",
            "--db",
            str(project.db_path),
            "collect",
            "--endpoint-url",
            project.server.url,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


_HOLDING_COLLECT = (
    "import sys\n"
    "from turk.cli.main import main\n"
    "from turk.crowd.lock import crowd_lock\n"
    "from turk.ledger import Ledger\n"
    "db, url = sys.argv[1], sys.argv[2]\n"
    "with crowd_lock(Ledger(db), 'local', 'collect'):\n"
    "    code = main(['--db', db, 'collect', '--endpoint-url', url])\n"
    "    print('collected', code, flush=True)\n"
    "    sys.stdin.readline()\n"
)


@pytest.mark.slow
def test_two_concurrent_collects_leave_one_clear_message_and_a_consistent_ledger(
    crowd_project,
):
    project = crowd_project
    _publish(project)
    run_workers(project.server.url, project.truth, n=2, seed=7, spammers=0.0)
    # The first collect runs a real collect inside the lock it holds (re-entrant), then
    # keeps the lock until told to go, so the second one meets it for certain.
    first = subprocess.Popen(
        [sys.executable, "-c", _HOLDING_COLLECT, str(project.db_path), project.server.url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert first.stdin is not None and first.stdout is not None
    try:
        # collect prints its own summary first; the holder's line comes last.
        while not (line := first.stdout.readline()).startswith("collected ") and line:
            pass
        assert line.split() == ["collected", "0"]
        second = _collect_process(project, "0")
        _, err2 = second.communicate(timeout=60)
    finally:
        first.stdin.write("go\n")
        first.stdin.flush()
        _, err1 = first.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 1
    lines = err2.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("turk: error: turk.db.local.lock: ")
    assert f"pid {first.pid} (collect, since " in lines[0]
    # New work, then two collects at once with the default wait: the second waits its
    # turn, both succeed, and every assignment is stored once.
    run_workers(project.server.url, project.truth, n=1, seed=11, spammers=0.0)
    both = [_collect_process(project, "60"), _collect_process(project, "60")]
    for proc in both:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    stored = Counter(
        r[0] for r in project.ledger.conn.execute("SELECT assignment_id FROM assignments")
    )
    remote = {
        a.assignment_id
        for h in project.backend.list_hits()
        for a in project.backend.list_assignments(h.hit_id)
    }
    assert set(stored) == remote and set(stored.values()) == {1}
    assert len(remote) == 3 * 8


def test_collect_tolerates_an_assignment_stored_meanwhile(crowd_project):
    project = crowd_project
    _worked(project)
    hit = dict(
        zip(
            ("hit_key", "labels", "task"),
            project.ledger.conn.execute(
                "SELECT hit_key, labels, task FROM hits LIMIT 1"
            ).fetchone(),
            strict=True,
        )
    )
    hit_id = project.ledger.conn.execute(
        "SELECT hit_id FROM hits WHERE hit_key=?", (hit["hit_key"],)
    ).fetchone()[0]
    info = next(iter(project.backend.list_assignments(hit_id)))
    answers = project.ledger.conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    assert store_assignment(project.ledger, "local", hit, info) is None
    assert project.ledger.conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == answers


# -- 8. summaries count what this process did ---------------------------------------------


def test_rerun_that_completes_a_killed_runs_bonuses_reports_their_cost(crowd_project):
    project = crowd_project
    _worked(project)
    review(project.ledger, project.backend, ReviewOptions(rule=GoldRule(1, 0.5)))
    # The ledger of a review that wrote its bonus intents and was killed before paying.
    approved = [
        (str(a), str(w))
        for a, w in project.ledger.conn.execute(
            "SELECT assignment_id, worker_id FROM assignments WHERE status='Approved'"
        )
    ]
    for assignment_id, worker_id in approved:
        record_intent(
            project.ledger.conn,
            target="local",
            kind="bonus",
            token=request_token("local", "bonus", assignment_id),
            assignment_id=assignment_id,
            worker_id=worker_id,
            amount="0.02",
            reason="thanks",
        )
    intents = len(approved)
    assert intents > 0
    resumed = review(project.ledger, project.backend, _bonus_options())
    assert resumed.bonuses == intents
    assert resumed.bonus_total == bonus_cost(Decimal("0.02")) * intents
