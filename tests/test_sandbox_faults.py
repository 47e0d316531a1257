"""Fault injection: throttling, service faults, slow and lost replies, seen through boto3."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from tests.fixtures.sandbox import contract_page, html_question
from turk.sandbox import FaultPlan, SandboxError
from turk.sandbox.faults import parse_faults

QUESTION = html_question(contract_page(["/media/a.jpg"], concept="bus"))


def _create(client, token=None):
    extra = {"UniqueRequestToken": token} if token else {}
    return client.create_hit(
        Title="t",
        Description="d",
        Reward="0.05",
        AssignmentDurationInSeconds=600,
        LifetimeInSeconds=600,
        Question=QUESTION,
        **extra,
    )["HIT"]["HITId"]


def _hit_count(server):
    return server.store.conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0]


def test_throttling_exception(sandbox_server, mturk_client):
    sandbox_server.set_faults("throttle=1")
    with pytest.raises(ClientError) as excinfo:
        mturk_client(max_attempts=1).get_account_balance()
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(ClientError):
        _create(mturk_client(max_attempts=1))
    assert _hit_count(sandbox_server) == 0  # a throttled call does nothing


def test_retries_get_through_throttling_and_faults(sandbox_server, mturk_client):
    # seed 1 draws: throttle, ok, ok, fault, ok, ok (one retry for the first and third HIT)
    sandbox_server.set_faults(FaultPlan(throttle=0.2, fault=0.2, seed=1))
    client = mturk_client(max_attempts=10, mode="legacy")
    ids = [_create(client, token=f"t{i}") for i in range(4)]
    assert len(set(ids)) == 4 and _hit_count(sandbox_server) == 4


def test_service_fault(sandbox_server, mturk_client):
    sandbox_server.set_faults("fault=1")
    client = mturk_client(max_attempts=1)
    with pytest.raises(client.exceptions.ServiceFault) as excinfo:
        client.get_account_balance()
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["TurkErrorCode"] == "AWS.MechanicalTurk.ServiceFault"


def test_lost_reply_commits_the_operation(sandbox_server, mturk_client):
    sandbox_server.set_faults("lost=1")
    with pytest.raises(ConnectionClosedError):
        _create(mturk_client(max_attempts=1), token="lost-1")
    sandbox_server.set_faults(None)
    assert _hit_count(sandbox_server) == 1  # done, though the client never heard
    client = mturk_client()
    with pytest.raises(ClientError) as excinfo:
        _create(client, token="lost-1")
    assert excinfo.value.response.get("TurkErrorCode") == "AWS.MechanicalTurk.HitAlreadyExists"
    existing = client.list_hits()["HITs"][0]["HITId"]
    assert existing in excinfo.value.response["Error"]["Message"]


def test_lost_reply_then_retry_hits_the_token(sandbox_server, mturk_client):
    # seed 1: the first draw is "lost", the retry goes through and meets the token
    probe = FaultPlan(lost=0.5, seed=1)
    assert [probe.draw(), probe.draw()] == ["lost", None]
    plan = FaultPlan(lost=0.5, seed=1)
    sandbox_server.set_faults(plan)
    with pytest.raises(ClientError) as excinfo:
        _create(mturk_client(max_attempts=3), token="retry-1")
    assert excinfo.value.response.get("TurkErrorCode") == "AWS.MechanicalTurk.HitAlreadyExists"
    assert _hit_count(sandbox_server) == 1


def test_slow_replies(sandbox_server, mturk_client):
    sandbox_server.set_faults("slow=0.3")
    client = mturk_client()
    started = time.monotonic()
    client.get_account_balance()
    assert time.monotonic() - started >= 0.3
    with pytest.raises(ReadTimeoutError):
        mturk_client(max_attempts=1, read_timeout=0.1).get_account_balance()


def test_seeded_plans_repeat():
    draws = [FaultPlan(throttle=0.2, fault=0.2, lost=0.2, seed=9).draw() for _ in range(1)]
    plan_a = FaultPlan(throttle=0.2, fault=0.2, lost=0.2, seed=9)
    plan_b = FaultPlan(throttle=0.2, fault=0.2, lost=0.2, seed=9)
    seq_a = [plan_a.draw() for _ in range(200)]
    assert seq_a == [plan_b.draw() for _ in range(200)]
    assert draws[0] == seq_a[0]
    assert {"throttle", "fault", "lost", None} == set(seq_a)


@pytest.mark.parametrize(
    "spec", ["throttle=2", "nope=1", "lost=x", "throttle=0.6,fault=0.6", "slow=-1", "lost"]
)
def test_bad_fault_specs(spec):
    with pytest.raises(SandboxError, match="faults"):
        parse_faults(spec)


def test_parse_faults():
    plan = parse_faults("throttle=0.1, fault=0.05,lost=0.02,slow=0.5,seed=3")
    assert (plan.throttle, plan.fault, plan.lost, plan.slow, plan.seed) == (0.1, 0.05, 0.02, 0.5, 3)
