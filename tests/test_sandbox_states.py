"""HIT and assignment states in the sandbox: expiry, deadlines, auto-approval, enforcement."""

from __future__ import annotations

import time

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.sandbox import accept_hit, contract_page, html_question, submit_work

QUESTION = html_question(contract_page(["/media/a.jpg"], concept="bus"))
LOCALE = "00000000000000000071"
APPROVAL_RATE = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"


def _hit(client, max_assignments=2, delay=3600, duration=600, requirements=None):
    type_id = client.create_hit_type(
        Title="t",
        Description="d",
        Reward="0.10",
        AssignmentDurationInSeconds=duration,
        AutoApprovalDelayInSeconds=delay,
        QualificationRequirements=requirements or [],
    )["HITTypeId"]
    return client.create_hit_with_hit_type(
        HITTypeId=type_id, MaxAssignments=max_assignments, LifetimeInSeconds=3600, Question=QUESTION
    )["HIT"]["HITId"]


def _status(client, hit_id):
    return client.get_hit(HITId=hit_id)["HIT"]["HITStatus"]


def _accept_status(url, hit_id, worker_id):
    return httpx.post(
        f"{url}/worker/hits/{hit_id}/accept", params={"workerId": worker_id}
    ).status_code


def test_assignable_unassignable_reviewable(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client, max_assignments=1)
    assert _status(client, hit_id) == "Assignable"
    assignment = accept_hit(sandbox_server.url, hit_id, "AW1")
    hit = client.get_hit(HITId=hit_id)["HIT"]
    assert hit["HITStatus"] == "Unassignable"
    assert (hit["NumberOfAssignmentsPending"], hit["NumberOfAssignmentsAvailable"]) == (1, 0)
    assert client.list_assignments_for_hit(HITId=hit_id)["NumResults"] == 0  # not submitted yet
    response = httpx.post(
        f"{sandbox_server.url}/mturk/externalSubmit",
        data={"assignmentId": assignment, "workerId": "AW1", "item-0": "no"},
    )
    assert response.status_code == 200
    assert _status(client, hit_id) == "Reviewable"
    client.approve_assignment(AssignmentId=assignment)
    hit = client.get_hit(HITId=hit_id)["HIT"]
    assert hit["NumberOfAssignmentsCompleted"] == 1 and hit["HITStatus"] == "Reviewable"


def test_second_submit_is_refused_and_changes_nothing(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client)
    assignment = submit_work(sandbox_server.url, hit_id, "AW1", {"item-0": "yes"})
    again = httpx.post(
        f"{sandbox_server.url}/mturk/externalSubmit",
        data={"assignmentId": assignment, "workerId": "AW1", "item-0": "no"},
    )
    assert again.status_code == 409 and "already been submitted" in again.text
    answer = client.get_assignment(AssignmentId=assignment)["Assignment"]["Answer"]
    assert "<FreeText>yes</FreeText>" in answer and "<FreeText>no</FreeText>" not in answer
    preview = httpx.post(
        f"{sandbox_server.url}/mturk/externalSubmit",
        data={"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "item-0": "no"},
    )
    assert preview.status_code == 400
    # the same worker cannot take the same HIT twice
    assert _accept_status(sandbox_server.url, hit_id, "AW1") == 409


def test_expiry_by_update_expiration(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client)
    client.update_expiration_for_hit(HITId=hit_id, ExpireAt=0)
    assert _status(client, hit_id) == "Reviewable"
    assert _accept_status(sandbox_server.url, hit_id, "AW1") == 409
    worker_page = httpx.get(f"{sandbox_server.url}/worker", params={"workerId": "AW1"}).text
    assert hit_id not in worker_page
    future = time.time() + 7200
    client.update_expiration_for_hit(HITId=hit_id, ExpireAt=future)
    assert _status(client, hit_id) == "Assignable"


def test_expired_hit_with_work_in_progress_is_unassignable(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client)
    assignment = accept_hit(sandbox_server.url, hit_id, "AW1")
    client.update_expiration_for_hit(HITId=hit_id, ExpireAt=0)
    assert _status(client, hit_id) == "Unassignable"
    # accepted work may still be submitted before its own deadline
    response = httpx.post(
        f"{sandbox_server.url}/mturk/externalSubmit",
        data={"assignmentId": assignment, "workerId": "AW1", "item-0": "yes"},
    )
    assert response.status_code == 200
    assert _status(client, hit_id) == "Reviewable"


def test_assignment_deadline_abandons_work(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client, max_assignments=1, duration=60)
    assignment = accept_hit(sandbox_server.url, hit_id, "AW1")
    assert _status(client, hit_id) == "Unassignable"
    sandbox_server.advance_clock(61)
    hit = client.get_hit(HITId=hit_id)["HIT"]
    assert hit["HITStatus"] == "Assignable" and hit["NumberOfAssignmentsAvailable"] == 1
    late = httpx.post(
        f"{sandbox_server.url}/mturk/externalSubmit",
        data={"assignmentId": assignment, "workerId": "AW1", "item-0": "yes"},
    )
    assert late.status_code == 409
    assert client.list_assignments_for_hit(HITId=hit_id)["NumResults"] == 0
    # the slot is free again: another worker can take it
    submit_work(sandbox_server.url, hit_id, "AW2", {"item-0": "yes"})


def test_auto_approval_after_delay_on_wall_clock(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client, delay=1)
    assignment = submit_work(sandbox_server.url, hit_id, "AW1", {"item-0": "yes"})
    assert (
        client.get_assignment(AssignmentId=assignment)["Assignment"]["AssignmentStatus"]
        == "Submitted"
    )
    time.sleep(1.2)
    got = client.get_assignment(AssignmentId=assignment)["Assignment"]
    assert got["AssignmentStatus"] == "Approved"
    assert got["ApprovalTime"] == got["AutoApprovalTime"]
    assert client.get_account_balance()["AvailableBalance"] == "9999.88"


def test_auto_approval_by_advanced_clock_and_not_twice(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client, delay=3600)
    submit_work(sandbox_server.url, hit_id, "AW1", {"item-0": "yes"})
    rejected = submit_work(sandbox_server.url, hit_id, "AW2", {"item-0": "yes"})
    client.reject_assignment(AssignmentId=rejected, RequesterFeedback="wrong")
    sandbox_server.advance_clock(3601)
    statuses = sorted(
        a["AssignmentStatus"] for a in client.list_assignments_for_hit(HITId=hit_id)["Assignments"]
    )
    assert statuses == ["Approved", "Rejected"]
    client.get_account_balance()
    assert client.get_account_balance()["AvailableBalance"] == "9999.88"


def test_block_is_enforced_on_accept(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client)
    client.create_worker_block(WorkerId="ABLOCKED", Reason="spam")
    assert _accept_status(sandbox_server.url, hit_id, "ABLOCKED") == 403
    page = httpx.get(f"{sandbox_server.url}/worker", params={"workerId": "ABLOCKED"}).text
    assert hit_id not in page
    client.delete_worker_block(WorkerId="ABLOCKED", Reason="ok")
    submit_work(sandbox_server.url, hit_id, "ABLOCKED", {"item-0": "yes"})


def test_custom_qualification_is_enforced(sandbox_server, mturk_client):
    client = mturk_client()
    qual = client.create_qualification_type(
        Name="Gold score", Description="d", QualificationTypeStatus="Active"
    )["QualificationType"]["QualificationTypeId"]
    hit_id = _hit(
        client,
        requirements=[
            {
                "QualificationTypeId": qual,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [80],
            }
        ],
    )
    response = httpx.post(
        f"{sandbox_server.url}/worker/hits/{hit_id}/accept", params={"workerId": "ANEW"}
    )
    assert response.status_code == 403 and qual in response.text
    client.associate_qualification_with_worker(
        QualificationTypeId=qual, WorkerId="ALOW", IntegerValue=50
    )
    client.associate_qualification_with_worker(
        QualificationTypeId=qual, WorkerId="AHIGH", IntegerValue=95
    )
    assert _accept_status(sandbox_server.url, hit_id, "ALOW") == 403
    submit_work(sandbox_server.url, hit_id, "AHIGH", {"item-0": "yes"})
    assert client.list_assignments_for_hit(HITId=hit_id)["NumResults"] == 1


def test_exists_and_discover_guard(sandbox_server, mturk_client):
    client = mturk_client()
    qual = client.create_qualification_type(
        Name="Invited", Description="d", QualificationTypeStatus="Active"
    )["QualificationType"]["QualificationTypeId"]
    hit_id = _hit(
        client,
        requirements=[
            {
                "QualificationTypeId": qual,
                "Comparator": "Exists",
                "ActionsGuarded": "DiscoverPreviewAndAccept",
            }
        ],
    )
    assert hit_id not in httpx.get(f"{sandbox_server.url}/worker", params={"workerId": "AOUT"}).text
    assert (
        httpx.get(
            f"{sandbox_server.url}/worker/hits/{hit_id}", params={"workerId": "AOUT"}
        ).status_code
        == 403
    )
    client.associate_qualification_with_worker(QualificationTypeId=qual, WorkerId="AIN")
    assert hit_id in httpx.get(f"{sandbox_server.url}/worker", params={"workerId": "AIN"}).text


def test_locale_requirement(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(
        client,
        requirements=[
            {
                "QualificationTypeId": LOCALE,
                "Comparator": "In",
                "LocaleValues": [{"Country": "US"}, {"Country": "CA"}],
            }
        ],
    )
    httpx.get(f"{sandbox_server.url}/worker", params={"workerId": "ADE", "locale": "DE"})
    httpx.get(f"{sandbox_server.url}/worker", params={"workerId": "ACA", "locale": "CA-QC"})
    assert _accept_status(sandbox_server.url, hit_id, "ADE") == 403
    submit_work(sandbox_server.url, hit_id, "ACA", {"item-0": "yes"})


def test_system_approval_rate_and_count(sandbox_server, mturk_client):
    client = mturk_client()
    first = _hit(client, max_assignments=3)
    good = submit_work(sandbox_server.url, first, "AGOOD", {"item-0": "yes"})
    bad = submit_work(sandbox_server.url, first, "ABAD", {"item-0": "yes"})
    client.approve_assignment(AssignmentId=good)
    client.reject_assignment(AssignmentId=bad, RequesterFeedback="wrong")
    gated = _hit(
        client,
        requirements=[
            {
                "QualificationTypeId": APPROVAL_RATE,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [95],
            },
            {
                "QualificationTypeId": NUMBER_APPROVED,
                "Comparator": "GreaterThan",
                "IntegerValues": [0],
            },
        ],
    )
    assert _accept_status(sandbox_server.url, gated, "ABAD") == 403  # 0% approved
    assert _accept_status(sandbox_server.url, gated, "ANEWCOMER") == 403  # none approved yet
    submit_work(sandbox_server.url, gated, "AGOOD", {"item-0": "yes"})


def test_bad_requirement_values_are_refused(sandbox_server, mturk_client):
    client = mturk_client()
    with pytest.raises(ClientError) as excinfo:
        _hit(
            client,
            requirements=[{"QualificationTypeId": APPROVAL_RATE, "Comparator": "GreaterThan"}],
        )
    assert excinfo.value.response["Error"]["Code"] == "ParameterValidationError"
    with pytest.raises(ClientError) as excinfo:
        _hit(
            client,
            requirements=[
                {"QualificationTypeId": LOCALE, "Comparator": "LessThan", "IntegerValues": [1]}
            ],
        )
    assert excinfo.value.response["Error"]["Code"] == "ParameterValidationError"


def test_restart_keeps_everything(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client)
    assignment = submit_work(sandbox_server.url, hit_id, "AW1", {"item-0": "yes"})
    client.approve_assignment(AssignmentId=assignment)
    client.create_worker_block(WorkerId="ABAD", Reason="spam")
    port = sandbox_server.port
    sandbox_server.restart()
    assert sandbox_server.port == port
    client = mturk_client()
    assert (
        client.get_assignment(AssignmentId=assignment)["Assignment"]["AssignmentStatus"]
        == "Approved"
    )
    assert client.get_account_balance()["AvailableBalance"] == "9999.88"
    assert [b["WorkerId"] for b in client.list_worker_blocks()["WorkerBlocks"]] == ["ABAD"]
    assert client.list_hits()["HITs"][0]["HITId"] == hit_id


def test_advanced_clock_survives_restart(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client, delay=3600)
    assignment = submit_work(sandbox_server.url, hit_id, "AW1", {"item-0": "yes"})
    sandbox_server.advance_clock(1800)
    sandbox_server.restart()
    client = mturk_client()
    assert (
        client.get_assignment(AssignmentId=assignment)["Assignment"]["AssignmentStatus"]
        == "Submitted"
    )
    sandbox_server.advance_clock(1801)
    assert (
        client.get_assignment(AssignmentId=assignment)["Assignment"]["AssignmentStatus"]
        == "Approved"
    )
