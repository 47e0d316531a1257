"""The sandbox's Requester API through real boto3: every operation and every bad input."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.sandbox import contract_page, html_question, submit_work

QUESTION = html_question(contract_page(["/media/a.jpg"], concept="bus"))


def _hit_type(client, reward="0.10", **extra):
    return client.create_hit_type(
        Title="Is it a bus?",
        Description="Say yes or no",
        Reward=reward,
        AssignmentDurationInSeconds=600,
        AutoApprovalDelayInSeconds=3600,
        **extra,
    )["HITTypeId"]


def _hit(client, type_id=None, max_assignments=3, **extra):
    type_id = type_id or _hit_type(client)
    return client.create_hit_with_hit_type(
        HITTypeId=type_id,
        MaxAssignments=max_assignments,
        LifetimeInSeconds=3600,
        Question=QUESTION,
        **extra,
    )["HIT"]


def _error(excinfo):
    response = excinfo.value.response
    return response["Error"]["Code"], response.get("TurkErrorCode"), response["Error"]["Message"]


def _count_rows(server, table):
    return server.store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_balance_hit_type_and_hit(sandbox_server, mturk_client):
    client = mturk_client()
    assert client.get_account_balance()["AvailableBalance"] == "10000.00"
    type_id = _hit_type(client)
    assert _hit_type(client) == type_id  # identical properties reuse the type, as MTurk does
    assert _hit_type(client, reward="0.11") != type_id
    hit = _hit(client, type_id, RequesterAnnotation="batch-1")
    assert hit["HITStatus"] == "Assignable"
    assert hit["HITTypeId"] == type_id and hit["Reward"] == "0.10"
    assert hit["NumberOfAssignmentsAvailable"] == 3 and hit["RequesterAnnotation"] == "batch-1"
    assert 3590 < (hit["Expiration"] - hit["CreationTime"]).total_seconds() <= 3600
    fetched = client.get_hit(HITId=hit["HITId"])["HIT"]
    assert fetched["Question"] == QUESTION and fetched["MaxAssignments"] == 3


def test_create_hit_registers_type(sandbox_server, mturk_client):
    client = mturk_client()
    hit = client.create_hit(
        Title="t",
        Description="d",
        Reward="0.05",
        AssignmentDurationInSeconds=300,
        LifetimeInSeconds=600,
        MaxAssignments=2,
        Question=QUESTION,
        Keywords="image, label",
    )["HIT"]
    assert hit["Keywords"] == "image, label"
    assert hit["AutoApprovalDelayInSeconds"] == 2592000  # MTurk's default: 30 days


def test_unique_request_token_names_existing_hit(sandbox_server, mturk_client):
    client = mturk_client()
    type_id = _hit_type(client)
    first = _hit(client, type_id, UniqueRequestToken="batch-1/hit-0")
    with pytest.raises(ClientError) as excinfo:
        _hit(client, type_id, UniqueRequestToken="batch-1/hit-0")
    code, turk_code, message = _error(excinfo)
    assert (code, turk_code) == ("RequestError", "AWS.MechanicalTurk.HitAlreadyExists")
    assert first["HITId"] in message
    assert client.list_hits()["NumResults"] == 1


def test_list_hits_and_reviewable_pagination(sandbox_server, mturk_client):
    client = mturk_client()
    type_id = _hit_type(client)
    ids = [_hit(client, type_id, max_assignments=1)["HITId"] for _ in range(7)]
    seen, token = [], None
    while True:
        kwargs = {"MaxResults": 3, **({"NextToken": token} if token else {})}
        page = client.list_hits(**kwargs)
        seen += [h["HITId"] for h in page["HITs"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ids
    for hit_id in ids[:2]:
        client.update_expiration_for_hit(HITId=hit_id, ExpireAt=0)
    reviewable = client.list_reviewable_hits(HITTypeId=type_id, MaxResults=100)["HITs"]
    assert [h["HITId"] for h in reviewable] == ids[:2]


def test_assignment_pagination_over_100(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client, max_assignments=150)["HITId"]
    submitted = [
        submit_work(sandbox_server.url, hit_id, f"AWORKER{i:04d}", {"item-0": "yes"})
        for i in range(150)
    ]
    client.reject_assignment(AssignmentId=submitted[0], RequesterFeedback="wrong")
    listed, token, pages = [], None, 0
    while True:
        kwargs = {"HITId": hit_id, "MaxResults": 100, **({"NextToken": token} if token else {})}
        page = client.list_assignments_for_hit(**kwargs)
        pages += 1
        assert page["NumResults"] == len(page["Assignments"]) <= 100
        listed += [a["AssignmentId"] for a in page["Assignments"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 2 and listed == submitted
    only_rejected = client.list_assignments_for_hit(HITId=hit_id, AssignmentStatuses=["Rejected"])
    assert [a["AssignmentId"] for a in only_rejected["Assignments"]] == [submitted[0]]
    with pytest.raises(ClientError) as excinfo:
        client.list_assignments_for_hit(HITId=hit_id, MaxResults=101)
    assert _error(excinfo)[0] == "ParameterValidationError"


def test_answers_approve_reject_override_and_money(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client)["HITId"]
    first = submit_work(sandbox_server.url, hit_id, "AW1", {"item-0": "yes", "note": "a<b & 'c'"})
    second = submit_work(sandbox_server.url, hit_id, "AW2", {"item-0": "no"})
    got = client.get_assignment(AssignmentId=first)
    assert got["HIT"]["HITId"] == hit_id and got["Assignment"]["AssignmentStatus"] == "Submitted"
    answer = got["Assignment"]["Answer"]
    assert "<QuestionIdentifier>item-0</QuestionIdentifier><FreeText>yes</FreeText>" in answer
    assert "<FreeText>a&lt;b &amp; 'c'</FreeText>" in answer
    client.approve_assignment(AssignmentId=first, RequesterFeedback="thanks")
    # reward 0.10 + 20% fee 0.02
    assert client.get_account_balance()["AvailableBalance"] == "9999.88"
    client.reject_assignment(AssignmentId=second, RequesterFeedback="no")
    with pytest.raises(ClientError) as excinfo:
        client.approve_assignment(AssignmentId=second)
    assert _error(excinfo)[:2] == ("RequestError", "AWS.MechanicalTurk.InvalidAssignmentState")
    assert client.get_account_balance()["AvailableBalance"] == "9999.88"
    client.approve_assignment(AssignmentId=second, OverrideRejection=True)
    assert (
        client.get_assignment(AssignmentId=second)["Assignment"]["AssignmentStatus"] == "Approved"
    )
    assert client.get_account_balance()["AvailableBalance"] == "9999.76"
    with pytest.raises(ClientError) as excinfo:
        client.reject_assignment(AssignmentId=first, RequesterFeedback="late")
    assert _error(excinfo)[1] == "AWS.MechanicalTurk.InvalidAssignmentState"


def test_fee_is_40_percent_from_ten_assignments_and_at_least_a_cent(sandbox_server, mturk_client):
    client = mturk_client()
    big = _hit(client, _hit_type(client, reward="1.00"), max_assignments=10)["HITId"]
    small = _hit(client, _hit_type(client, reward="0.01"), max_assignments=1)["HITId"]
    a = submit_work(sandbox_server.url, big, "AW1", {"item-0": "yes"})
    b = submit_work(sandbox_server.url, small, "AW1", {"item-0": "yes"})
    client.approve_assignment(AssignmentId=a)
    client.approve_assignment(AssignmentId=b)
    expected = Decimal("10000.00") - Decimal("1.40") - Decimal("0.02")
    assert Decimal(client.get_account_balance()["AvailableBalance"]) == expected


def test_bonus_with_token_and_listing(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client)["HITId"]
    assignment = submit_work(sandbox_server.url, hit_id, "AW1", {"item-0": "yes"})
    client.send_bonus(
        WorkerId="AW1",
        AssignmentId=assignment,
        BonusAmount="0.50",
        Reason="good",
        UniqueRequestToken="b1",
    )
    with pytest.raises(ClientError) as excinfo:
        client.send_bonus(
            WorkerId="AW1",
            AssignmentId=assignment,
            BonusAmount="0.50",
            Reason="good",
            UniqueRequestToken="b1",
        )
    assert _error(excinfo)[:2] == ("RequestError", "AWS.MechanicalTurk.DuplicateRequest")
    payments = client.list_bonus_payments(HITId=hit_id)["BonusPayments"]
    assert [(p["WorkerId"], p["BonusAmount"]) for p in payments] == [("AW1", "0.50")]
    assert client.list_bonus_payments(AssignmentId=assignment)["NumResults"] == 1
    assert client.get_account_balance()["AvailableBalance"] == "9999.40"  # 0.50 + 20%
    with pytest.raises(ClientError) as excinfo:
        client.send_bonus(
            WorkerId="AOTHER", AssignmentId=assignment, BonusAmount="1.00", Reason="x"
        )
    assert _error(excinfo)[0] == "ParameterValidationError"
    assert _count_rows(sandbox_server, "bonuses") == 1


def test_additional_assignments_and_token(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client, max_assignments=2)["HITId"]
    client.create_additional_assignments_for_hit(
        HITId=hit_id, NumberOfAdditionalAssignments=3, UniqueRequestToken="x1"
    )
    with pytest.raises(ClientError) as excinfo:
        client.create_additional_assignments_for_hit(
            HITId=hit_id, NumberOfAdditionalAssignments=3, UniqueRequestToken="x1"
        )
    assert _error(excinfo)[1] == "AWS.MechanicalTurk.DuplicateRequest"
    assert client.get_hit(HITId=hit_id)["HIT"]["MaxAssignments"] == 5
    with pytest.raises(ClientError) as excinfo:
        client.create_additional_assignments_for_hit(HITId=hit_id, NumberOfAdditionalAssignments=5)
    assert _error(excinfo)[1] == "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease"
    assert client.get_hit(HITId=hit_id)["HIT"]["MaxAssignments"] == 5


def test_blocks_qualifications_and_notifications(sandbox_server, mturk_client):
    client = mturk_client()
    client.create_worker_block(WorkerId="ABAD1", Reason="spam")
    client.create_worker_block(WorkerId="ABAD2", Reason="spam")
    assert {b["WorkerId"] for b in client.list_worker_blocks()["WorkerBlocks"]} == {
        "ABAD1",
        "ABAD2",
    }
    client.delete_worker_block(WorkerId="ABAD1", Reason="forgiven")
    assert [b["WorkerId"] for b in client.list_worker_blocks()["WorkerBlocks"]] == ["ABAD2"]

    qual = client.create_qualification_type(
        Name="Trusted", Description="passed gold", QualificationTypeStatus="Active", Keywords="gold"
    )["QualificationType"]
    with pytest.raises(ClientError) as excinfo:
        client.create_qualification_type(
            Name="Trusted", Description="again", QualificationTypeStatus="Active"
        )
    assert _error(excinfo)[1] == "AWS.MechanicalTurk.QualificationTypeAlreadyExists"
    listed = client.list_qualification_types(MustBeRequestable=False, Query="gold")
    assert [q["QualificationTypeId"] for q in listed["QualificationTypes"]] == [
        qual["QualificationTypeId"]
    ]
    assert (
        client.get_qualification_type(QualificationTypeId=qual["QualificationTypeId"])[
            "QualificationType"
        ]["Name"]
        == "Trusted"
    )
    client.associate_qualification_with_worker(
        QualificationTypeId=qual["QualificationTypeId"], WorkerId="AGOOD", IntegerValue=90
    )
    client.disassociate_qualification_from_worker(
        QualificationTypeId=qual["QualificationTypeId"], WorkerId="AGOOD", Reason="test"
    )
    with pytest.raises(ClientError) as excinfo:
        client.disassociate_qualification_from_worker(
            QualificationTypeId=qual["QualificationTypeId"], WorkerId="AGOOD"
        )
    assert _error(excinfo)[0] == "RequestError"

    hit_id = _hit(client)["HITId"]
    submit_work(sandbox_server.url, hit_id, "AKNOWN", {"item-0": "yes"})
    reply = client.notify_workers(
        Subject="Hi", MessageText="Thanks", WorkerIds=["AKNOWN", "ANEVER"]
    )
    failures = reply["NotifyWorkersFailureStatuses"]
    assert [(f["WorkerId"], f["NotifyWorkersFailureCode"]) for f in failures] == [
        ("ANEVER", "HardFailure")
    ]
    assert _count_rows(sandbox_server, "notifications") == 1


def test_review_status_and_delete(sandbox_server, mturk_client):
    client = mturk_client()
    hit_id = _hit(client, max_assignments=1)["HITId"]
    with pytest.raises(ClientError) as excinfo:
        client.delete_hit(HITId=hit_id)  # still Assignable
    assert _error(excinfo)[1] == "AWS.MechanicalTurk.InvalidHITState"
    assignment = submit_work(sandbox_server.url, hit_id, "AW1", {"item-0": "yes"})
    assert client.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Reviewable"
    with pytest.raises(ClientError) as excinfo:
        client.delete_hit(HITId=hit_id)  # submitted work not yet reviewed
    assert _error(excinfo)[1] == "AWS.MechanicalTurk.InvalidHITState"
    client.update_hit_review_status(HITId=hit_id, Revert=False)
    assert client.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Reviewing"
    reviewing = client.list_reviewable_hits(Status="Reviewing")["HITs"]
    assert [h["HITId"] for h in reviewing] == [hit_id]
    client.update_hit_review_status(HITId=hit_id, Revert=True)
    client.approve_assignment(AssignmentId=assignment)
    client.delete_hit(HITId=hit_id)
    assert client.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Disposed"
    assert client.list_hits()["NumResults"] == 0


# -- bad input: each gets MTurk's error shape, and nothing changes -------------------------


def _raw(url, target, body, content_type="application/x-amz-json-1.1"):
    return httpx.post(
        url,
        content=body,
        headers={"X-Amz-Target": target, "Content-Type": content_type},
    )


def test_malformed_json_and_unknown_operation(sandbox_server):
    response = _raw(sandbox_server.url, "MTurkRequesterServiceV20170117.CreateHIT", b"{not json")
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"
    response = _raw(sandbox_server.url, "MTurkRequesterServiceV20170117.LaunchRocket", b"{}")
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"
    response = _raw(sandbox_server.url, "SomethingElse.GetHIT", b"{}")
    assert response.json()["__type"] == "UnknownOperationException"
    assert _count_rows(sandbox_server, "hits") == 0


def test_missing_required_and_wrong_types(sandbox_server):
    target = "MTurkRequesterServiceV20170117.CreateHITType"
    response = _raw(
        sandbox_server.url, target, json.dumps({"Title": "t", "Description": "d"}).encode()
    )
    body = response.json()
    assert response.status_code == 400 and body["__type"] == "ParameterValidationError"
    assert "Reward" in body["Message"] or "AssignmentDurationInSeconds" in body["Message"]
    bad_type = {
        "Title": "t",
        "Description": "d",
        "Reward": "0.1",
        "AssignmentDurationInSeconds": "60",
    }
    response = _raw(sandbox_server.url, target, json.dumps(bad_type).encode())
    assert response.json()["__type"] == "ParameterValidationError"
    assert "AssignmentDurationInSeconds" in response.json()["Message"]
    assert _count_rows(sandbox_server, "hit_types") == 0


@pytest.mark.parametrize("reward", ["abc", "0.001", "0.00", "-1", "1.2.3"])
def test_invalid_reward(sandbox_server, mturk_client, reward):
    client = mturk_client()
    with pytest.raises(ClientError) as excinfo:
        _hit_type(client, reward=reward)
    assert _error(excinfo)[0] == "ParameterValidationError"
    assert _count_rows(sandbox_server, "hit_types") == 0


@pytest.mark.parametrize(
    "question",
    [
        "<HTMLQuestion><HTMLContent>unclosed",
        "<NotAQuestion/>",
        html_question("x" * 70000),
        '<HTMLQuestion xmlns="x"><FrameHeight>1</FrameHeight></HTMLQuestion>',
    ],
    ids=["not-well-formed", "wrong-root", "over-64kb", "no-html-content"],
)
def test_bad_question(sandbox_server, mturk_client, question):
    client = mturk_client()
    type_id = _hit_type(client)
    with pytest.raises(ClientError) as excinfo:
        client.create_hit_with_hit_type(
            HITTypeId=type_id, LifetimeInSeconds=600, Question=question, UniqueRequestToken="q"
        )
    assert _error(excinfo)[0] == "ParameterValidationError"
    assert _count_rows(sandbox_server, "hits") == 0
    assert _count_rows(sandbox_server, "request_tokens") == 0  # a failed call keeps no token
    _hit(client, type_id, UniqueRequestToken="q")  # the token is still free


def test_unknown_ids(sandbox_server, mturk_client):
    client = mturk_client()
    for call in (
        lambda: client.get_hit(HITId="NOSUCHHIT"),
        lambda: client.list_assignments_for_hit(HITId="NOSUCHHIT"),
        lambda: client.update_expiration_for_hit(HITId="NOSUCHHIT", ExpireAt=0),
        lambda: client.delete_hit(HITId="NOSUCHHIT"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _error(excinfo)[:2] == ("RequestError", "AWS.MechanicalTurk.HITDoesNotExist")
    for call in (
        lambda: client.get_assignment(AssignmentId="NOSUCHASSIGNMENT"),
        lambda: client.approve_assignment(AssignmentId="NOSUCHASSIGNMENT"),
        lambda: client.reject_assignment(AssignmentId="NOSUCHASSIGNMENT", RequesterFeedback="x"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _error(excinfo)[:2] == ("RequestError", "AWS.MechanicalTurk.AssignmentDoesNotExist")
    with pytest.raises(ClientError) as excinfo:
        client.create_hit_with_hit_type(
            HITTypeId="NOSUCHTYPE", LifetimeInSeconds=600, Question=QUESTION
        )
    assert _error(excinfo)[1] == "AWS.MechanicalTurk.HITTypeDoesNotExist"
    with pytest.raises(ClientError) as excinfo:
        _hit_type(
            client,
            QualificationRequirements=[
                {"QualificationTypeId": "NOSUCHQUAL", "Comparator": "Exists"}
            ],
        )
    assert _error(excinfo)[1] == "AWS.MechanicalTurk.QualificationTypeDoesNotExist"


def test_error_message_ends_with_server_time(sandbox_server, mturk_client):
    with pytest.raises(ClientError) as excinfo:
        mturk_client().get_hit(HITId="NOSUCHHIT")
    stamp = int(_error(excinfo)[2].rsplit("(", 1)[1].rstrip(")"))
    assert abs(stamp / 1000 - time.time()) < 60


@pytest.mark.slow
def test_cli_serve_prints_url_and_serves(tmp_path):
    import subprocess
    import sys

    import boto3

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "turk",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--state",
            str(tmp_path / "s.db"),
            "--balance",
            "25.00",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("sandbox: serving http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[2]
        client = boto3.client(
            "mturk",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="b",
        )
        assert client.get_account_balance()["AvailableBalance"] == "25.00"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--faults", "throttle=2"], "throttle=2.0"),
        (["--faults", "bogus=1"], "bogus=1"),
        (["--balance", "lots"], "--balance"),
        (["--media", "{file}"], "not a folder"),
        (["--media", "{file}/media"], "cannot create the folder"),
    ],
)
def test_cli_serve_bad_options(cli, tmp_path, args, fragment):
    (tmp_path / "file").write_text("not a folder")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    result = cli("sandbox", "serve", "--port", "0", "--state", tmp_path / "s.db", *args)
    assert result.exit_code == 1
    assert fragment in result.stderr and result.stderr.startswith("turk: error:")
