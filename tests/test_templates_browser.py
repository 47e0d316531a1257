"""HIT pages in headless Chromium: answer by click and by keyboard, submit, preview, escaping."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.fixtures.templates import CandidateLedger, HitPageServer, seed_candidates
from turk.hits.plan import HitPlan, plan_hits
from turk.hits.render import write_media
from turk.ledger import Ledger

pytestmark = pytest.mark.browser


def _plans(
    cl: CandidateLedger, server: HitPageServer, task: str, language: str = "en"
) -> list[HitPlan]:
    plans = plan_hits(
        cl.ledger,
        task=task,
        items_per_hit=6,
        gold=cl.gold,
        gold_rate=0.2,
        image_base_url=f"{server.url}/media",
        language=language,
    )
    write_media(plans, server.media_dir)
    return plans


def _open(page, server: HitPageServer, plan: HitPlan, assignment: str | None) -> None:
    url = server.add_page(f"{plan.hit_key}.html", plan.html)
    query = f"?hitId=HIT1&workerId=W1&turkSubmitTo={quote(server.url, safe='')}"
    if assignment is not None:
        query += f"&assignmentId={assignment}"
    page.goto(url + query)


def _posted(server: HitPageServer) -> dict[str, str]:
    assert server.posted.wait(10), "the form posted nothing"
    return dict(server.posts[-1])


def test_binary_answer_by_clicking_and_submit(page, candidate_ledger, hit_page_server) -> None:
    plan = _plans(candidate_ledger, hit_page_server, "binary")[0]
    _open(page, hit_page_server, plan, "A1")
    submit = page.locator("button[type=submit]")
    images = page.locator("[data-item] img")
    assert images.count() == len(plan.items)
    widths = [images.nth(i).evaluate("img => img.naturalWidth") for i in range(images.count())]
    assert min(widths) > 0
    answers = {}
    for n, item in enumerate(plan.items):
        assert submit.is_disabled()
        value = "yes" if n % 3 else "no"
        page.locator(f"[data-item='{item.field}'] input[value='{value}']").check()
        answers[item.field] = value
    assert submit.is_enabled()
    submit.click()
    posted = _posted(hit_page_server)
    assert posted == {"assignmentId": "A1", **answers}


def test_binary_answer_by_keyboard(page, candidate_ledger, hit_page_server) -> None:
    plan = _plans(candidate_ledger, hit_page_server, "binary")[0]
    _open(page, hit_page_server, plan, "A2")
    page.locator("[data-item='item-0']").focus()
    keys = ["y", "n", "1", "2", "y", "n"][: len(plan.items)]
    for key in keys:
        page.keyboard.press(key)
    # the cursor stays on the last item; go back two items and change that answer
    page.keyboard.press("k")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("y")
    page.keyboard.press("j")
    expected = {"y": "yes", "1": "yes", "n": "no", "2": "no"}
    answers = {f"item-{i}": expected[k] for i, k in enumerate(keys)}
    answers[f"item-{len(keys) - 3}"] = "yes"
    assert page.locator("[data-status]").inner_text().startswith(f"{len(keys)} of {len(keys)}")
    page.locator("button[type=submit]").click()
    assert _posted(hit_page_server) == {"assignmentId": "A2", **answers}


def test_multi_select_by_click_and_keyboard(page, candidate_ledger, hit_page_server) -> None:
    plan = _plans(candidate_ledger, hit_page_server, "multi")[0]
    assert plan.classes == ("bus", "camera")
    _open(page, hit_page_server, plan, "A3")
    submit = page.locator("button[type=submit]")
    item0 = page.locator("[data-item='item-0']")
    item0.locator("input[data-class='bus']").check()
    item0.locator("input[data-class='camera']").check()
    item1 = page.locator("[data-item='item-1']")
    item1.locator("input[data-class='bus']").check()
    item1.locator("input[data-class='']").check()  # none clears the classes
    assert not item1.locator("input[data-class='bus']").is_checked()
    page.locator("[data-item='item-2']").focus()
    page.keyboard.press("2")  # camera
    page.keyboard.press("j")
    page.keyboard.press("1")  # bus
    page.keyboard.press("2")  # camera
    page.keyboard.press("1")  # bus off again
    page.keyboard.press("ArrowDown")
    answers = {"item-0": "bus|camera", "item-1": "none", "item-2": "camera", "item-3": "camera"}
    for n in range(4, len(plan.items)):
        assert submit.is_disabled()
        page.keyboard.press("0")
        page.keyboard.press("j")
        answers[f"item-{n}"] = "none"
    assert submit.is_enabled()
    submit.click()
    assert _posted(hit_page_server) == {"assignmentId": "A3", **answers}


def test_preview_cannot_answer_or_submit(page, candidate_ledger, hit_page_server) -> None:
    plan = _plans(candidate_ledger, hit_page_server, "binary")[0]
    _open(page, hit_page_server, plan, "ASSIGNMENT_ID_NOT_AVAILABLE")
    assert "Preview" in page.locator("[data-banner]").inner_text()
    assert page.locator("[data-item] input:not([disabled])").count() == 0
    page.locator("[data-item='item-0']").focus()
    for _ in plan.items:
        page.keyboard.press("y")
    assert page.locator("input:checked").count() == 0
    # even a program forcing every answer and a submit gets nothing posted
    page.evaluate(
        "() => { document.querySelectorAll('input[value=yes]').forEach(i => {"
        " i.disabled = false; i.checked = true; i.dispatchEvent(new Event('change',"
        " {bubbles: true})); }); document.getElementById('turk-form').requestSubmit(); }"
    )
    assert page.locator("button[type=submit]").is_disabled()
    assert not hit_page_server.posted.wait(1.0)


def test_outside_a_hit_answers_but_cannot_submit(page, candidate_ledger, hit_page_server) -> None:
    plan = _plans(candidate_ledger, hit_page_server, "binary")[0]
    _open(page, hit_page_server, plan, None)
    page.locator("[data-item='item-0']").focus()
    for _ in plan.items:
        page.keyboard.press("n")
    assert page.locator("input[value=no]:checked").count() == len(plan.items)
    assert page.locator("button[type=submit]").is_disabled()


def test_script_in_concept_and_instructions_shows_as_text(page, tmp_path, hit_page_server) -> None:
    concept = "<script>window.pwned=1"
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "ex.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / f"{concept}.md").write_text(
        "---\n"
        f"concept: '{concept}'\n"
        "definition: 'A <img src=x onerror=\"window.pwned=2\"> thing'\n"
        "counts: ['<b>bold?</b>']\n"
        "examples:\n  positive: [{image: ex.svg, caption: '<script>window.pwned=3</script>'}]\n"
        "---\n"
        "Body <script>window.pwned=4</script> **strong**\n"
    )
    with Ledger(tmp_path / "x.db") as ledger:
        cl = seed_candidates(ledger, tmp_path / "images", concepts=[concept], buckets=[1])
        for task in ("binary", "multi"):
            plan = plan_hits(
                cl.ledger,
                task=task,
                items_per_hit=4,
                image_base_url=f"{hit_page_server.url}/media",
                instruction_set=folder,
            )[0]
            write_media([plan], hit_page_server.media_dir)
            _open(page, hit_page_server, plan, "A9")
            assert page.evaluate("() => window.pwned") is None
            assert page.locator("script").count() == 1
            assert page.locator("img[onerror]").count() == 0
            text = page.locator("body").inner_text()
            assert concept in text
            assert "<script>window.pwned=3</script>" in text
            assert '<img src=x onerror="window.pwned=2">' in text
            if task == "binary":  # the multi-select page words the rule for its checkboxes
                assert "<script>window.pwned=4</script>" in text
                assert page.locator("strong", has_text="strong").count() == 1
            root = page.locator("#turk-form")
            attr = "data-concept" if task == "binary" else "data-classes"
            assert root.get_attribute(attr) == concept


def test_fragment_works_inside_a_host_form(page, candidate_ledger, hit_page_server) -> None:
    plan = _plans(candidate_ledger, hit_page_server, "binary")[0]
    host = (
        "<!DOCTYPE html><html><body><form method='post' action='/mturk/externalSubmit'>"
        "<input type='hidden' name='assignmentId' value='HOST'>"
        f"{plan.fragment}<button type='submit'>Send</button></form></body></html>"
    )
    url = hit_page_server.add_page("host.html", host)
    page.goto(url)
    assert page.locator("[data-turk-root][data-task='binary']").count() == 1
    send = page.locator("button[type=submit]")
    page.locator("[data-item='item-0']").focus()
    for _ in plan.items:
        assert send.is_disabled()
        page.keyboard.press("y")
    assert send.is_enabled()
    send.click()
    posted = _posted(hit_page_server)
    assert posted == {"assignmentId": "HOST", **{i.field: "yes" for i in plan.items}}


def _chinese_set(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ex.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    for concept, name in (("bus", "公共汽车"), ("camera", "相机")):
        (folder / f"{concept}.md").write_text(
            "---\n"
            f"concept: {concept}\n"
            f"definition: 一种{name}。\n"
            f"counts: [街上的{name}]\n"
            "examples:\n  positive: [{image: ex.svg, caption: 示例图片}]\n"
            "---\n"
            f"只有图片中出现{name}时才回答**是**。\n",
            encoding="utf-8",
        )
    return folder


def test_chinese_hit_renders_answers_by_keyboard_and_submits(
    page, candidate_ledger, hit_page_server, tmp_path
) -> None:
    plans = plan_hits(
        candidate_ledger.ledger,
        items_per_hit=6,
        gold=candidate_ledger.gold,
        gold_rate=0.2,
        image_base_url=f"{hit_page_server.url}/media",
        instruction_set=_chinese_set(tmp_path / "zh"),
        language="zh-Hans",
    )
    write_media(plans, hit_page_server.media_dir)
    plan = plans[0]
    _open(page, hit_page_server, plan, "A7")
    assert page.evaluate("() => document.documentElement.lang") == "zh-Hans"
    assert page.title() == "bus：每张图片回答是或否"
    assert (
        page.locator(".turk-question").inner_text()
        == "每张图片：是否显示了bus？回答所有图片后提交。"
    )
    assert page.locator(".turk-keys").inner_text().startswith("按键：y/1 是，n/2 否")
    assert page.locator("summary").inner_text() == "说明"
    assert "只有图片中出现公共汽车时才回答是。" in page.locator(".turk-concept").inner_text()
    first = page.locator("[data-item='item-0'] label")
    assert [first.nth(i).inner_text().strip() for i in range(2)] == ["是", "否"]
    submit = page.locator("button[type=submit]")
    assert submit.inner_text() == "提交" and submit.is_disabled()
    n = len(plan.items)
    status = page.locator("[data-status]")
    assert status.inner_text() == f"已回答 0 / {n}；回答所有图片后才能提交"
    page.locator("[data-item='item-0']").focus()
    keys = ["y", "n", "1", "2", "y", "n"][:n]
    for key in keys:
        page.keyboard.press(key)
    assert status.inner_text() == f"已回答 {n} / {n}"
    # no script error (the browser's own favicon request may 404)
    assert [e for e in page.console_errors if "Failed to load resource" not in e] == []
    images = page.locator("[data-item] img")
    assert min(images.nth(i).evaluate("i => i.naturalWidth") for i in range(n)) > 0
    submit.click()
    expected = {"y": "yes", "1": "yes", "n": "no", "2": "no"}
    answers = {f"item-{i}": expected[k] for i, k in enumerate(keys)}
    assert _posted(hit_page_server) == {"assignmentId": "A7", **answers}


def test_chinese_preview_says_so_in_chinese(page, candidate_ledger, hit_page_server) -> None:
    plan = _plans(candidate_ledger, hit_page_server, "multi", language="zh-Hans")[0]
    _open(page, hit_page_server, plan, "ASSIGNMENT_ID_NOT_AVAILABLE")
    assert page.locator("[data-banner]").inner_text() == "预览：接受此任务后才能作答和提交。"
    assert page.locator("[data-item] input[type=checkbox]:not([disabled])").count() == 0
    assert "以上都不是" in page.locator("[data-item='item-0']").inner_text()
