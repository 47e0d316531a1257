"""turk audit: sampling accepted items, verdicts from files, the page's API, certification;
and turk report / turk export from the same ledger."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.crowd_ledger import CrowdLedger, build_crowd_ledger
from turk.dataset.audit import (
    apply_answers_file,
    apply_truth_file,
    audit_app,
    audit_items,
    audit_progress,
    draw_audit,
    find_open_audit,
)
from turk.dataset.results import crowd_results
from turk.errors import ConfigError, InputError, StageError
from turk.ledger import Ledger


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> CrowdLedger:
    return build_crowd_ledger(tmp_path_factory.mktemp("crowd"))


@pytest.fixture
def crowd(built: CrowdLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CrowdLedger:
    """A private copy of the built ledger (tests write audits into it)."""
    db = tmp_path / "turk.db"
    shutil.copyfile(built.db_path, db)
    monkeypatch.setenv("TURK_DB", str(db))
    return CrowdLedger(db, built.sample_dir, built.truth, built.items, built.workers)


def _wrong_items(ledger: Ledger, audit_id: int, truth: dict[int, str]) -> list[int]:
    items = audit_items(ledger, audit_id)
    return [
        int(p)
        for p, i, c in zip(items.position, items.image_id, items.concept, strict=True)
        if truth[int(i)] != c
    ]


def test_sample_is_uniform_over_accepted_items_and_resumable(crowd: CrowdLedger) -> None:
    with Ledger(crowd.db_path) as ledger:
        results = crowd_results(ledger)
        accepted = set(results.accepted["task"])
        audit_id = draw_audit(ledger, results, size=40, seed=3)
        items = audit_items(ledger, audit_id)
        assert len(items) == 40
        assert set(items["task"]) <= accepted
        assert items["in_pooled"].all()
        again = draw_audit(ledger, results, size=40, seed=3)
        assert list(audit_items(ledger, again)["task"]) == list(items["task"])
        other = draw_audit(ledger, results, size=40, seed=4)
        assert list(audit_items(ledger, other)["task"]) != list(items["task"])
        assert find_open_audit(ledger, results.target, None, None, "requester") == other
        progress = audit_progress(ledger, audit_id)
        assert (progress.marked, progress.next_position, progress.status) == (0, 0, "open")


def test_truth_audit_certifies_with_exact_bound(crowd: CrowdLedger) -> None:
    with Ledger(crowd.db_path) as ledger:
        results = crowd_results(ledger)
        audit_id = draw_audit(ledger, results, concept="laptop", source="truth")
        n_laptop = int((results.accepted["concept"] == "laptop").sum())
        marked, left = apply_truth_file(ledger, audit_id, crowd.sample_dir / "truth.csv")
        assert (marked, left) == (n_laptop, 0)  # default size exceeds the scope: census
        wrong = len(_wrong_items(ledger, audit_id, crowd.truth))
        progress = audit_progress(ledger, audit_id)
        assert progress.status == "done"
        assert progress.errors == wrong
        assert progress.lower_bound == pytest.approx((n_laptop - wrong) / n_laptop)


def test_answers_file_marks_and_rejects_unknown_items(crowd: CrowdLedger, tmp_path: Path) -> None:
    with Ledger(crowd.db_path) as ledger:
        results = crowd_results(ledger)
        audit_id = draw_audit(ledger, results, size=30, source="answers-file")
        items = audit_items(ledger, audit_id)
        good = tmp_path / "verdicts.csv"
        lines = ["image,concept,correct"]
        for image_id, concept in list(zip(items.image_id, items.concept, strict=True))[:20]:
            lines.append(
                f"{image_id},{concept},{'yes' if crowd.truth[image_id] == concept else 'no'}"
            )
        good.write_text("\n".join(lines) + "\n")
        assert apply_answers_file(ledger, audit_id, good) == (20, 10)
        progress = audit_progress(ledger, audit_id)
        assert progress.marked == 20 and progress.status == "open"
        assert progress.next_position == 20

        unknown = tmp_path / "unknown.csv"
        unknown.write_text("image,concept,correct\n" + lines[1] + "\n999999,bus,yes\n")
        with pytest.raises(InputError, match=r"unknown.csv: line 3: image 999999 \(bus\) is not"):
            apply_answers_file(ledger, audit_id, unknown)
        bad = tmp_path / "bad.csv"
        bad.write_text("image,concept,correct\n" + lines[1].rsplit(",", 1)[0] + ",maybe\n")
        with pytest.raises(InputError, match="line 2: correct value 'maybe'"):
            apply_answers_file(ledger, audit_id, bad)
        header = tmp_path / "header.csv"
        header.write_text("id,verdict\n1,yes\n")
        with pytest.raises(InputError, match="missing column"):
            apply_answers_file(ledger, audit_id, header)
        assert audit_progress(ledger, audit_id).marked == 20  # nothing written by failures


def test_sprt_stops_early(crowd: CrowdLedger, tmp_path: Path) -> None:
    with Ledger(crowd.db_path) as ledger:
        results = crowd_results(ledger)
        audit_id = draw_audit(
            ledger, results, sprt=True, target=0.5, confidence=0.95, source="answers-file"
        )
        items = audit_items(ledger, audit_id)
        verdicts = tmp_path / "all-right.csv"
        verdicts.write_text(
            "image,concept,correct\n"
            + "".join(f"{i},{c},1\n" for i, c in zip(items.image_id, items.concept, strict=True))
        )
        marked, left = apply_answers_file(ledger, audit_id, verdicts)
        progress = audit_progress(ledger, audit_id)
        assert progress.decision == "certified"
        assert progress.status == "done"
        assert marked < len(items) and left == len(items) - marked
        # H0 p=0.5 vs H1 p=0.95 at 5%/5%: a few right answers in a row suffice.
        assert marked <= 5


def test_audit_bad_requests(crowd: CrowdLedger) -> None:
    with Ledger(crowd.db_path) as ledger:
        results = crowd_results(ledger)
        n_bus = int((results.accepted["concept"] == "bus").sum())
        with pytest.raises(ConfigError, match=rf"--size {n_bus + 1}: only {n_bus} accepted"):
            draw_audit(ledger, results, concept="bus", size=n_bus + 1)
        with pytest.raises(StageError, match="no accepted items in scope"):
            draw_audit(ledger, results, concept="zebra")
        with pytest.raises(ConfigError, match="strictly between"):
            draw_audit(ledger, results, target=1.5)


def test_audit_page_api_marks_undoes_and_guards(crowd: CrowdLedger) -> None:
    from starlette.testclient import TestClient

    with Ledger(crowd.db_path) as ledger:
        results = crowd_results(ledger)
        audit_id = draw_audit(ledger, results, concept="camera", size=3)
        app = audit_app(ledger, audit_id, token="secret-token")
        client = TestClient(app)
        page = client.get("/")
        assert page.status_code == 200 and 'data-token="secret-token"' in page.text
        state = client.get("/api/state").json()
        assert state["progress"]["next_position"] == 0
        assert client.get("/image/0").headers["content-type"] == "image/jpeg"
        assert client.get("/image/99").status_code == 404
        refused = client.post("/api/mark", json={"position": 0, "correct": True})
        assert refused.status_code == 403
        headers = {"X-Audit-Token": "secret-token"}
        assert (
            client.post(
                "/api/mark", json={"position": 0, "correct": "y"}, headers=headers
            ).status_code
            == 400
        )
        assert (
            client.post(
                "/api/mark", json={"position": 7, "correct": True}, headers=headers
            ).status_code
            == 404
        )
        for position, verdict in ((0, True), (1, False)):
            state = client.post(
                "/api/mark", json={"position": position, "correct": verdict}, headers=headers
            ).json()
        assert state["progress"]["marked"] == 2 and state["progress"]["errors"] == 1
        state = client.post(
            "/api/mark", json={"position": 1, "correct": None}, headers=headers
        ).json()
        assert state["progress"]["next_position"] == 1
        assert not app.state.finished.is_set()
        for position in (1, 2):
            state = client.post(
                "/api/mark", json={"position": position, "correct": True}, headers=headers
            ).json()
        assert state["progress"]["status"] == "done"
        assert app.state.finished.is_set()


def test_cli_report_audit_export_end_to_end(crowd: CrowdLedger, cli, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    result = cli("report", "--out", report_dir)
    assert result.exit_code == 0, result.stderr
    before = json.loads((report_dir / "report.json").read_text())
    assert before["summary"]["dataset_status"] == "not audited"

    result = cli("audit", "--from-truth", crowd.sample_dir / "truth.csv", "--size", "60")
    assert result.exit_code == 0, result.stderr
    assert "drew 60 of" in result.stdout
    result = cli("report", "--out", report_dir)
    assert result.exit_code == 0, result.stderr
    after = json.loads((report_dir / "report.json").read_text())
    dataset = after["precision"][-1]
    assert dataset["audited"] == 60
    assert dataset["audit_source"] == "truth"
    assert any("truth file" in note for note in after["settings"]["notes"])
    html = (report_dir / "report.html").read_text()
    assert "read from a known truth file" in html

    export_dir = tmp_path / "export"
    result = cli("export", export_dir, "--link", "--seeds", "0,1", "--test-fraction", "0.25")
    assert result.exit_code == 0, result.stderr
    sheet = json.loads((export_dir / "datasheet.json").read_text())
    assert sheet["class_names"] == ["bus", "camera", "hockey", "laptop", "soccer"]
    assert sheet["workers"] == len(crowd.workers)
    assert sheet["cost"] == after["cost"]["total"]
    assert sheet["certification"]["rows"][-1]["audited"] == 60
    assert sheet["workforce"] == "simulated workers on turk's local MTurk double"
    cells = [r for r in sheet["certification"]["rows"] if r["bucket"] != "all"]
    assert cells and {r["verified_by"] for r in cells} == {sheet["workforce"]}
    # This ledger's HITs were recorded without a language: BCP 47's "undetermined".
    assert {r["language"] for r in cells if r["accepted"]} == {"und"} == set(sheet["languages"])
    assert (export_dir / "instructions" / "bus.md").is_file()
    assert (export_dir / "training_folder/testset_ratio_0.25/split_1/2/test.txt").is_file()
    assert json.loads((export_dir / "training_folder/bucket_indices.json").read_text()) == [
        "1",
        "2",
        "3",
    ]
    assert (export_dir / "all_metadata" / "0.json").is_file()  # the reserved bucket
    assert not (export_dir / "labeled_images" / "0").exists()
    # Every exported image is an accepted one, filed under its concept.
    with Ledger(crowd.db_path) as ledger:
        chosen = crowd_results(ledger).accepted[["concept", "image_id"]]
    accepted = {(c, int(i)) for c, i in chosen.itertuples(index=False)}
    for path in (export_dir / "labeled_images").rglob("*.jpg"):
        assert (path.parent.name, int(path.stem)) in accepted
    # Rerun: nothing copied again.
    result = cli("export", export_dir, "--link", "--seeds", "0,1", "--test-fraction", "0.25")
    assert result.exit_code == 0 and "0 stale removed" in result.stdout


def test_cli_bad_input(crowd: CrowdLedger, cli, tmp_path: Path) -> None:
    result = cli("audit", "--concept", "bus", "--size", "100000")
    assert result.exit_code == 1
    assert "--size 100000: only" in result.stderr
    result = cli("audit", "--answers", tmp_path / "missing.csv")
    assert result.exit_code == 1 and "no such file" in result.stderr
    result = cli("report", "--aggregator", "oracle", "--out", tmp_path / "r")
    assert result.exit_code == 1 and "--aggregator 'oracle': unknown" in result.stderr
    result = cli("export", tmp_path / "x", "--seeds", "a,b")
    assert result.exit_code == 1 and "--seeds" in result.stderr
    result = cli("report", "--target", "mturk", "--out", tmp_path / "r")
    assert result.exit_code == 1 and "no answers from this target" in result.stderr


def test_report_before_any_answers(tmp_path: Path, cli) -> None:
    empty = build_crowd_ledger(tmp_path / "empty", n=60, collect=False)
    result = cli("--db", empty.db_path, "report", "--out", tmp_path / "r")
    assert result.exit_code == 1
    assert "no answers yet" in result.stderr and "turk collect" in result.stderr
    assert not (tmp_path / "r").exists()
    result = cli("--db", tmp_path / "nowhere.db", "report")
    assert result.exit_code == 1 and "no ledger here" in result.stderr


def test_concept_without_gold_is_reported(tmp_path: Path, cli) -> None:
    partial = build_crowd_ledger(tmp_path / "partial", n=120, concepts_with_gold=("bus",))
    result = cli("--db", partial.db_path, "report", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.stderr
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    warned = " ".join(data["warnings"])
    assert "concept camera: no gold" in warned
    assert "concept bus: no gold" not in warned


def test_audit_page_served_over_loopback(crowd: CrowdLedger) -> None:
    import threading

    from turk.dataset.audit import serve_audit

    with Ledger(crowd.db_path) as ledger:
        results = crowd_results(ledger)
        audit_id = draw_audit(ledger, results, concept="soccer", size=2)
        urls: list[str] = []
        ready = threading.Event()

        def on_ready(url: str) -> None:
            urls.append(url)
            ready.set()

        outcome: list[object] = []
        thread = threading.Thread(
            target=lambda: outcome.append(
                serve_audit(ledger, audit_id, port=0, on_ready=on_ready, linger_s=0.1)
            )
        )
        thread.start()
        assert ready.wait(10)
        assert urls[0].startswith("http://127.0.0.1:")
        page = httpx.get(urls[0], timeout=10)
        token = page.text.split('data-token="', 1)[1].split('"', 1)[0]
        for position in (0, 1):
            httpx.post(
                urls[0] + "api/mark",
                json={"position": position, "correct": True},
                headers={"X-Audit-Token": token},
                timeout=10,
            ).raise_for_status()
        thread.join(15)
        assert not thread.is_alive()
        assert outcome[0].status == "done"  # type: ignore[attr-defined]
