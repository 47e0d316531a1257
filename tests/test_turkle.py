"""The ``turkle`` target beyond the crowd contract: a real Turkle server on loopback.

Answers in other scripts arrive whole (Turkle 3.1 counts its CSV's length in
characters), hostile metadata stays text in Turkle's own page in a real browser, and
``turk run`` on a sample project verifies and exports a dataset with simulated annotators
working in Turkle's pages, with nobody paid and the token nowhere in the ledger.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.fixtures.project import edit_yaml, free_port
from tests.fixtures.templates import seed_candidates
from tests.fixtures.turkle import WORKER_PASSWORD, turkle_enrol, turkle_submit
from turk.crowd.answers import read_fields
from turk.crowd.backend import HitTypeSpec
from turk.crowd.publish import hit_page
from turk.crowd.turkle import connect_turkle
from turk.crowd.turkle_server import TurkleServer
from turk.hits.plan import plan_hits
from turk.hits.render import write_media
from turk.ledger import Ledger

pytestmark = pytest.mark.xdist_group("turkle")


def _spec(title: str) -> HitTypeSpec:
    return HitTypeSpec(
        title=title,
        description="Turkle test HIT.",
        keywords="test",
        reward=Decimal("0.05"),
        assignment_duration_s=600,
        auto_approval_delay_s=3600,
    )


def test_answers_in_other_scripts_arrive_whole(turkle_server: TurkleServer) -> None:
    from tests.test_crowd_contract import PAGE

    run = uuid.uuid4().hex[:8]
    backend = connect_turkle(turkle_server.url, turkle_server.token(), timeout=10.0)
    hit_id = backend.create_hit(
        hit_type_id=backend.create_hit_type(_spec(f"Überprüfung café {run}")),
        question_xml="",
        max_assignments=2,
        lifetime_s=3600,
        annotation=f"turk:unicode-{run}:1",
        token=f"{run}-unicode",
        page=PAGE,
    ).hit_id
    submit = turkle_submit(turkle_server)
    submit(hit_id, "AWORKERUNI1", {"item-0": "ja ñ 日本"})
    submit(hit_id, "AWORKERUNI2", {"item-0": "no"})
    listed = {a.worker_id: a for a in backend.list_assignments(hit_id)}
    assert set(listed) == {"AWORKERUNI1", "AWORKERUNI2"}
    assert read_fields(listed["AWORKERUNI1"].answer_xml) == [("item-0", "ja ñ 日本")]
    assert read_fields(listed["AWORKERUNI2"].answer_xml) == [("item-0", "no")]
    # The connection was not left with stray bytes: the next call reads cleanly.
    assert backend.get_hit(hit_id).finished_work == 2


def test_a_hit_without_its_page_is_refused(turkle_server: TurkleServer) -> None:
    from turk.errors import CrowdError

    backend = connect_turkle(turkle_server.url, turkle_server.token(), timeout=10.0)
    with pytest.raises(CrowdError, match="batch-template page"):
        backend.create_hit(
            hit_type_id=backend.create_hit_type(_spec("no page")),
            question_xml="<HTMLQuestion/>",
            max_assignments=1,
            lifetime_s=60,
            annotation="turk:nopage:1",
            token=uuid.uuid4().hex,
        )


@pytest.mark.browser
def test_hostile_metadata_stays_text_in_turkles_page(
    page, tmp_path: Path, turkle_server: TurkleServer
) -> None:
    concept = "<script>window.pwned=1 ${image_url_0}"
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "ex.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / f"{concept}.md").write_text(
        "---\n"
        f"concept: '{concept}'\n"
        "definition: 'A <img src=x onerror=\"window.pwned=2\"> thing ${image_url_1}'\n"
        "counts: ['<b>bold?</b>']\n"
        "examples:\n  positive: [{image: ex.svg, caption: '<script>window.pwned=3</script>'}]\n"
        "---\n"
        "Body <script>window.pwned=4</script> **strong**\n"
    )
    run = uuid.uuid4().hex[:8]
    with Ledger(tmp_path / "x.db") as ledger:
        cl = seed_candidates(ledger, tmp_path / "images", concepts=[concept], buckets=[1])
        plan = plan_hits(
            cl.ledger,
            task="binary",
            items_per_hit=3,
            image_base_url=f"{turkle_server.url}/media/{run}%26x/",
            instruction_set=folder,
        )[0]
    media = turkle_server.media_dir
    assert media is not None
    write_media([plan], media / f"{run}&x")
    backend = connect_turkle(turkle_server.url, turkle_server.token(), timeout=10.0)
    hit_id = backend.create_hit(
        hit_type_id=backend.create_hit_type(_spec(f"hostile {run}")),
        question_xml=plan.question_xml,
        max_assignments=1,
        lifetime_s=3600,
        annotation=f"turk:hostile-{run}:1",
        token=f"{run}-hostile",
        page=hit_page(plan),
    ).hit_id
    worker = f"AHOSTILE{run.upper()}"
    turkle_enrol(turkle_server)(worker)

    page.goto(f"{turkle_server.url}/login/")
    page.fill("#username", worker)
    page.fill("#password", WORKER_PASSWORD)
    page.locator("form[action='/login/'] button").click()
    page.goto(f"{turkle_server.url}/batch/{hit_id}/accept_next_task/")
    assert "/assignment/" in page.url
    frame = page.frame_locator("iframe").first
    body = frame.locator("body")
    body.wait_for()
    text = body.inner_text()
    inner = page.frames[1]
    assert inner.evaluate("() => window.pwned") is None
    assert page.evaluate("() => window.pwned") is None
    assert frame.locator("img[onerror]").count() == 0
    assert "<script>window.pwned=1 ${image_url_0}" in text
    assert '<img src=x onerror="window.pwned=2"> thing ${image_url_1}' in text
    assert "<script>window.pwned=3</script>" in text
    # Every item's image loads from the escaped URL (the & in the folder survived).
    sources = frame.locator("[data-item] img").evaluate_all("els => els.map(e => e.src)")
    assert len(sources) == len(plan.items) and all(f"{run}%26x/" in s for s in sources)
    loaded = frame.locator("[data-item] img").evaluate_all(
        "els => els.every(e => e.complete && e.naturalWidth > 0)"
    )
    assert loaded
    frame.locator("[data-item='item-0']").focus()
    for _ in plan.items:
        page.keyboard.press("y")
    frame.locator("[type=submit]").first.click()
    page.wait_for_url(f"{turkle_server.url}/")
    (assignment,) = list(backend.list_assignments(hit_id))
    answers = dict(read_fields(assignment.answer_xml))
    assert assignment.worker_id == worker
    assert all(answers.get(item.field) == "yes" for item in plan.items)


@pytest.mark.slow
def test_turkle_run_verifies_and_exports_with_annotators_in_turkles_pages(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from turk.project.scaffold import init_project

    folder = tmp_path / "project"
    init_project(folder, from_sample=True, n=150, image_size=(96, 72))
    server = TurkleServer(tmp_path / "turkle", port=free_port(), media_dir=folder / "media")
    server.start()
    try:
        config = folder / "turk.yaml"
        edit_yaml(config, "crowd.target", "turkle")
        edit_yaml(config, "crowd.endpoint", None)
        edit_yaml(config, "crowd.turkle", {"url": server.url, "token_env": "LAB_TURKLE_TOKEN"})
        token = server.token()
        monkeypatch.setenv("LAB_TURKLE_TOKEN", token)
        monkeypatch.chdir(folder)
        result = cli("run", "--yes")
        assert result.exit_code == 0, result.stderr
        text = result.stdout
        assert "export (done)" in text and "simulated workers submitted" in text
        assert "not paid through turk" in text
        assert not re.search(r"\$\d", text), "an amount shown for an unpaid target"
        assert (folder / "dataset" / "class_names.txt").is_file()
        report = (folder / "report" / "report.html").read_text(encoding="utf-8")
        assert "nobody is paid through turk" in report and "USD" not in report
        assert '<td class="text">an in-house team on Turkle</td>' in report
        sheet = (folder / "dataset" / "datasheet.md").read_text(encoding="utf-8")
        assert "- verified by: an in-house team on Turkle" in sheet
        assert re.search(r"- HIT pages' language .*: en \(\d+ cells\)", sheet)
        db = folder / "turk.db"
        status = cli("--db", db, "status", "--cells")
        assert status.exit_code == 0, status.stderr
        assert "not paid through turk" in status.stdout
        assert not re.search(r"\$\d", status.stdout)  # no amount anywhere, cells included
        with sqlite3.connect(folder / "turk.db") as conn:
            workers = {r[0] for r in conn.execute("SELECT worker_id FROM assignments")}
            decided = conn.execute(
                "SELECT COUNT(*) FROM assignments WHERE status IN ('Approved', 'Rejected')"
            ).fetchone()[0]
            approvals = conn.execute(
                "SELECT COUNT(*) FROM actions WHERE kind='approve' AND status='done'"
            ).fetchone()[0]
        assert workers == {f"ASIM0W{i:04d}" for i in range(10)}
        assert decided > 0 and approvals > 0
        # Decisions are the ledger's: a second collect does not undo them.
        monkeypatch.setenv("TURKLE_TOKEN", token)
        again = cli("--db", db, "collect", "--target", "turkle", "--endpoint-url", server.url)
        assert again.exit_code == 0, again.stderr
        with sqlite3.connect(folder / "turk.db") as conn:
            assert (
                conn.execute(
                    "SELECT COUNT(*) FROM assignments WHERE status IN ('Approved', 'Rejected')"
                ).fetchone()[0]
                == decided
            )
        assert token.encode() not in (folder / "turk.db").read_bytes()
        # The annotators' pages are Turkle's: the server lists the work as its own.
        api = httpx.get(
            f"{server.url}/api/batches/", headers={"Authorization": f"Token {token}"}
        ).json()
        assert api and all(b["completed"] for b in api)
    finally:
        server.stop()


def test_turkle_serve_prints_where_the_secrets_are_never_the_token(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from turk.crowd.local import listening

    port = free_port()
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "turk", "turkle", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--state", str(state), "--media", str(tmp_path / "media")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text, text
        token = (state / "token").read_text(encoding="utf-8").strip()
        password = (state / "admin-password").read_text(encoding="utf-8").strip()
        assert token not in text and password not in text
        assert str(state / "token") in text and "TURKLE_TOKEN" in text
        for secret in ("token", "admin-password", "secret_key"):
            assert (state / secret).stat().st_mode & 0o077 == 0, secret
        backend = connect_turkle(f"http://127.0.0.1:{port}", token, timeout=10.0)
        assert backend.balance() is None
        (tmp_path / "media" / "a.txt").write_text("served")
        assert httpx.get(f"http://127.0.0.1:{port}/media/a.txt").text == "served"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    deadline = time.monotonic() + 10
    while listening("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listening("127.0.0.1", port), "the Turkle server outlived 'turk turkle serve'"


def test_turkle_settings_are_checked_where_they_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from turk.crowd.targets import open_backend
    from turk.crowd.turkle import turkle_token
    from turk.errors import ConfigError
    from turk.project.config import load_project
    from turk.project.scaffold import init_project

    folder = tmp_path / "p"
    init_project(folder, from_sample=True, n=120, image_size=(48, 36))
    config = folder / "turk.yaml"
    edit_yaml(config, "crowd.target", "turkle")
    edit_yaml(config, "crowd.endpoint", None)
    with pytest.raises(ConfigError, match=r"crowd\.turkle\.url"):
        load_project(config)
    edit_yaml(config, "crowd.turkle", {"url": "http://127.0.0.1:9", "token_env": "LAB_TOKEN"})
    loaded = load_project(config)  # simulated workers are allowed on Turkle
    assert loaded.crowd.endpoint == "http://127.0.0.1:9" and loaded.crowd.token_env == "LAB_TOKEN"
    assert loaded.crowd.simulated_workers is not None
    monkeypatch.delenv("LAB_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="LAB_TOKEN holds no Turkle API token"):
        open_backend("turkle", endpoint_url=loaded.crowd.endpoint, token_env="LAB_TOKEN")
    monkeypatch.setenv("LAB_TOKEN", " abc ")
    assert turkle_token("LAB_TOKEN") == "abc"
    edit_yaml(config, "crowd.target", "local")
    with pytest.raises(ConfigError, match="only means something for target turkle"):
        load_project(config)


def test_extend_on_turkle_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    from turk.crowd.review import ReviewOptions, review
    from turk.errors import ConfigError
    from turk.ledger import Ledger
    from turk.project.config import load_project
    from turk.project.scaffold import init_project

    folder = tmp_path / "p"
    init_project(folder, from_sample=True, n=120, image_size=(48, 36))
    config = folder / "turk.yaml"
    edit_yaml(config, "crowd.target", "turkle")
    edit_yaml(config, "crowd.endpoint", None)
    edit_yaml(config, "crowd.turkle", {"url": "http://127.0.0.1:9"})
    edit_yaml(config, "review.extend", True)
    with pytest.raises(ConfigError, match=r"line \d+: review\.extend: target turkle cannot add"):
        load_project(config)
    # Nothing listens on port 9: any request would fail; the refusal comes first.
    backend = connect_turkle("http://127.0.0.1:9", "token", timeout=1.0)
    with (
        Ledger(tmp_path / "turk.db") as ledger,
        pytest.raises(ConfigError, match="--extend: target turkle cannot add"),
    ):
        review(ledger, backend, ReviewOptions(approve_all=True, extend=True))
    assert not backend.stats.calls
