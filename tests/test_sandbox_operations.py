"""Every operation of MTurk's service model, and the rules of the later-added ones.

All calls go through real boto3 to the running sandbox; worker actions go through its
worker pages over HTTP.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import boto3
import httpx
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from tests.fixtures.sandbox import accept_hit, contract_page, html_question, submit_work
from turk.sandbox.clock import advance_clock

OPERATIONS = sorted(
    boto3.session.Session()
    .client("mturk", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    .meta.service_model.operation_names
)
ID = "A" * 30
NOTIFICATION = {
    "Destination": "requester@example.com",
    "Transport": "Email",
    "Version": "2006-05-05",
    "EventTypes": ["AssignmentSubmitted"],
}
HIT_PROPS = {
    "Title": "t",
    "Description": "d",
    "Reward": "0.05",
    "AssignmentDurationInSeconds": 600,
}
MINIMAL: dict[str, dict[str, Any]] = {
    "AcceptQualificationRequest": {"QualificationRequestId": ID},
    "ApproveAssignment": {"AssignmentId": ID},
    "AssociateQualificationWithWorker": {"QualificationTypeId": ID, "WorkerId": "AW1"},
    "CreateAdditionalAssignmentsForHIT": {"HITId": ID, "NumberOfAdditionalAssignments": 1},
    "CreateHIT": {**HIT_PROPS, "LifetimeInSeconds": 600},
    "CreateHITType": HIT_PROPS,
    "CreateHITWithHITType": {"HITTypeId": ID, "LifetimeInSeconds": 600},
    "CreateQualificationType": {
        "Name": "every-op",
        "Description": "d",
        "QualificationTypeStatus": "Active",
    },
    "CreateWorkerBlock": {"WorkerId": "AW1", "Reason": "r"},
    "DeleteHIT": {"HITId": ID},
    "DeleteQualificationType": {"QualificationTypeId": ID},
    "DeleteWorkerBlock": {"WorkerId": "AW1"},
    "DisassociateQualificationFromWorker": {"WorkerId": "AW1", "QualificationTypeId": ID},
    "GetAccountBalance": {},
    "GetAssignment": {"AssignmentId": ID},
    "GetFileUploadURL": {"AssignmentId": ID, "QuestionIdentifier": "q"},
    "GetHIT": {"HITId": ID},
    "GetQualificationScore": {"QualificationTypeId": ID, "WorkerId": "AW1"},
    "GetQualificationType": {"QualificationTypeId": ID},
    "ListAssignmentsForHIT": {"HITId": ID},
    "ListBonusPayments": {"HITId": ID},
    "ListHITs": {},
    "ListHITsForQualificationType": {"QualificationTypeId": ID},
    "ListQualificationRequests": {},
    "ListQualificationTypes": {"MustBeRequestable": True},
    "ListReviewPolicyResultsForHIT": {"HITId": ID},
    "ListReviewableHITs": {},
    "ListWorkerBlocks": {},
    "ListWorkersWithQualificationType": {"QualificationTypeId": ID},
    "NotifyWorkers": {"Subject": "s", "MessageText": "m", "WorkerIds": ["AW1"]},
    "RejectAssignment": {"AssignmentId": ID, "RequesterFeedback": "f"},
    "RejectQualificationRequest": {"QualificationRequestId": ID},
    "SendBonus": {"WorkerId": "AW1", "BonusAmount": "0.10", "AssignmentId": ID, "Reason": "r"},
    "SendTestEventNotification": {"Notification": NOTIFICATION, "TestEventType": "Ping"},
    "UpdateExpirationForHIT": {"HITId": ID, "ExpireAt": 0},
    "UpdateHITReviewStatus": {"HITId": ID},
    "UpdateHITTypeOfHIT": {"HITId": ID, "HITTypeId": ID},
    "UpdateNotificationSettings": {"HITTypeId": ID, "Active": True},
    "UpdateQualificationType": {"QualificationTypeId": ID},
}


def _code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return str(caught.value.response["Error"].get("Code"))


def _turk_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response.get("TurkErrorCode") or error.value.response["Error"]["Code"])


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_model_operation_is_answered(operation, mturk_client):
    assert operation in MINIMAL, f"add minimal parameters for {operation} to MINIMAL"
    client = mturk_client(max_attempts=1)
    method = getattr(client, xform_name(operation))
    try:
        method(**MINIMAL[operation])
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        assert code not in ("UnknownOperationException", "ServiceFault"), exc
        assert code in ("RequestError", "ParameterValidationError"), exc


def _qualification_type(client: Any, name: str, **extra: Any) -> str:
    return str(
        client.create_qualification_type(
            Name=name, Description="d", QualificationTypeStatus="Active", **extra
        )["QualificationType"]["QualificationTypeId"]
    )


def _request(url: str, type_id: str, worker_id: str) -> httpx.Response:
    return httpx.post(
        f"{url}/worker/qualifications/{type_id}/request", params={"workerId": worker_id}
    )


def test_qualification_requests_accept_reject_and_retry(sandbox_server, mturk_client):
    client = mturk_client()
    type_id = _qualification_type(client, "vision test", RetryDelayInSeconds=3600)
    url = sandbox_server.url
    assert _request(url, type_id, "AW1").status_code == 200
    assert _request(url, type_id, "AW2").status_code == 200
    assert _request(url, type_id, "AW1").status_code == 409  # one pending request at a time
    pending = client.list_qualification_requests(QualificationTypeId=type_id)
    assert pending["NumResults"] == 2
    by_worker = {
        r["WorkerId"]: r["QualificationRequestId"] for r in pending["QualificationRequests"]
    }
    client.accept_qualification_request(QualificationRequestId=by_worker["AW1"], IntegerValue=87)
    client.reject_qualification_request(QualificationRequestId=by_worker["AW2"], Reason="no")
    with pytest.raises(ClientError) as again:
        client.accept_qualification_request(QualificationRequestId=by_worker["AW2"])
    assert _turk_code(again) == "AWS.MechanicalTurk.InvalidQualificationRequestState"
    assert client.list_qualification_requests()["NumResults"] == 0
    score = client.get_qualification_score(QualificationTypeId=type_id, WorkerId="AW1")
    assert score["Qualification"]["IntegerValue"] == 87
    assert score["Qualification"]["Status"] == "Granted"
    with pytest.raises(ClientError) as missing:
        client.get_qualification_score(QualificationTypeId=type_id, WorkerId="AW2")
    assert _turk_code(missing) == "AWS.MechanicalTurk.QualificationDoesNotExist"
    # the rejected worker may ask again only after RetryDelayInSeconds
    assert _request(url, type_id, "AW2").status_code == 409
    advance_clock(url, 3601)
    assert _request(url, type_id, "AW2").status_code == 200


def test_auto_granted_type_and_workers_with_type(sandbox_server, mturk_client):
    client = mturk_client()
    type_id = _qualification_type(client, "auto", AutoGranted=True, AutoGrantedValue=5)
    for worker in ("AW1", "AW2"):
        assert _request(sandbox_server.url, type_id, worker).status_code == 200
    assert client.list_qualification_requests()["NumResults"] == 0
    client.disassociate_qualification_from_worker(
        QualificationTypeId=type_id, WorkerId="AW2", Reason="r"
    )
    granted = client.list_workers_with_qualification_type(
        QualificationTypeId=type_id, Status="Granted"
    )
    assert [(q["WorkerId"], q["IntegerValue"]) for q in granted["Qualifications"]] == [("AW1", 5)]
    every = client.list_workers_with_qualification_type(QualificationTypeId=type_id, MaxResults=1)
    assert every["NumResults"] == 1 and "NextToken" in every


def test_update_qualification_type_rules(mturk_client):
    client = mturk_client()
    type_id = _qualification_type(client, "updatable")
    updated = client.update_qualification_type(
        QualificationTypeId=type_id, Description="new", QualificationTypeStatus="Inactive"
    )["QualificationType"]
    assert (updated["Description"], updated["QualificationTypeStatus"]) == ("new", "Inactive")
    assert updated["Name"] == "updatable"
    test = (
        '<QuestionForm xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
        '2017-11-06/QuestionForm.xsd"><Question><QuestionIdentifier>q</QuestionIdentifier>'
        "</Question></QuestionForm>"
    )
    with pytest.raises(ClientError) as no_duration:
        client.update_qualification_type(QualificationTypeId=type_id, Test=test)
    assert no_duration.value.response["Error"]["Code"] == "ParameterValidationError"
    with pytest.raises(ClientError) as both:
        client.update_qualification_type(
            QualificationTypeId=type_id, Test=test, TestDurationInSeconds=60, AutoGranted=True
        )
    assert both.value.response["Error"]["Code"] == "ParameterValidationError"
    with_test = client.update_qualification_type(
        QualificationTypeId=type_id, Test=test, TestDurationInSeconds=60
    )["QualificationType"]
    assert with_test["Test"] == test and with_test["AutoGranted"] is False


def test_delete_qualification_type_disposes_hit_types_and_requests(sandbox_server, mturk_client):
    client = mturk_client()
    type_id = _qualification_type(client, "doomed")
    assert _request(sandbox_server.url, type_id, "AW1").status_code == 200
    requirement = [{"QualificationTypeId": type_id, "Comparator": "Exists"}]
    hit_type = client.create_hit_type(**HIT_PROPS, QualificationRequirements=requirement)
    question = html_question(contract_page(["https://example.com/a.jpg"], concept="bus"))
    hit = client.create_hit_with_hit_type(
        HITTypeId=hit_type["HITTypeId"], LifetimeInSeconds=600, Question=question
    )["HIT"]
    listed = client.list_hits_for_qualification_type(QualificationTypeId=type_id)
    assert [h["HITId"] for h in listed["HITs"]] == [hit["HITId"]]
    client.delete_qualification_type(QualificationTypeId=type_id)
    with pytest.raises(ClientError) as gone:
        client.get_qualification_type(QualificationTypeId=type_id)
    assert _turk_code(gone) == "AWS.MechanicalTurk.QualificationTypeDoesNotExist"
    assert client.list_qualification_requests()["NumResults"] == 0  # pending one rejected
    with pytest.raises(ClientError) as no_type:
        client.create_hit_with_hit_type(
            HITTypeId=hit_type["HITTypeId"], LifetimeInSeconds=600, Question=question
        )
    assert _turk_code(no_type) == "AWS.MechanicalTurk.HITTypeDoesNotExist"
    # the name stays taken while a live HIT uses the type, and is free once it is disposed
    with pytest.raises(ClientError):
        _qualification_type(client, "doomed")
    client.update_expiration_for_hit(HITId=hit["HITId"], ExpireAt=0)
    client.delete_hit(HITId=hit["HITId"])
    assert _qualification_type(client, "doomed") != type_id


def test_update_hit_type_of_hit(mturk_client):
    client = mturk_client()
    question = html_question(contract_page(["https://example.com/a.jpg"], concept="bus"))
    hit = client.create_hit(**HIT_PROPS, LifetimeInSeconds=600, Question=question)["HIT"]
    other = client.create_hit_type(**{**HIT_PROPS, "Title": "better", "Reward": "0.10"})
    client.update_hit_type_of_hit(HITId=hit["HITId"], HITTypeId=other["HITTypeId"])
    now = client.get_hit(HITId=hit["HITId"])["HIT"]
    assert (now["HITTypeId"], now["Title"], now["Reward"]) == (other["HITTypeId"], "better", "0.10")
    with pytest.raises(ClientError) as unknown:
        client.update_hit_type_of_hit(HITId=hit["HITId"], HITTypeId=ID)
    assert _turk_code(unknown) == "AWS.MechanicalTurk.HITTypeDoesNotExist"


def test_review_policies_notifications_and_file_upload(sandbox_server, mturk_client):
    client = mturk_client()
    question = html_question(contract_page(["https://example.com/a.jpg"], concept="bus"))
    policy = {
        "PolicyName": "ScoreMyKnownAnswers/2011-09-01",
        "Parameters": [{"Key": "AnswerKey", "MapEntries": [{"Key": "item-0", "Values": ["yes"]}]}],
    }
    hit = client.create_hit(
        **HIT_PROPS, LifetimeInSeconds=600, Question=question, AssignmentReviewPolicy=policy
    )["HIT"]
    results = client.list_review_policy_results_for_hit(HITId=hit["HITId"], RetrieveResults=True)
    assert results["AssignmentReviewPolicy"]["PolicyName"] == policy["PolicyName"]
    assert results["AssignmentReviewReport"] == {"ReviewResults": []}
    assert "HITReviewPolicy" not in results

    with pytest.raises(ClientError) as nothing_to_switch:
        client.update_notification_settings(HITTypeId=hit["HITTypeId"], Active=False)
    assert _turk_code(nothing_to_switch) == "AWS.MechanicalTurk.NotificationDoesNotExist"
    client.update_notification_settings(HITTypeId=hit["HITTypeId"], Notification=NOTIFICATION)
    client.update_notification_settings(HITTypeId=hit["HITTypeId"], Active=False)
    bad = {**NOTIFICATION, "Transport": "SQS"}  # an email address is not a queue
    for call, params in (
        (client.update_notification_settings, {"HITTypeId": hit["HITTypeId"], "Notification": bad}),
        (client.send_test_event_notification, {"Notification": bad, "TestEventType": "Ping"}),
    ):
        assert _code(call, **params) == "ParameterValidationError"
    client.send_test_event_notification(Notification=NOTIFICATION, TestEventType="Ping")

    assignment = submit_work(sandbox_server.url, hit["HITId"], "AW1", {"item-0": "yes"})
    with pytest.raises(ClientError) as no_file:
        client.get_file_upload_url(AssignmentId=assignment, QuestionIdentifier="item-0")
    assert _turk_code(no_file) == "AWS.MechanicalTurk.FileUploadAnswerDoesNotExist"


def _external(url: str) -> str:
    return (
        '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/'
        'AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd">'
        f"<ExternalURL>{url}</ExternalURL><FrameHeight>600</FrameHeight></ExternalQuestion>"
    )


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;",
        "http://example.com/task",
        "http://10.0.0.1/task",
        "ftp://example.com/task",
        "https:///no-host",
    ],
)
def test_external_url_must_be_https(url, mturk_client):
    client = mturk_client()
    with pytest.raises(ClientError) as refused:
        client.create_hit(**HIT_PROPS, LifetimeInSeconds=600, Question=_external(url))
    assert refused.value.response["Error"]["Code"] == "ParameterValidationError"
    assert "https" in refused.value.response["Error"]["Message"]
    assert client.list_hits()["NumResults"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/task?x=1",
        "http://127.0.0.1:9000/t",
        "http://localhost/t",
        "http://[::1]:8/t",
    ],
)
def test_external_url_https_or_loopback_http_is_framed(url, sandbox_server, mturk_client):
    client = mturk_client()
    hit = client.create_hit(**HIT_PROPS, LifetimeInSeconds=600, Question=_external(url))["HIT"]
    page = httpx.get(f"{sandbox_server.url}/worker/hits/{hit['HITId']}", params={"workerId": "AW1"})
    assert page.status_code == 200
    assert url.replace("&", "&amp;").split("?")[0] in page.text


def test_submit_is_bound_to_the_worker_holding_the_assignment(sandbox_server, mturk_client):
    client = mturk_client()
    question = html_question(contract_page(["https://example.com/a.jpg"], concept="bus"))
    hit = client.create_hit(**HIT_PROPS, LifetimeInSeconds=600, Question=question)["HIT"]
    assignment = accept_hit(sandbox_server.url, hit["HITId"], "AW1")
    submit = f"{sandbox_server.url}/mturk/externalSubmit"
    other = httpx.post(submit, data={"assignmentId": assignment, "workerId": "AW2", "item-0": "no"})
    assert other.status_code == 403
    nobody = httpx.post(submit, data={"assignmentId": assignment, "item-0": "no"})
    assert nobody.status_code == 403
    intruder = httpx.Client(cookies={"workerId": "AW3"})
    assert intruder.post(submit, data={"assignmentId": assignment}).status_code == 403
    assert client.list_assignments_for_hit(HITId=hit["HITId"])["NumResults"] == 0
    holder = httpx.Client(cookies={"workerId": "AW1"})  # signed in: the cookie names the worker
    assert (
        holder.post(submit, data={"assignmentId": assignment, "item-0": "yes"}).status_code == 200
    )
    answer = client.get_assignment(AssignmentId=assignment)["Assignment"]
    assert answer["WorkerId"] == "AW1" and "<FreeText>yes</FreeText>" in answer["Answer"]


def test_clock_endpoint_expires_and_auto_approves(sandbox_server, mturk_client):
    client = mturk_client()
    question = html_question(contract_page(["https://example.com/a.jpg"], concept="bus"))
    hit = client.create_hit(
        **{**HIT_PROPS, "AutoApprovalDelayInSeconds": 3600},
        LifetimeInSeconds=7200,
        Question=question,
        MaxAssignments=2,
    )["HIT"]
    assignment = submit_work(sandbox_server.url, hit["HITId"], "AW1", {"item-0": "yes"})
    before = time.time()
    now = advance_clock(sandbox_server.url, 3601)
    assert now >= before + 3601
    status = client.get_assignment(AssignmentId=assignment)["Assignment"]["AssignmentStatus"]
    assert status == "Approved"
    assert client.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Assignable"
    moved = httpx.post(f"{sandbox_server.url}/_sandbox/clock", json={"advance": 3600})
    assert moved.status_code == 200 and moved.json()["now"] >= before + 7201
    assert client.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"  # expired
    for body in ({"advance": -1}, {"advance": "1h"}, {"back": 1}):
        answer = httpx.post(f"{sandbox_server.url}/_sandbox/clock", json=body)
        assert answer.status_code == 400


def test_clock_cli_moves_the_running_sandbox(sandbox_server, mturk_client):
    client = mturk_client()
    question = html_question(contract_page(["https://example.com/a.jpg"], concept="bus"))
    hit = client.create_hit(**HIT_PROPS, LifetimeInSeconds=24 * 3600, Question=question)["HIT"]

    def clock(advance: str) -> subprocess.CompletedProcess[str]:
        command = ["sandbox", "clock", "--advance", advance, "--endpoint-url", sandbox_server.url]
        return subprocess.run(
            [sys.executable, "-m", "turk", *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = clock("25h")
    assert done.returncode == 0, done.stderr
    assert "sandbox clock:" in done.stdout
    assert client.get_hit(HITId=hit["HITId"])["HIT"]["HITStatus"] == "Reviewable"
    bad = clock("soon")
    assert bad.returncode != 0 and "--advance" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_clock_refuses_clients_off_loopback(tmp_path):
    from starlette.testclient import TestClient

    from turk.sandbox.server import SandboxConfig, build_app
    from turk.sandbox.store import Store

    store = Store(tmp_path / "state.db")
    try:
        app = build_app(store, SandboxConfig(state_path=tmp_path / "state.db"))
        with TestClient(app, client=("192.0.2.7", 5000)) as remote:
            answer = remote.post("/_sandbox/clock", json={"advance": 60})
        assert answer.status_code == 403
        assert store.clock_offset == 0
    finally:
        store.close()


def test_state_file_of_schema_1_gains_the_new_columns(tmp_path):
    import sqlite3

    from turk.sandbox.store import Store

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE hit_types (id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT "
        "NOT NULL, keywords TEXT, reward TEXT NOT NULL, assignment_duration INTEGER NOT NULL, "
        "auto_approval_delay INTEGER NOT NULL, qualification_requirements TEXT NOT NULL, "
        "signature TEXT NOT NULL UNIQUE, created REAL NOT NULL);"
    )
    old.close()
    store = Store(path)
    try:
        columns = {row[1] for row in store.conn.execute("PRAGMA table_info(hit_types)")}
        assert {"disposed", "notification", "notification_active"} <= columns
        assert store.get_meta("schema_version") == "2"
    finally:
        store.close()
