"""The crowd-backend interface: what publish, collect and review need from a crowd service.

One small interface. :class:`turk.crowd.boto.BotoBackend` implements it for the MTurk
API targets, which differ only in endpoint and guards; the others have their own:

=================  ===========================================================
``local``          the project's MTurk-compatible server on loopback (default)
``turkle``         a Turkle server for an in-house team (nobody is paid through turk)
``handoff``        files for a labelling vendor or MTurk's requester web UI
                   (exported and imported by hand)
``mturk-sandbox``  Amazon's requester sandbox (no money moves)
``mturk``          Amazon's production marketplace (real money; needs ``--live``)
=================  ===========================================================

Ids (HITs, HIT types, qualifications, worker blocks) belong to one target: the ledger
keeps them per target and nothing from one target is ever sent to another.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from turk.errors import ConfigError, CrowdError

LOCAL = "local"
MTURK_SANDBOX = "mturk-sandbox"
MTURK = "mturk"
TURKLE = "turkle"
HANDOFF = "handoff"
TARGETS: tuple[str, ...] = (LOCAL, TURKLE, HANDOFF, MTURK_SANDBOX, MTURK)
"""Every crowd target turk knows, in order of increasing consequence."""

UNPAID_TARGETS: tuple[str, ...] = (TURKLE, HANDOFF)
"""Targets through which turk pays nobody: approvals, rejections and bonuses are recorded
as decisions in the ledger only, and no spend is shown or counted against the budget."""


PAGE_TARGETS: tuple[str, ...] = (TURKLE, HANDOFF)
"""Targets that take a HIT as a batch template and a row (:class:`HitPage`), not XML."""


WORKFORCES: dict[str, str] = {
    LOCAL: "simulated workers on turk's local MTurk double",
    TURKLE: "an in-house team on Turkle",
    HANDOFF: "a labelling vendor or MTurk's web UI, through a file hand-off",
    MTURK_SANDBOX: "Amazon Mechanical Turk's sandbox",
    MTURK: "Amazon Mechanical Turk workers",
}
"""Who answers on each target, in the words of the report and the datasheet."""


def workforce(target: str) -> str:
    """Say who verified work on ``target`` (for the report and the datasheet).

    Args:
        target: A crowd target.

    Returns:
        The target's workforce in words, or the target's name when turk has none.
    """
    return WORKFORCES.get(target, target)


def extend_refusal(target: str) -> str | None:
    """Why ``review --extend`` cannot run on ``target``, or None where it can.

    Only Turkle cannot add assignments to a published HIT: its API cannot change a
    batch's assignments per task.

    Args:
        target: A crowd target.

    Returns:
        The reason and the fix in words (for the caller to prefix with its option or
        key), or None.
    """
    if target != TURKLE:
        return None
    return (
        f"target {target} cannot add assignments to a published HIT (Turkle's API cannot "
        "change a batch's assignments); ask for every answer up front with "
        "hit_type.max_assignments instead"
    )


def pays_workers(target: str) -> bool:
    """Whether turk moves money on ``target`` (False for Turkle and vendor hand-offs)."""
    return target not in UNPAID_TARGETS


DEFAULT_LOCAL_ENDPOINT = "http://127.0.0.1:8765"
SANDBOX_STATE_FILE = "sandbox.db"
"""Default state file of the local sandbox: beside turk.yaml, or in the current folder."""
"""Where ``turk sandbox serve`` listens unless told otherwise."""

ENDPOINTS: dict[str, str] = {
    LOCAL: DEFAULT_LOCAL_ENDPOINT,
    MTURK_SANDBOX: "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
    MTURK: "https://mturk-requester.us-east-1.amazonaws.com",
}
"""Default requester endpoint of each target (``--endpoint-url`` overrides it)."""

WORKER_SITES: dict[str, str] = {
    MTURK_SANDBOX: "https://workersandbox.mturk.com",
    MTURK: "https://worker.mturk.com",
}
"""Where workers see HITs on Amazon's targets (for messages and the README)."""

ASSIGNMENT_STATUSES: tuple[str, ...] = ("Submitted", "Approved", "Rejected")
"""Assignment statuses collect asks for: auto-approved work is never missed."""

# Amazon's system qualification types (same ids on the sandbox and production).
QUAL_LOCALE = "00000000000000000071"
QUAL_PERCENT_APPROVED = "000000000000000000L0"
QUAL_NUMBER_APPROVED = "00000000000000000040"


def check_target(target: str) -> str:
    """Return ``target`` if turk knows it.

    Args:
        target: A target name from the command line or a config file.

    Returns:
        The same name.

    Raises:
        ConfigError: The name is not one of :data:`TARGETS`.
    """
    if target not in TARGETS:
        raise ConfigError(
            f"--target {target!r}: unknown crowd target; use one of {', '.join(TARGETS)}"
        )
    return target


@dataclass(frozen=True)
class QualificationRequirement:
    """One qualification a worker needs (or must lack) to see and accept a HIT.

    Attributes:
        type_id: The qualification type id on the target.
        comparator: MTurk comparator, e.g. ``GreaterThanOrEqualTo`` or ``DoesNotExist``.
        integer_values: Values compared against the worker's score.
        locale_values: Countries (``{"Country": "US"}``) for the locale qualification.
        actions_guarded: ``Accept``, ``PreviewAndAccept`` or ``DiscoverPreviewAndAccept``.
    """

    type_id: str
    comparator: str
    integer_values: tuple[int, ...] = ()
    locale_values: tuple[tuple[tuple[str, str], ...], ...] = ()
    actions_guarded: str = "Accept"

    def to_api(self) -> dict[str, object]:
        """Return the requirement in the shape the MTurk API takes."""
        out: dict[str, object] = {
            "QualificationTypeId": self.type_id,
            "Comparator": self.comparator,
            "ActionsGuarded": self.actions_guarded,
        }
        if self.integer_values:
            out["IntegerValues"] = list(self.integer_values)
        if self.locale_values:
            out["LocaleValues"] = [dict(loc) for loc in self.locale_values]
        return out


@dataclass(frozen=True)
class HitTypeSpec:
    """The properties shared by every HIT of a HIT type.

    Attributes:
        title: What workers see in the HIT list.
        description: One or two sentences about the task.
        keywords: Search keywords, comma separated.
        reward: Pay per assignment, in USD.
        assignment_duration_s: Time a worker has once they accept.
        auto_approval_delay_s: Time after submission when MTurk approves automatically.
        qualifications: Requirements with qualification type ids resolved.
    """

    title: str
    description: str
    keywords: str
    reward: Decimal
    assignment_duration_s: int
    auto_approval_delay_s: int
    qualifications: tuple[QualificationRequirement, ...] = ()

    def canonical(self) -> str:
        """Every property as one canonical JSON text: equal specs, equal texts.

        Returns:
            Sorted-key JSON (the reward as a decimal string), for ids and tokens.
        """
        return json.dumps(
            {
                "title": self.title,
                "description": self.description,
                "keywords": self.keywords,
                "reward": str(self.reward),
                "duration": self.assignment_duration_s,
                "auto": self.auto_approval_delay_s,
                "quals": [q.to_api() for q in self.qualifications],
            },
            sort_keys=True,
        )


@dataclass(frozen=True)
class HitPage:
    """A HIT's page for servers that wrap it in their own form (Turkle).

    The MTurk API takes the whole page as ``question_xml``; a batch server takes one
    template per batch and a row of values per HIT, substitutes the values as they are,
    and adds its own form and Submit button (:mod:`turk.hits.batch`).

    Attributes:
        name: The batch template's name (``<batch_id>`` or ``<batch_id>-n<items>``).
        template: The bare HIT fragment with ``${variable}`` placeholders.
        row: This HIT's value per variable, already HTML-escaped.
    """

    name: str
    template: str
    row: Mapping[str, str]


@dataclass(frozen=True)
class HitInfo:
    """A HIT as the backend reports it.

    Attributes:
        hit_id: The target's HIT id.
        hit_type_id: The HIT type it belongs to.
        status: ``Assignable``, ``Unassignable``, ``Reviewable``, ``Reviewing`` or
            ``Disposed``.
        max_assignments: How many workers may do it (after any extension).
        available: Assignments still open to workers.
        pending: Assignments accepted and not yet submitted.
        completed: Assignments approved or rejected.
        annotation: The RequesterAnnotation turk set (batch and HIT key).
        expiration: When the HIT stops being offered, or None if unknown.
        reward: Pay per assignment as the service reports it.
    """

    hit_id: str
    hit_type_id: str
    status: str
    max_assignments: int
    available: int
    pending: int
    completed: int
    annotation: str = ""
    expiration: datetime | None = None
    reward: str = ""

    @property
    def finished_work(self) -> int:
        """Assignments submitted, approved or rejected (neither open nor in progress)."""
        return max(0, self.max_assignments - self.available - self.pending)


@dataclass(frozen=True)
class AssignmentInfo:
    """One worker's assignment on a HIT.

    Attributes:
        assignment_id: The target's assignment id.
        worker_id: The worker who did it.
        hit_id: The HIT it belongs to.
        status: ``Submitted``, ``Approved`` or ``Rejected``.
        answer_xml: The raw QuestionFormAnswers XML, untouched.
        accept_time: When the worker accepted it.
        submit_time: When the worker submitted it.
        auto_approval_time: When MTurk approves it unless reviewed first.
        approval_time: When it was approved, if it was.
        rejection_time: When it was rejected, if it was.
    """

    assignment_id: str
    worker_id: str
    hit_id: str
    status: str
    answer_xml: str
    accept_time: datetime | None = None
    submit_time: datetime | None = None
    auto_approval_time: datetime | None = None
    approval_time: datetime | None = None
    rejection_time: datetime | None = None


@dataclass(frozen=True)
class BonusInfo:
    """A bonus already paid for an assignment."""

    worker_id: str
    assignment_id: str
    amount: Decimal
    reason: str


@dataclass
class CallStats:
    """Counters of the calls a backend made.

    Attributes:
        calls: Logical API calls per operation name (one per client method call).
        requests: HTTP requests sent, retries included.
    """

    calls: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    @property
    def total_calls(self) -> int:
        """All logical calls, every operation together."""
        return sum(self.calls.values())


class DuplicateRequestError(CrowdError):
    """The service already processed a request with this idempotency token.

    Args:
        message: What was repeated.
        existing_id: The id of what the first request created, when the service says it.
    """

    def __init__(self, message: str, existing_id: str | None = None) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class CrowdBackend(Protocol):
    """What turk needs from a crowd service; every target implements all of it."""

    target: str
    endpoint_url: str
    stats: CallStats

    def balance(self) -> Decimal | None:
        """Return the available account balance in USD (None where it has no meaning)."""
        ...

    def create_hit_type(self, spec: HitTypeSpec) -> str:
        """Register (or find, as MTurk does for equal specs) a HIT type; return its id."""
        ...

    def create_hit(
        self,
        *,
        hit_type_id: str,
        question_xml: str,
        max_assignments: int,
        lifetime_s: int,
        annotation: str,
        token: str,
        page: HitPage | None = None,
    ) -> HitInfo:
        """Create a HIT; raise :class:`DuplicateRequestError` if ``token`` was seen.

        ``page`` is the HIT's batch-template form, for targets that cannot take
        ``question_xml`` (Turkle needs it; the MTurk API targets ignore it).
        """
        ...

    def get_hit(self, hit_id: str) -> HitInfo:
        """Return one HIT by id."""
        ...

    def list_hits(self) -> Iterator[HitInfo]:
        """Yield every HIT of the account, page by page."""
        ...

    def list_reviewable_hits(self, hit_type_id: str | None = None) -> Iterator[HitInfo]:
        """Yield HITs in status Reviewable (every page), optionally of one HIT type."""
        ...

    def list_assignments(
        self, hit_id: str, statuses: Sequence[str] = ASSIGNMENT_STATUSES
    ) -> Iterator[AssignmentInfo]:
        """Yield a HIT's assignments with the given statuses (every page)."""
        ...

    def get_assignment(self, assignment_id: str) -> AssignmentInfo:
        """Return one assignment by id."""
        ...

    def approve(self, assignment_id: str, feedback: str | None = None) -> None:
        """Approve a submitted assignment (pays the worker; a no-op on unpaid targets)."""
        ...

    def reject(self, assignment_id: str, feedback: str) -> None:
        """Reject a submitted assignment with a message to the worker."""
        ...

    def send_bonus(
        self, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str, token: str
    ) -> None:
        """Pay a bonus; raise :class:`DuplicateRequestError` if ``token`` was seen."""
        ...

    def list_bonuses(self, assignment_id: str) -> list[BonusInfo]:
        """Return the bonuses already paid for one assignment."""
        ...

    def list_hit_bonuses(self, hit_id: str) -> list[BonusInfo]:
        """Return the bonuses already paid for every assignment of one HIT."""
        ...

    def block_worker(self, worker_id: str, reason: str) -> None:
        """Stop a worker from working on this requester's HITs."""
        ...

    def extend_hit(self, hit_id: str, additional: int, token: str) -> None:
        """Add assignments to a HIT; raise :class:`DuplicateRequestError` on a seen token."""
        ...

    def expire_hit(self, hit_id: str) -> None:
        """Stop offering a HIT now (work in progress may still be submitted)."""
        ...

    def update_expiration(self, hit_id: str, expire_at: datetime) -> None:
        """Move a HIT's expiration (into the future to offer it again)."""
        ...

    def delete_hit(self, hit_id: str) -> None:
        """Delete a finished HIT (all assignments approved or rejected)."""
        ...

    def find_qualification_type(self, name: str) -> str | None:
        """Return the id of this requester's qualification type called ``name``, or None."""
        ...

    def create_qualification_type(self, name: str, description: str) -> str:
        """Create an active qualification type and return its id."""
        ...

    def grant_qualification(self, type_id: str, worker_id: str, value: int = 1) -> None:
        """Give a worker a qualification (without notifying them)."""
        ...
