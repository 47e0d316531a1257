"""The crowd-backend contract: what every target must do, checked through the interface.

The same tests run against the local sandbox server (always), a real Turkle server on
loopback (always, once Turkle is installed: ``make test`` installs it), and Amazon's MTurk
sandbox (``-m mturk_sandbox``, with AWS credentials in the environment or a profile;
skipped otherwise). Tests that need a worker to submit work run only where a program can
play the worker (the local sandbox's worker pages, Turkle's own worker pages). Where
Turkle cannot do what MTurk does (it pays nobody, cannot extend a batch or exclude one
user), the test says so and checks what Turkle does instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.fixtures.sandbox import contract_page, html_question, submit_work
from tests.fixtures.turkle import turkle_enrol, turkle_submit
from turk.crowd.backend import (
    MTURK_SANDBOX,
    TURKLE,
    CrowdBackend,
    DuplicateRequestError,
    HitPage,
    HitTypeSpec,
    QualificationRequirement,
)
from turk.crowd.boto import connect
from turk.crowd.turkle import connect_turkle
from turk.crowd.turkle_server import TurkleServer
from turk.errors import CrowdError


@dataclass
class ContractTarget:
    """A backend under test and, where a program can act as a worker, how to submit."""

    backend: CrowdBackend
    submit: Callable[[str, str, dict[str, str]], str] | None
    run_id: str
    enrol: Callable[[str], None] = lambda worker_id: None
    """Make a worker known to the target before anything is granted to them (Turkle)."""

    @property
    def target(self) -> str:
        return self.backend.target


def _aws_credentials() -> bool:
    import boto3

    return boto3.Session().get_credentials() is not None


@pytest.fixture(
    params=[
        "local",
        pytest.param(TURKLE, marks=pytest.mark.xdist_group("turkle")),
        pytest.param(MTURK_SANDBOX, marks=pytest.mark.mturk_sandbox),
    ]
)
def target(request: pytest.FixtureRequest) -> Iterator[ContractTarget]:
    """Each backend in turn: the local sandbox, Turkle, then Amazon's sandbox if possible."""
    run_id = uuid.uuid4().hex[:10]
    if request.param == TURKLE:
        turkle = request.getfixturevalue("turkle_server")
        backend = connect_turkle(turkle.url, turkle.token(), timeout=10.0)
        yield ContractTarget(backend, turkle_submit(turkle), run_id, turkle_enrol(turkle))
        return
    if request.param == "local":
        server = request.getfixturevalue("sandbox_server")
        backend = connect("local", endpoint_url=server.url, read_timeout=10.0)

        def submit(hit_id: str, worker_id: str, fields: dict[str, str]) -> str:
            return submit_work(server.url, hit_id, worker_id, fields)

        yield ContractTarget(backend, submit, run_id)
        return
    if not _aws_credentials():
        pytest.skip("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID to run")
    yield ContractTarget(connect(MTURK_SANDBOX), None, run_id)


def _spec(run_id: str, reward: str = "0.05") -> HitTypeSpec:
    return HitTypeSpec(
        title=f"turk contract test {run_id}",
        description="Contract test HIT; please ignore.",
        keywords="test",
        reward=Decimal(reward),
        assignment_duration_s=600,
        auto_approval_delay_s=3600,
    )


QUESTION = html_question(contract_page(["https://example.org/a.jpg"], concept="bus"))
PAGE = HitPage(
    name="contract",
    template=(
        '<div data-task="binary" data-concept="bus"><div data-item="item-0">'
        '<img src="${image_url_0}">'
        '<label><input type="radio" name="item-0" value="yes">yes</label>'
        '<label><input type="radio" name="item-0" value="no">no</label></div></div>'
    ),
    row={"image_url_0": "https://example.org/a.jpg?x=1&amp;y=2"},
)
"""The same HIT as a batch template and its row (what Turkle takes; boto3 ignores it)."""


def _hit(t: ContractTarget, token: str, max_assignments: int = 2, lifetime: int = 3600) -> str:
    type_id = t.backend.create_hit_type(_spec(t.run_id))
    info = t.backend.create_hit(
        hit_type_id=type_id,
        question_xml=QUESTION,
        max_assignments=max_assignments,
        lifetime_s=lifetime,
        annotation=f"turk:contract-{t.run_id}:{token}",
        token=f"{t.run_id}-{token}",
        page=PAGE,
    )
    return info.hit_id


def _need_worker(t: ContractTarget) -> Callable[[str, str, dict[str, str]], str]:
    if t.submit is None:
        pytest.skip("this target has no programmable worker")
    return t.submit


def test_balance_is_money(target: ContractTarget) -> None:
    balance = target.backend.balance()
    if target.target == TURKLE:
        assert balance is None  # Turkle holds no money; the call checks the token works
        return
    assert isinstance(balance, Decimal) and balance >= 0


@pytest.mark.xdist_group("turkle")
def test_a_refused_turkle_token_is_a_crowd_error(turkle_server: TurkleServer) -> None:
    backend = connect_turkle(turkle_server.url, "not-a-token", timeout=10.0)
    with pytest.raises(CrowdError, match="refused the API token"):
        backend.balance()


def test_hit_type_is_reused_for_equal_properties(target: ContractTarget) -> None:
    first = target.backend.create_hit_type(_spec(target.run_id))
    assert target.backend.create_hit_type(_spec(target.run_id)) == first
    assert target.backend.create_hit_type(_spec(target.run_id, reward="0.06")) != first


def test_create_hit_is_idempotent_by_token(target: ContractTarget) -> None:
    hit_id = _hit(target, "h1")
    info = target.backend.get_hit(hit_id)
    assert info.status == "Assignable" and info.max_assignments == 2
    assert info.available == 2 and info.pending == 0 and info.finished_work == 0
    assert info.annotation == f"turk:contract-{target.run_id}:h1"
    assert info.expiration is not None and info.expiration > datetime.now(UTC)
    with pytest.raises(DuplicateRequestError):
        _hit(target, "h1")
    mine = [h for h in target.backend.list_hits() if h.annotation.endswith(f"{target.run_id}:h1")]
    assert [h.hit_id for h in mine] == [hit_id]


def test_unknown_hit_is_a_crowd_error(target: ContractTarget) -> None:
    with pytest.raises(CrowdError, match="GetHIT"):
        target.backend.get_hit("3NOSUCHHIT0000000000000000000")


def test_expire_makes_a_hit_reviewable_and_delete_removes_it(target: ContractTarget) -> None:
    hit_id = _hit(target, "exp")
    target.backend.expire_hit(hit_id)
    info = target.backend.get_hit(hit_id)
    assert info.status == "Reviewable"
    assert hit_id in {h.hit_id for h in target.backend.list_reviewable_hits(info.hit_type_id)}
    target.backend.delete_hit(hit_id)
    assert hit_id not in {h.hit_id for h in target.backend.list_hits()}


def test_update_expiration_reopens_an_expired_hit(target: ContractTarget) -> None:
    hit_id = _hit(target, "reopen")
    target.backend.expire_hit(hit_id)
    target.backend.update_expiration(hit_id, datetime.now(UTC) + timedelta(hours=1))
    assert target.backend.get_hit(hit_id).status == "Assignable"


def test_extend_is_idempotent_and_refuses_the_ten_boundary(target: ContractTarget) -> None:
    hit_id = _hit(target, "ext", max_assignments=3)
    if target.target == TURKLE:
        # Turkle's API cannot change a batch's assignments per task: refused, unchanged.
        with pytest.raises(CrowdError, match="cannot add assignments"):
            target.backend.extend_hit(hit_id, 2, f"{target.run_id}-ext-5")
        assert target.backend.get_hit(hit_id).max_assignments == 3
        return
    target.backend.extend_hit(hit_id, 2, f"{target.run_id}-ext-5")
    with pytest.raises(DuplicateRequestError):
        target.backend.extend_hit(hit_id, 2, f"{target.run_id}-ext-5")
    assert target.backend.get_hit(hit_id).max_assignments == 5
    with pytest.raises(CrowdError):
        target.backend.extend_hit(hit_id, 5, f"{target.run_id}-ext-10")
    assert target.backend.get_hit(hit_id).max_assignments == 5


def test_qualification_types_by_name(target: ContractTarget) -> None:
    name = f"turk-contract-{target.run_id}"
    assert target.backend.find_qualification_type(name) is None
    type_id = target.backend.create_qualification_type(name, "contract test")
    assert target.backend.find_qualification_type(name) == type_id
    requirement = QualificationRequirement(type_id, "Exists")
    spec = _spec(target.run_id)
    spec = HitTypeSpec(**{**spec.__dict__, "qualifications": (requirement,)})
    assert target.backend.create_hit_type(spec) != target.backend.create_hit_type(
        _spec(target.run_id)
    )


def _two_submitted(target: ContractTarget, key: str) -> tuple[str, str, str]:
    submit = _need_worker(target)
    hit_id = _hit(target, key, max_assignments=2)
    first = submit(hit_id, "AWORKERONE", {"item-0": "yes"})
    second = submit(hit_id, "AWORKERTWO", {"item-0": "no"})
    return hit_id, first, second


def test_submitted_work_is_listed_with_its_answers(target: ContractTarget) -> None:
    hit_id, first, second = _two_submitted(target, "listed")
    info = target.backend.get_hit(hit_id)
    assert info.finished_work == 2 and info.status == "Reviewable"
    listed = {a.assignment_id: a for a in target.backend.list_assignments(hit_id)}
    assert set(listed) == {first, second}
    assert listed[first].status == "Submitted" and "item-0" in listed[first].answer_xml
    assert ">yes<" in listed[first].answer_xml and ">no<" in listed[second].answer_xml
    assert listed[first].worker_id == "AWORKERONE"
    assert listed[first].accept_time is not None and listed[first].submit_time is not None
    assert target.backend.get_assignment(second).worker_id == "AWORKERTWO"


def test_submitted_work_is_approved_and_bonused_once(target: ContractTarget) -> None:
    if target.target == TURKLE:
        pytest.skip(
            "Turkle has no review and pays nobody: approve, reject and bonus are decisions "
            "in turk's ledger only (tests/test_turkle.py checks them in a whole turk run)"
        )
    hit_id, first, second = _two_submitted(target, "work")
    target.backend.approve(first)
    assert target.backend.get_assignment(first).status == "Approved"
    with pytest.raises(CrowdError):
        target.backend.approve(first)  # already approved: refused, not repeated
    target.backend.reject(second, "Known-answer checks failed.")
    assert target.backend.get_assignment(second).status == "Rejected"
    approved = list(target.backend.list_assignments(hit_id, ["Approved"]))
    assert [a.assignment_id for a in approved] == [first]
    token = f"{target.run_id}-bonus"
    target.backend.send_bonus(
        worker_id="AWORKERONE", assignment_id=first, amount=Decimal("0.10"), reason="x", token=token
    )
    with pytest.raises(DuplicateRequestError):
        target.backend.send_bonus(
            worker_id="AWORKERONE",
            assignment_id=first,
            amount=Decimal("0.10"),
            reason="x",
            token=token,
        )
    bonuses = target.backend.list_bonuses(first)
    assert [(b.worker_id, b.amount) for b in bonuses] == [("AWORKERONE", Decimal("0.10"))]


def test_blocked_workers_cannot_work(target: ContractTarget) -> None:
    submit = _need_worker(target)
    if target.target == TURKLE:
        pytest.skip(
            "Turkle cannot exclude one user from a project open to every user: turk keeps "
            "the block in its ledger and removes the user where a project lists users"
        )
    target.backend.block_worker("AWORKERBAD", "failed checks")
    hit_id = _hit(target, "block")
    with pytest.raises(AssertionError):
        submit(hit_id, "AWORKERBAD", {"item-0": "yes"})


def test_only_qualified_workers_can_work(target: ContractTarget) -> None:
    submit = _need_worker(target)
    name = f"turk-trusted-{target.run_id}"
    type_id = target.backend.create_qualification_type(name, "trusted")
    target.enrol("AWORKERGOOD")
    target.backend.grant_qualification(type_id, "AWORKERGOOD")
    spec = HitTypeSpec(
        **{
            **_spec(target.run_id).__dict__,
            "qualifications": (QualificationRequirement(type_id, "Exists"),),
        }
    )
    gated_type = target.backend.create_hit_type(spec)
    gated = target.backend.create_hit(
        hit_type_id=gated_type,
        question_xml=QUESTION,
        max_assignments=2,
        lifetime_s=3600,
        annotation="turk:gated:1",
        token=f"{target.run_id}-gated",
        page=PAGE,
    ).hit_id
    submit(gated, "AWORKERGOOD", {"item-0": "yes"})
    with pytest.raises(AssertionError):
        submit(gated, "AWORKEROTHER", {"item-0": "yes"})


@pytest.mark.slow
def test_pagination_returns_every_assignment(target: ContractTarget) -> None:
    submit = _need_worker(target)
    if target.target == TURKLE:
        pytest.skip("Turkle answers a batch's results as one CSV, without pages")
    hit_id = _hit(target, "many", max_assignments=105)
    ids = {submit(hit_id, f"AW{n:05d}", {"item-0": "yes"}) for n in range(105)}
    listed = [a.assignment_id for a in target.backend.list_assignments(hit_id)]
    assert len(listed) == 105 and set(listed) == ids
    assert target.backend.stats.calls["ListAssignmentsForHIT"] == 2  # two pages of 100
