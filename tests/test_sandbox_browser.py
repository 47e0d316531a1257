"""A worker in headless Chromium: list, preview, accept, answer in the iframe, submit."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlparse

import pytest

from tests.fixtures.sandbox import contract_page, html_question

pytestmark = pytest.mark.browser


def _png(color):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_worker_answers_in_the_iframe_and_requester_sees_it(page, sandbox_server, mturk_client):
    for name, color in (("a1", "red"), ("b2", "blue")):
        (sandbox_server.media_dir / f"{name}.png").write_bytes(_png(color))
    urls = [f"{sandbox_server.media_url}/a1.png", f"{sandbox_server.media_url}/b2.png"]
    client = mturk_client()
    hit_id = client.create_hit(
        Title="Is it a bus?",
        Description="Answer yes or no for each image",
        Reward="0.05",
        AssignmentDurationInSeconds=600,
        LifetimeInSeconds=600,
        MaxAssignments=1,
        Question=html_question(contract_page(urls, concept="bus"), frame_height=400),
    )["HIT"]["HITId"]

    page.goto(f"{sandbox_server.url}/worker?workerId=ABROWSER1")
    page.click(f"tr[data-hit-id='{hit_id}'] a.preview")
    preview_src = page.get_attribute("iframe#question", "src")
    assert parse_qs(urlparse(preview_src).query)["assignmentId"] == ["ASSIGNMENT_ID_NOT_AVAILABLE"]
    frame = page.frame_locator("iframe#question")
    assert frame.locator("#submit").is_disabled()

    page.click("#accept")
    work_src = page.get_attribute("iframe#question", "src")
    query = parse_qs(urlparse(work_src).query)
    assert query["hitId"] == [hit_id] and query["workerId"] == ["ABROWSER1"]
    assert query["turkSubmitTo"] == [sandbox_server.url]
    assignment_id = query["assignmentId"][0]
    frame = page.frame_locator("iframe#question")
    assert frame.locator("img").first.evaluate("img => img.naturalWidth") == 16
    frame.locator("input[name='item-0'][value='yes']").check()
    frame.locator("input[name='item-1'][value='no']").check()
    frame.locator("#submit").click()
    # The thank-you is the HIT list itself, in the whole window, not inside the HIT's frame.
    page.wait_for_url("**/worker?*submitted=*")
    assert page.locator("iframe#question").count() == 0
    assert f"HIT {hit_id} were submitted" in page.locator("#message").inner_text()
    assert page.locator(f"tr[data-hit-id='{hit_id}']").count() == 0  # done: no longer listed

    assignments = client.list_assignments_for_hit(HITId=hit_id)["Assignments"]
    assert [a["AssignmentId"] for a in assignments] == [assignment_id]
    answer = assignments[0]["Answer"]
    assert "<QuestionIdentifier>item-0</QuestionIdentifier><FreeText>yes</FreeText>" in answer
    assert "<QuestionIdentifier>item-1</QuestionIdentifier><FreeText>no</FreeText>" in answer
    assert assignments[0]["WorkerId"] == "ABROWSER1"
