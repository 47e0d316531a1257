"""The report and the audit page in headless Chromium."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from analysis.report import ReportSettings, build_report, write_report
from retrieval.collection import YFCC_TEXT_FIELDS
from tests.crowd_ledger import CrowdLedger, build_crowd_ledger
from tests.test_report import HOSTILE, _audit_all, _verified
from turk.dataset.audit import audit_items, audit_progress, draw_audit, serve_audit
from turk.dataset.results import crowd_results
from turk.ledger import Ledger

pytestmark = pytest.mark.browser


def _watch(page) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    seen: dict[str, list[str]] = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    return seen


def test_report_renders_plots_offline_and_escapes_worker_text(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    items, answers = _verified()
    answers.loc[0, "label"] = "yes"
    workers = answers.groupby("worker").size().rename("answers").reset_index()
    workers["accuracy"] = [0.5 + 0.05 * i for i in range(len(workers))]
    report = build_report(
        items,
        answers,
        workers=workers,
        audits=_audit_all(items, wrong=1),
        settings=ReportSettings(title="Sample report", notes=(f"note {HOSTILE}",)),
    )
    files = write_report(report, tmp_path / "report")
    seen = _watch(page)
    page.goto(files.html.as_uri())
    page.wait_for_load_state("load")
    assert seen["errors"] == []
    assert seen["dialogs"] == []
    assert seen["requests"] == [files.html.as_uri()]  # nothing fetched beyond the file
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    plots = page.locator("svg.plot")
    assert plots.count() == 4
    for i in range(4):
        box = plots.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
    assert page.locator("svg.precision-plot circle.point").count() > 0
    assert page.locator("svg.workers-plot rect.bar").count() == 10
    assert page.locator("svg.rank-plot polyline.series").count() == 2
    # No legend entry overlaps its chart's title (they sit on rows of their own).
    overlaps = page.evaluate(
        """() => [...document.querySelectorAll('svg.plot')].flatMap(svg => {
            const t = svg.querySelector('text.plot-title').getBoundingClientRect();
            return [...svg.querySelectorAll('text.legend')].filter(l => {
                const b = l.getBoundingClientRect();
                return b.left < t.right && t.left < b.right && b.top < t.bottom && t.top < b.bottom;
            }).map(l => l.textContent);
        })"""
    )
    assert overlaps == []
    body = page.inner_text("body")
    assert HOSTILE in body  # shown as text, never run
    assert page.locator("table.workers-table td", has_text=HOSTILE).count() == 1
    assert "whole dataset" in page.inner_text("#claims")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> CrowdLedger:
    return build_crowd_ledger(tmp_path_factory.mktemp("crowd-browser"))


def test_audit_page_marks_by_click_and_keyboard(page, built: CrowdLedger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "turk.db"
    shutil.copyfile(built.db_path, db)
    with Ledger(db) as ledger:
        results = crowd_results(ledger)
        audit_id = draw_audit(ledger, results, concept="bus", size=4, seed=1)
        first = audit_items(ledger, audit_id).iloc[0]
        hostile_title = "<img src=x onerror=alert(1)>"
        # Metadata is stored as distributed (URL-encoded): put the hostile title there.
        (stored,) = ledger.conn.execute(
            "SELECT yfcc_fields FROM images WHERE id = ?", (int(first.image_id),)
        ).fetchone()
        fields = stored.split("\t")
        fields[YFCC_TEXT_FIELDS.index("title")] = quote_plus(hostile_title)
        with ledger.conn:
            ledger.conn.execute(
                "UPDATE images SET yfcc_fields = ? WHERE id = ?",
                ("\t".join(fields), int(first.image_id)),
            )
        ready = threading.Event()
        urls: list[str] = []
        thread = threading.Thread(
            target=serve_audit,
            args=(ledger, audit_id),
            kwargs={
                "port": 0,
                "on_ready": lambda url: (urls.append(url), ready.set()),
                "linger_s": 1.0,
            },
        )
        thread.start()
        assert ready.wait(10)
        seen = _watch(page)
        page.goto(urls[0])
        page.wait_for_function(
            "document.getElementById('photo') && document.getElementById('photo').naturalWidth > 0"
        )
        assert page.inner_text("#concept") == "bus"
        assert hostile_title in page.inner_text("#caption")
        page.click("#right")  # item 0: right, by click
        page.wait_for_function(
            "document.getElementById('caption').textContent.startsWith('item 2 ')"
        )
        page.keyboard.press("n")  # item 1: wrong, by key
        page.wait_for_function(
            "document.getElementById('caption').textContent.startsWith('item 3 ')"
        )
        page.keyboard.press("u")  # back to item 1, which shows its verdict
        page.wait_for_function("document.getElementById('previous').textContent.includes('wrong')")
        page.keyboard.press("y")  # change item 1 to right
        page.wait_for_function(
            "document.getElementById('caption').textContent.startsWith('item 3 ')"
        )
        page.click("#wrong")  # item 2
        page.wait_for_function(
            "document.getElementById('caption').textContent.startsWith('item 4 ')"
        )
        page.keyboard.press("1")  # item 3
        page.wait_for_selector("#done", state="visible")
        assert "Audit complete: 4 item(s) marked, 1 wrong" in page.inner_text("#done")
        thread.join(15)
        assert not thread.is_alive()
        verdicts = audit_items(ledger, audit_id)["correct"].tolist()
        assert verdicts == [1, 1, 0, 1]
        assert audit_progress(ledger, audit_id).status == "done"
        assert seen["errors"] == [] and seen["dialogs"] == []
