"""The hand-off target: export as batch templates and CSVs, import a results CSV, all or none."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from tests.fixtures.crowd import CrowdProject
from turk.crowd.answers import read_fields
from turk.crowd.collect import collect
from turk.crowd.handoff import (
    HandoffBackend,
    ResultsError,
    export_handoff,
    import_results,
    open_handoff,
)
from turk.crowd.local import run_simulated_workers
from turk.crowd.publish import (
    execute_publish,
    load_publish_config,
    plan_for_publish,
    prepare_publish,
)
from turk.errors import InputError

BASE = "https://media.example.org/m"


def _publish(project: CrowdProject, backend: object, **options: object) -> None:
    plans = plan_for_publish(project.ledger, backend, gold=project.seeded.gold, **options)  # type: ignore[arg-type]
    settings = load_publish_config(max_assignments=2)
    prepared = prepare_publish(
        project.ledger,
        backend,
        plans,
        settings,
        media_dir=project.media_dir,  # type: ignore[arg-type]
    )
    execute_publish(project.ledger, backend, prepared)  # type: ignore[arg-type]


def _handoff(project: CrowdProject) -> HandoffBackend:
    backend = open_handoff(None, project.db_path.parent)
    _publish(project, backend, image_base=BASE, concepts=["bus"])
    return backend


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _answers(db: Path, target: str) -> set[tuple[str, str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return {
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT hit_key, worker_id, field, label FROM answers WHERE target = ?", (target,)
            )
        }
    finally:
        conn.close()


def _results_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_export_writes_templates_csvs_and_media_with_gold_unmarked(
    crowd_project: CrowdProject, tmp_path: Path
) -> None:
    backend = _handoff(crowd_project)
    out = tmp_path / "out"
    report = export_handoff(backend, out, media_dir=crowd_project.media_dir)
    hits = list(backend.list_hits())
    assert report.hits == len(hits) > 0 and report.assignments == 2 * len(hits)
    assert not report.missing_media
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert sum(b["hits"] for b in manifest["batches"]) == len(hits)
    for batch in manifest["batches"]:
        template = (out / batch["template"]).read_text(encoding="utf-8")
        assert "<form" not in template
        rows = _rows(out / batch["csv"])
        assert list(rows[0]) == batch["variables"]
        for variable in batch["variables"]:
            assert f"${{{variable}}}" in template
        for row in rows:
            for url in row.values():
                assert url.startswith(BASE + "/")
                assert (out / "media" / url.rsplit("/", 1)[1]).is_file()
        text = (out / batch["csv"]).read_text(encoding="utf-8").lower()
        assert "gold" not in text and "hit" not in text
    # Exporting again writes the same files; publishing again sends nothing new.
    before = {p.name: p.read_bytes() for p in out.glob("*.csv")}
    _publish(crowd_project, backend, image_base=BASE, concepts=["bus"])
    export_handoff(backend, out, media_dir=crowd_project.media_dir)
    assert {p.name: p.read_bytes() for p in out.glob("*.csv")} == before
    assert len(list(backend.list_hits())) == len(hits)


def test_round_trip_on_the_sandboxs_own_results(
    crowd_project: CrowdProject, tmp_path: Path
) -> None:
    project = crowd_project
    _publish(project, project.backend, concepts=["bus"])
    run_simulated_workers(project.server.url, project.truth, n=2, seed=3)
    collect(project.ledger, project.backend)
    handoff = _handoff(project)
    export_handoff(handoff, tmp_path / "out", media_dir=project.media_dir)

    conn = sqlite3.connect(project.db_path)
    local_ids = dict(
        conn.execute(
            "SELECT hit_id, hit_key FROM hits WHERE target = 'local' AND hit_id IS NOT NULL"
        )
    )
    handoff_ids = dict(
        conn.execute(
            "SELECT hit_key, hit_id FROM hits WHERE target = 'handoff' AND hit_id IS NOT NULL"
        )
    )
    conn.close()
    state = sqlite3.connect(handoff.folder / "handoff.db")
    inputs = {
        h: json.loads(r) for h, r in state.execute("SELECT hit_id, row_json FROM handoff_hits")
    }
    state.close()
    # MTurk's results download: one row per assignment, inputs as uploaded, answers.
    rows = []
    for hit_id, hit_key in local_ids.items():
        for info in project.backend.list_assignments(hit_id):
            row = {"HITId": "x", "AssignmentId": info.assignment_id, "WorkerId": info.worker_id}
            row |= {f"Input.{k}": v for k, v in inputs[handoff_ids[hit_key]].items()}
            row |= {f"Answer.{k}": v for k, v in read_fields(info.answer_xml)}
            rows.append(row)
    assert rows
    results = _results_csv(tmp_path / "Batch_results.csv", rows)
    report = import_results(handoff, results)
    assert report.added == len(rows) and report.known == 0
    collected = collect(project.ledger, handoff)
    assert collected.assignments_new == len(rows) and collected.flagged == 0
    assert _answers(project.db_path, "handoff") == _answers(project.db_path, "local")
    # Importing the same file again adds nothing.
    again = import_results(handoff, results)
    assert again.added == 0 and again.known == len(rows)
    assert collect(project.ledger, handoff).assignments_new == 0


def test_a_vendor_file_with_bad_rows_imports_nothing_and_names_each_line(
    crowd_project: CrowdProject, tmp_path: Path
) -> None:
    handoff = _handoff(crowd_project)
    out = tmp_path / "out"
    report = export_handoff(handoff, out, media_dir=crowd_project.media_dir)
    rows = [row for name in report.templates for row in _rows(out / f"{name}.csv")]
    assert len(rows) >= 2
    # Each HIT's inputs with a yes for each of its items.
    one, two = (
        {
            **{f"Input.{k}": v for k, v in row.items()},
            **{f"Answer.item-{k}": "yes" for k in range(len(row))},
        }
        for row in rows[:2]
    )
    good = [
        {"AssignmentId": "A1", "WorkerId": "W1", **one},
        {"AssignmentId": "A2", "WorkerId": "W2", **one, "Answer.item-0": "No"},
    ]
    bad = [
        {"AssignmentId": "", "WorkerId": "W3", **two},  # line 4
        {"AssignmentId": "A4", "WorkerId": "", **two},  # line 5
        {"AssignmentId": "A5", "WorkerId": "W5", **two, "Answer.item-1": ""},
        {"AssignmentId": "A6", "WorkerId": "W6", **two, "Answer.item-0": "maybe"},
        {"AssignmentId": "A7", "WorkerId": "W7", **two, "Input.image_url_0": BASE + "/nope.jpg"},
        {"AssignmentId": "A1", "WorkerId": "W9", **one},  # line 9
    ]
    path = _results_csv(tmp_path / "vendor.csv", good + bad)
    with pytest.raises(ResultsError) as caught:
        import_results(handoff, path)
    problems = caught.value.problems
    assert [p.split(":")[1] for p in problems] == ["4", "5", "6", "7", "8", "9"]
    assert "empty AssignmentId" in problems[0]
    assert "A4 has no WorkerId" in problems[1]
    assert "A5 has no Answer.item-1" in problems[2]
    assert "'maybe' is not an answer" in problems[3]
    assert "match no HIT" in problems[4]
    assert "A1 appears in line 2 with other content" in problems[5]
    assert str(caught.value).startswith(f"{path}: 6 row problem(s), nothing imported")
    assert list(handoff.list_assignments(next(iter(handoff.list_hits())).hit_id)) == []
    state = sqlite3.connect(handoff.folder / "handoff.db")
    assert state.execute("SELECT COUNT(*) FROM handoff_assignments").fetchone()[0] == 0
    state.close()
    # The fixed file imports; a later file with one more row adds only that row.
    fixed = _results_csv(tmp_path / "fixed.csv", good)
    assert import_results(handoff, fixed).added == 2
    more = _results_csv(
        tmp_path / "more.csv", [*good, {"AssignmentId": "A8", "WorkerId": "W8", **two}]
    )
    again = import_results(handoff, more)
    assert (again.added, again.known) == (1, 2)
    assert collect(crowd_project.ledger, handoff).assignments_new == 3


def test_a_results_file_without_mturk_columns_is_refused(
    crowd_project: CrowdProject, tmp_path: Path
) -> None:
    handoff = _handoff(crowd_project)
    path = tmp_path / "r.csv"
    path.write_text("id,answer\n1,yes\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"r.csv:1: results CSV lacks AssignmentId, WorkerId"):
        import_results(handoff, path)


def test_handoff_commands(cli, crowd_project: CrowdProject, tmp_path: Path) -> None:
    db = crowd_project.db_path
    published = cli(
        "--db", db, "publish", "--target", "handoff", "--image-base-url", BASE,
        "--concept", "bus", "--gold", crowd_project.seeded.gold,
    )  # fmt: skip
    assert published.exit_code == 0, published.stderr
    assert "$" not in published.stdout.replace("${", "")
    out = tmp_path / "vendor"
    exported = cli("--db", db, "handoff", "export", "--out", out)
    assert exported.exit_code == 0, exported.stderr
    assert f"written to {out}" in exported.stdout
    bad = _results_csv(
        tmp_path / "bad.csv",
        [{"AssignmentId": "A", "WorkerId": "W", "Input.image_url_0": "x", "Answer.item-0": "yes"}],
    )
    imported = cli("--db", db, "handoff", "import", bad)
    assert imported.exit_code != 0
    assert "bad.csv:2: assignment A: its Input.* values match no HIT" in imported.stderr
    assert len(imported.stderr.strip().splitlines()) == 1


def test_multi_select_results_take_class_names_or_none(
    crowd_project: CrowdProject, tmp_path: Path
) -> None:
    handoff = open_handoff(None, crowd_project.db_path.parent)
    _publish(crowd_project, handoff, image_base=BASE, task="multi", buckets=[1])
    report = export_handoff(handoff, tmp_path / "out")
    row = _rows(tmp_path / "out" / f"{report.templates[0]}.csv")[0]
    inputs = {f"Input.{k}": v for k, v in row.items()}
    answers = {f"Answer.item-{k}": "none" for k in range(len(row))}
    answers["Answer.item-0"] = "camera|bus"
    bad = {**answers, "Answer.item-1": "bus|dragon"}
    path = _results_csv(
        tmp_path / "multi.csv",
        [
            {"AssignmentId": "M1", "WorkerId": "W1", **inputs, **answers},
            {"AssignmentId": "M2", "WorkerId": "W2", **inputs, **bad},
        ],
    )
    with pytest.raises(ResultsError) as caught:
        import_results(handoff, path)
    assert [p.split(":")[1] for p in caught.value.problems] == ["3"]
    assert "'bus|dragon' is not an answer this HIT offered (class names" in caught.value.problems[0]
    good = _results_csv(
        tmp_path / "good.csv", [{"AssignmentId": "M1", "WorkerId": "W1", **inputs, **answers}]
    )
    assert import_results(handoff, good).added == 1
    collected = collect(crowd_project.ledger, handoff)
    assert collected.assignments_new == 1 and collected.flagged == 0
