"""turk review, status and expire: gold rules, idempotent money actions, extension."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fixtures.crowd import CrowdProject
from turk.crowd.collect import collect
from turk.crowd.publish import (
    execute_publish,
    load_publish_config,
    plan_for_publish,
    prepare_publish,
)
from turk.crowd.review import GoldRule, ItemAnswers, ReviewOptions, review, worker_scores
from turk.crowd.spend import target_spend
from turk.crowd.status import batch_status, expire_hits
from turk.sandbox.workers import run_workers

CAREFUL = (0.85, 0.98)
"""Honest workers' accuracy here: careful ones, so the gold verdicts these tests expect hold."""


def _worked(project: CrowdProject, *, spammers: float = 0.34, n: int = 3, **config: object):
    plans = plan_for_publish(
        project.ledger, project.backend, gold=project.seeded.gold, gold_rate=0.25
    )
    settings = load_publish_config(**config)  # type: ignore[arg-type]
    prepared = prepare_publish(
        project.ledger, project.backend, plans, settings, media_dir=project.media_dir
    )
    # One at a time: HITs are then listed to workers in the same order every run, so the
    # seeded workers see the same gold and the verdicts do not depend on thread timing.
    execute_publish(project.ledger, project.backend, prepared, concurrency=1)
    run_workers(project.server.url, project.truth, n=n, seed=7, spammers=spammers, accuracy=CAREFUL)
    collect(project.ledger, project.backend)


def _count(project: CrowdProject, sql: str, *args: object) -> int:
    return int(project.ledger.conn.execute(sql, args).fetchone()[0])


def _calls(project: CrowdProject, operation: str) -> int:
    return project.backend.stats.calls.get(operation, 0)


def test_gold_rule_approves_good_work_and_rejects_failing_work_with_a_reason(crowd_project):
    project = crowd_project
    _worked(project)
    report = review(project.ledger, project.backend, ReviewOptions())
    assert report.workers == {"fail": 1, "pass": 2}
    assert report.approved == 16 and report.rejected == 8 and report.left == 0
    spammer = project.ledger.conn.execute(
        "SELECT worker_id, assignment_id FROM assignments WHERE status='Rejected'"
    ).fetchall()
    assert len({w for w, _ in spammer}) == 1
    remote = project.backend.client.get_assignment(AssignmentId=spammer[0][1])["Assignment"]
    assert remote["AssignmentStatus"] == "Rejected"
    assert "photos with a known answer were answered right" in remote["RequesterFeedback"]
    assert "at least 80% is needed" in remote["RequesterFeedback"]
    for _worker, assignment_id in spammer:
        status = project.backend.get_assignment(assignment_id).status
        assert status == "Rejected"

    calls = dict(project.backend.stats.calls)
    again = review(project.ledger, project.backend, ReviewOptions())
    assert again.approved == again.rejected == 0
    assert project.backend.stats.calls == calls  # nothing left to do: no call


def test_already_approved_counts_as_done_and_auto_approval_beats_rejection(crowd_project):
    project = crowd_project
    _worked(project)
    scores = worker_scores(project.ledger, "local")
    verdicts = {w: s.verdict(GoldRule()) for w, s in scores.items()}
    by_worker = dict(
        project.ledger.conn.execute("SELECT worker_id, assignment_id FROM assignments").fetchall()
    )
    honest = (next(a for w, a in by_worker.items() if verdicts[w] == "pass"),)
    spam = (next(a for w, a in by_worker.items() if verdicts[w] == "fail"),)
    project.backend.approve(honest[0])  # approved elsewhere before the review
    project.backend.approve(spam[0])  # as MTurk's auto-approval would
    report = review(project.ledger, project.backend, ReviewOptions())
    assert report.already == 1 and report.skipped == 1 and report.failed == 0
    statuses = dict(
        project.ledger.conn.execute(
            "SELECT assignment_id, status FROM assignments WHERE assignment_id IN (?, ?)",
            (honest[0], spam[0]),
        ).fetchall()
    )
    assert statuses == {honest[0]: "Approved", spam[0]: "Approved"}


def test_dry_run_sends_and_writes_nothing(cli, crowd_project):
    project = crowd_project
    _worked(project)
    before = _count(project, "SELECT COUNT(*) FROM actions")
    result = cli(
        "--db",
        project.db_path,
        "review",
        *project.cli_target(),
        "--dry-run",
        "--bonus",
        "0.10",
        "--block-after",
        "1",
        "--trusted",
        "trusted",
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("review --dry-run: would approve ") for line in lines) == 17
    assert sum(line.startswith("review --dry-run: would reject ") for line in lines) == 8
    assert lines[-1].startswith("review --dry-run: would approve 16, reject 8")
    assert "block 1; grant 2; bonus 8 ($0.96)" in lines[-1]
    assert _count(project, "SELECT COUNT(*) FROM actions") == before == 0
    assert _count(project, "SELECT COUNT(*) FROM assignments WHERE status='Submitted'") == 24
    listed = project.backend.client.list_assignments_for_hit(
        HITId=project.ledger.conn.execute("SELECT hit_id FROM hits").fetchone()[0]
    )["Assignments"]
    assert {a["AssignmentStatus"] for a in listed} == {"Submitted"}


def test_bonus_is_never_paid_twice(crowd_project):
    project = crowd_project
    _worked(project, spammers=0.0, n=2)
    options = ReviewOptions(rule=GoldRule(min_gold=3, min_accuracy=0.5), bonus=Decimal("0.10"))
    options.bonus_accuracy = 0.0
    first = review(project.ledger, project.backend, options)
    assert first.bonuses == 16 and first.bonus_total == Decimal("0.12") * 16
    assert _calls(project, "SendBonus") == 16
    review(project.ledger, project.backend, options)
    assert _calls(project, "SendBonus") == 16
    # As if the process died after each bonus call went out, past the 24-hour token window.
    with project.ledger.conn:
        project.ledger.conn.execute(
            "UPDATE actions SET status='intent', done_at=NULL WHERE kind='bonus'"
        )
    project.server.advance_clock(25 * 3600)
    resumed = review(project.ledger, project.backend, options)
    assert resumed.already == 16 and resumed.bonuses == 0
    assert _calls(project, "SendBonus") == 16
    for (assignment_id,) in project.ledger.conn.execute("SELECT assignment_id FROM assignments"):
        assert len(project.backend.list_bonuses(assignment_id)) == 1


def test_budget_caps_bonuses(crowd_project):
    project = crowd_project
    _worked(project, spammers=0.0, n=2)
    # The budget caps everything committed on the target: the HITs, then $0.50 of bonuses.
    hits = target_spend(project.ledger, "local").committed
    assert hits > 0
    options = ReviewOptions(
        rule=GoldRule(min_gold=3, min_accuracy=0.5),
        bonus=Decimal("0.10"),
        budget=hits + Decimal("0.50"),
    )
    options.bonus_accuracy = 0.0
    report = review(project.ledger, project.backend, options)
    assert report.bonuses == 4 and report.budget_stopped == 12
    assert report.bonus_total == Decimal("0.48")
    assert (
        report.committed
        == target_spend(project.ledger, "local").committed
        == hits + Decimal("0.48")
    )
    again = review(project.ledger, project.backend, options)
    assert again.bonuses == 0 and again.budget_stopped == 12


def test_block_repeat_offenders_and_grant_trusted(crowd_project):
    project = crowd_project
    _worked(project)
    options = ReviewOptions(block_after=2, trusted="trusted-labelers")
    report = review(project.ledger, project.backend, options)
    assert report.blocked == 1 and report.qualified == 2
    blocks = project.backend.client.list_worker_blocks()["WorkerBlocks"]
    assert len(blocks) == 1 and "rejected for failing known-answer checks" in blocks[0]["Reason"]
    type_id = project.backend.find_qualification_type("trusted-labelers")
    assert type_id is not None
    store = project.server.store
    assert store is not None  # the sandbox has no ListWorkersWithQualificationType: look inside
    granted = store.conn.execute(
        "SELECT COUNT(*) FROM qualifications WHERE type_id=?", (type_id,)
    ).fetchone()[0]
    assert granted == 2
    again = review(project.ledger, project.backend, options)
    assert again.blocked == 0 and again.qualified == 0
    assert _calls(project, "CreateWorkerBlock") == 1
    assert _calls(project, "CreateQualificationType") == 1


def test_undecided_work_waits_unless_approved_before_the_deadline(crowd_project):
    project = crowd_project
    _worked(project, spammers=0.0, n=2)
    strict = GoldRule(min_gold=1000, min_accuracy=0.8)
    report = review(project.ledger, project.backend, ReviewOptions(rule=strict))
    assert report.left == 16 and report.approved == 0
    [status] = batch_status(project.ledger, batch_id=_first_batch(project))
    assert status.next_deadline is not None and status.submitted == 4
    report = review(project.ledger, project.backend, ReviewOptions(rule=strict, approve_all=True))
    assert report.approved == 16
    assert _count(project, "SELECT COUNT(*) FROM assignments WHERE status='Submitted'") == 0


def _first_batch(project: CrowdProject) -> str:
    return str(project.ledger.conn.execute("SELECT batch_id FROM hits ORDER BY id").fetchone()[0])


def test_extend_adds_assignments_for_uncertain_items_up_to_the_limit(crowd_project):
    project = crowd_project
    _worked(project, spammers=0.0, n=2, max_assignments=2, max_total_assignments=3)

    def always(item: ItemAnswers) -> bool:
        return True

    options = ReviewOptions(extend=True, uncertain=always)
    report = review(project.ledger, project.backend, options)
    assert report.extended == 8
    assert {h.max_assignments for h in project.backend.list_hits()} == {3}
    assert report.extension_total == Decimal("0.06") * 8
    # Nothing new collected yet: no second extension, and never past the limit.
    again = review(project.ledger, project.backend, options)
    assert again.extended == 0
    run_workers(project.server.url, project.truth, n=3, seed=8, accuracy=CAREFUL)
    assert collect(project.ledger, project.backend).assignments_new == 8
    third = review(project.ledger, project.backend, options)
    assert third.extended == 0 and _calls(project, "CreateAdditionalAssignmentsForHIT") == 8


def test_extend_default_rule_targets_disagreement(crowd_project):
    project = crowd_project
    _worked(project, spammers=0.0, n=2, max_assignments=2, max_total_assignments=4)
    lenient = GoldRule(min_accuracy=0.5)
    report = review(project.ledger, project.backend, ReviewOptions(rule=lenient, extend=True))
    extended = {line.split()[2].strip("()") for line in report.lines if line.startswith("extend")}
    disagreeing = {
        key
        for (key,) in project.ledger.conn.execute(
            "SELECT hit_key FROM answers WHERE is_gold=0 AND label IS NOT NULL "
            "GROUP BY hit_key, position HAVING COUNT(DISTINCT label) > 1"
        )
    }
    assert extended and report.extended == len(extended) and extended == disagreeing
    never = ReviewOptions(rule=lenient, extend=True, uncertain=lambda item: False)
    assert review(project.ledger, project.backend, never).extended == 0


def test_status_and_expire_through_the_cli(cli, crowd_project):
    project = crowd_project
    _worked(project)
    review(project.ledger, project.backend, ReviewOptions())
    result = cli("--db", project.db_path, "status", "--target", "local")
    assert result.exit_code == 0, result.stderr
    money, header, *lines = result.stdout.strip().splitlines()
    assert money.startswith("status: target local: $") and "committed" in money
    assert header.split()[:6] == ["target", "batch", "HITs", "open", "done", "deleted"]
    *batches, total = lines
    assert len(batches) == 4
    assert all(
        line.split()[0] == "local" and line.split()[1].startswith("binary-") for line in batches
    )
    assert total.split()[:2] == ["local", "total"]
    # Every assignment of these HITs is done: none is open any more.
    columns = [line.split() for line in batches]
    assert all(c[2] == "2/2" and c[3] == "0" and c[4] == "2" for c in columns), batches
    assert total.split()[2:5] == ["8/8", "0", "8"]
    assert all(c[10].startswith("$") for c in columns)
    unknown = cli("--db", project.db_path, "status", "--target", "mturk-sandbx")
    assert unknown.exit_code == 1 and "mturk-sandbx" in unknown.stderr
    statuses = batch_status(project.ledger)
    assert sum(s.approved for s in statuses) == 16 and sum(s.rejected for s in statuses) == 8
    assert sum(s.spent for s in statuses) == Decimal("0.06") * 16
    assert sum(s.committed for s in statuses) == Decimal("0.18") * 8

    result = cli("--db", project.db_path, "expire", *project.cli_target(), "--delete")
    assert result.exit_code == 0, result.stderr
    assert "8 HITs expired, 8 deleted, 0 kept on local" in result.stdout
    assert list(project.backend.list_hits()) == []


def test_expire_keeps_hits_whose_results_are_not_stored(crowd_project):
    project = crowd_project
    _worked(project)
    # One more worker's work.
    run_workers(project.server.url, project.truth, n=1, seed=99, accuracy=CAREFUL)
    report = expire_hits(project.ledger, project.backend, delete_finished=True)
    assert report.expired == 8 and report.deleted == 0
    assert any("run 'turk collect' first" in k or "awaiting review" in k for k in report.kept)
    assert len(list(project.backend.list_hits())) == 8


@pytest.mark.parametrize("bad", [{"min_gold": 0}, {"min_accuracy": 1.5}])
def test_bad_gold_rules_are_refused(bad):
    from turk.errors import ConfigError

    with pytest.raises(ConfigError):
        GoldRule(**bad)
