"""turk collect: incremental, paginated, safe against answers that do not fit or attack."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fixtures.crowd import CrowdProject
from tests.fixtures.sandbox import submit_work
from turk.crowd.answers import ItemSpec, answers_xml, parse_answer, read_fields
from turk.crowd.collect import collect
from turk.crowd.publish import (
    execute_publish,
    load_publish_config,
    plan_for_publish,
    prepare_publish,
)
from turk.sandbox.workers import run_workers


def _publish(project: CrowdProject, **config: object) -> int:
    plans = plan_for_publish(
        project.ledger, project.backend, gold=project.seeded.gold, gold_rate=0.2
    )
    settings = load_publish_config(**config)  # type: ignore[arg-type]
    prepared = prepare_publish(
        project.ledger, project.backend, plans, settings, media_dir=project.media_dir
    )
    # One at a time, so seeded workers meet the HITs in the same order every run.
    return execute_publish(project.ledger, project.backend, prepared, concurrency=1).published


def _hits(project: CrowdProject) -> list[tuple[str, str, int]]:
    return project.ledger.conn.execute(
        "SELECT h.hit_id, h.hit_key, COUNT(i.position) FROM hits h JOIN hit_items i "
        "ON i.target=h.target AND i.hit_key=h.hit_key GROUP BY h.id ORDER BY h.id"
    ).fetchall()


def _calls(project: CrowdProject, operation: str) -> int:
    return project.backend.stats.calls.get(operation, 0)


def test_collect_stores_raw_xml_and_one_answer_per_item_per_worker(crowd_project):
    project = crowd_project
    assert _publish(project) == 8
    # Careful workers (not the real crowds' default), so right answers show where they landed.
    work = run_workers(project.server.url, project.truth, n=3, seed=4, accuracy=(0.9, 1.0))
    assert work.submitted == 24
    report = collect(project.ledger, project.backend)
    assert report.assignments_new == 24 and report.flagged == report.refused == 0
    conn = project.ledger.conn
    raw = conn.execute("SELECT answer_xml, parse_status, work_time_s FROM assignments").fetchall()
    assert len(raw) == 24
    assert all("QuestionFormAnswers" in xml and s == "ok" and w >= 0 for xml, s, w in raw)
    items = conn.execute("SELECT COUNT(*) FROM hit_items").fetchone()[0]
    answers = conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    assert answers == items * 3 == work.items_answered
    gold = conn.execute(
        "SELECT COUNT(*), SUM(correct) FROM answers WHERE is_gold=1 AND label IS NOT NULL"
    ).fetchone()
    assert gold[0] > 0 and gold[1] is not None
    labels = {r[0] for r in conn.execute("SELECT DISTINCT label FROM answers")}
    assert labels <= {"yes", "no"}
    correct = conn.execute(
        "SELECT SUM(CASE WHEN a.label = CASE WHEN c.role='positive' AND a.image_id % 5 != 0 "
        "THEN 'yes' ELSE 'no' END THEN 1 ELSE 0 END) FROM answers a "
        "JOIN candidates c ON c.image_id=a.image_id WHERE a.is_gold=0"
    ).fetchone()[0]
    assert correct / (answers - gold[0]) > 0.8  # the workers' answers landed on the right images


def test_rerun_fetches_only_what_is_new(crowd_project):
    project = crowd_project
    _publish(project)
    run_workers(project.server.url, project.truth, n=2, seed=1, max_hits=1)  # 2 HITs, 1 each
    first = collect(project.ledger, project.backend)
    assert first.assignments_new == 2
    listed = _calls(project, "ListAssignmentsForHIT")
    assert listed == first.hits_fetched <= 2
    nothing = collect(project.ledger, project.backend)
    assert nothing.assignments_new == 0 and nothing.hits_fetched == 0
    assert _calls(project, "ListAssignmentsForHIT") == listed  # no call for HITs with nothing new
    run_workers(project.server.url, project.truth, n=3, seed=9, max_hits=1)
    again = collect(project.ledger, project.backend)
    assert again.assignments_new == 3
    assert _calls(project, "ListAssignmentsForHIT") - listed == again.hits_fetched <= 3
    total = project.ledger.conn.execute("SELECT COUNT(*) FROM assignments").fetchone()[0]
    assert total == 5


def test_completed_hits_cost_no_call_at_all(crowd_project):
    project = crowd_project
    _publish(project, max_assignments=1)
    run_workers(project.server.url, project.truth, n=2, seed=2)
    report = collect(project.ledger, project.backend)
    assert report.assignments_new == 8
    calls = project.backend.stats.total_calls
    collect(project.ledger, project.backend)
    assert project.backend.stats.total_calls == calls  # every HIT fully collected: no call


def test_auto_approved_work_is_collected(crowd_project):
    project = crowd_project
    _publish(project)
    run_workers(project.server.url, project.truth, n=1, seed=3, max_hits=2)
    project.server.advance_clock(4 * 86400)  # past the 3-day auto-approval delay
    report = collect(project.ledger, project.backend)
    assert report.assignments_new == 2
    statuses = project.ledger.conn.execute("SELECT DISTINCT status FROM assignments").fetchall()
    assert statuses == [("Approved",)]


def test_status_changes_after_collection_are_picked_up(crowd_project):
    project = crowd_project
    _publish(project, max_assignments=1)
    run_workers(project.server.url, project.truth, n=1, seed=3, max_hits=1)
    assert collect(project.ledger, project.backend).assignments_new == 1
    project.server.advance_clock(4 * 86400)
    with project.ledger.conn:  # our record of the deadline, on the sandbox's moved clock
        project.ledger.conn.execute(
            "UPDATE assignments SET auto_approval_time='2000-01-01T00:00:00Z'"
        )
    report = collect(project.ledger, project.backend)
    assert report.assignments_updated == 1 and report.assignments_new == 0
    status = project.ledger.conn.execute("SELECT status FROM assignments").fetchone()[0]
    assert status == "Approved"


def test_answers_that_do_not_fit_are_kept_and_flagged(crowd_project):
    project = crowd_project
    _publish(project)
    hit_id, _key, n = _hits(project)[0]
    fields = {f"item-{i}": "yes" for i in range(n)}
    fields.pop("item-1")
    fields["item-2"] = "maybe"
    fields["comment"] = "nice photos"
    submit_work(project.server.url, hit_id, "AFLAGGED1", fields)
    report = collect(project.ledger, project.backend)
    assert report.assignments_new == 1 and report.flagged == 1
    assert "missing item-1" in report.flags[0] and "unknown value 'maybe'" in report.flags[0]
    rows = dict(
        project.ledger.conn.execute(
            "SELECT field, flag FROM answers WHERE worker_id='AFLAGGED1'"
        ).fetchall()
    )
    assert rows["item-1"] == "missing" and rows["item-2"] == "unknown value"
    assert rows["comment"] == "extra field" and rows["item-0"] is None
    value = project.ledger.conn.execute(
        "SELECT value, label FROM answers WHERE field='item-2'"
    ).fetchone()
    assert value == ("maybe", None)
    assert len(rows) == n + 1


HOSTILE = {
    "external entity": (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<QuestionFormAnswers><Answer><QuestionIdentifier>item-0</QuestionIdentifier>"
        "<FreeText>&x;</FreeText></Answer></QuestionFormAnswers>"
    ),
    "entity expansion": (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        "<QuestionFormAnswers><Answer><QuestionIdentifier>item-0</QuestionIdentifier>"
        "<FreeText>&c;</FreeText></Answer></QuestionFormAnswers>"
    ),
    "malformed": "<QuestionFormAnswers><Answer><QuestionIdentifier>item-0",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_or_malformed_xml_is_refused_flagged_and_kept(crowd_project, kind):
    project = crowd_project
    _publish(project)
    hits = _hits(project)
    bad = submit_work(project.server.url, hits[0][0], "AHOSTILE1", {"item-0": "yes"})
    good = submit_work(project.server.url, hits[1][0], "AHONEST01", {"item-0": "no"})
    store = project.server.store
    assert store is not None
    with store.transaction() as conn:  # the other side of the wire sends what it likes
        conn.execute("UPDATE assignments SET answer=? WHERE id=?", (HOSTILE[kind], bad))
    report = collect(project.ledger, project.backend)
    assert report.assignments_new == 2 and report.refused == 1
    stored = dict(
        project.ledger.conn.execute(
            "SELECT assignment_id, parse_status FROM assignments"
        ).fetchall()
    )
    assert stored[bad] == ("malformed" if kind == "malformed" else "hostile")
    assert stored[good] == "flagged"  # one item answered, the rest missing: kept
    raw = project.ledger.conn.execute(
        "SELECT answer_xml FROM assignments WHERE assignment_id=?", (bad,)
    ).fetchone()[0]
    assert raw == HOSTILE[kind]
    assert (
        project.ledger.conn.execute(
            "SELECT COUNT(*) FROM answers WHERE assignment_id=?", (bad,)
        ).fetchone()[0]
        == 0
    )


def test_parse_answer_multi_select_and_gold():
    items = [
        ItemSpec(0, "item-0", 1, None, True, "bus"),
        ItemSpec(1, "item-1", 2, None, False, None),
        ItemSpec(2, "item-2", 3, None, True, "none"),
    ]
    xml = (
        "<QuestionFormAnswers xmlns='http://mechanicalturk.amazonaws.com/x'>"
        + "".join(
            f"<Answer><QuestionIdentifier>{f}</QuestionIdentifier><FreeText>{v}</FreeText></Answer>"
            for f, v in (("item-0", "bus"), ("item-1", "camera|bus"), ("item-2", "None"))
        )
        + "</QuestionFormAnswers>"
    )
    result = parse_answer(xml, items, "multi", ["bus", "camera"])
    assert result.status == "ok"
    got = {a.field: (a.label, a.correct) for a in result.answers}
    assert got == {
        "item-0": ("bus", True),
        "item-1": ("bus|camera", None),
        "item-2": ("none", True),
    }
    wrong = parse_answer(xml.replace(">bus<", ">boat<"), items, "multi", ["bus", "camera"])
    assert wrong.status == "flagged" and "unknown value 'boat'" in (wrong.flag or "")


def test_collect_money_is_not_touched(crowd_project):
    project = crowd_project
    _publish(project)
    balance = project.backend.balance()
    run_workers(project.server.url, project.truth, n=1, seed=5, max_hits=1)
    collect(project.ledger, project.backend)
    assert project.backend.balance() == balance
    assert isinstance(balance, Decimal)


def test_answers_from_a_results_csv_read_back_as_the_sandbox_writes_them() -> None:
    from turk.sandbox.market import answer_xml

    fields = {"item-0": "yes", "item-1": 'a & <b> "c"', "note": "caf\u00e9 \x01\U0001f600"}
    xml = answers_xml(fields)
    # The same document the MTurk double writes for the same posted form.
    assert xml == answer_xml(list(fields.items()))
    assert read_fields(xml) == [
        ("item-0", "yes"),
        ("item-1", 'a & <b> "c"'),
        ("note", "caf\u00e9 \U0001f600"),
    ]
