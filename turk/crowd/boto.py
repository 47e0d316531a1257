"""The one crowd backend: Amazon's MTurk requester API through boto3, for every target.

``local``, ``mturk-sandbox`` and ``mturk`` share this code path and differ only in the
endpoint and the guards: ``local`` gets dummy credentials (nothing real is ever sent to
loopback), the Amazon targets need credentials from the standard AWS chain (profile or
environment), and ``mturk`` refuses every call that changes anything unless it was
opened with ``live=True``.

Throttling is handled twice: botocore's ``adaptive`` retry mode backs off and retries
throttled and failed requests, and a client-side token bucket (:class:`RateLimiter`)
keeps every request (retries included) under a steady rate shared by all threads.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from turk.crowd.backend import (
    ASSIGNMENT_STATUSES,
    ENDPOINTS,
    LOCAL,
    MTURK,
    MTURK_SANDBOX,
    AssignmentInfo,
    BonusInfo,
    CallStats,
    DuplicateRequestError,
    HitInfo,
    HitPage,
    HitTypeSpec,
    check_target,
)
from turk.errors import ConfigError, CrowdError, MoneyError

if TYPE_CHECKING:
    from mypy_boto3_mturk import MTurkClient

REGION = "us-east-1"
"""MTurk's only region (the sandbox and production both live there)."""

DEFAULT_RATES: dict[str, float] = {LOCAL: 0.0, MTURK_SANDBOX: 5.0, MTURK: 5.0}
"""Default client-side request rate per target, requests/s (0 = no limit)."""

_LOCAL_KEY = "turk-local"  # dummy credentials for the local server: it checks no signature
_T = TypeVar("_T")

# How MTurk (and the local server) word the answer to a repeated idempotency token.
_DUPLICATE_MARKERS = (
    "already been processed",
    "already processed",
    "already exists",
    "already been submitted",
    "already submitted",
    "already a hit",
    "same uniquerequesttoken",
    "idempotency token",
    "duplicate",
)
_EXISTING_ID = re.compile(r"\bHITId\s+([A-Za-z0-9]+)")


class TransientCrowdError(CrowdError):
    """A call failed after every retry for a reason that may pass (rerun later)."""


class RateLimiter:
    """A token bucket shared by threads: at most ``rate`` acquisitions per second.

    Args:
        rate: Steady acquisitions per second; 0 or less disables the limit.
        burst: How many acquisitions may happen back to back after an idle spell.
    """

    def __init__(self, rate: float, burst: int | None = None) -> None:
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1, int(rate)))
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until one request may go out."""
        if self.rate <= 0:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)


def _parse_hit(raw: Any) -> HitInfo:
    return HitInfo(
        hit_id=str(raw["HITId"]),
        hit_type_id=str(raw.get("HITTypeId", "")),
        status=str(raw.get("HITStatus", "")),
        max_assignments=int(raw.get("MaxAssignments", 0)),
        available=int(raw.get("NumberOfAssignmentsAvailable", 0)),
        pending=int(raw.get("NumberOfAssignmentsPending", 0)),
        completed=int(raw.get("NumberOfAssignmentsCompleted", 0)),
        annotation=str(raw.get("RequesterAnnotation", "") or ""),
        expiration=raw.get("Expiration"),
        reward=str(raw.get("Reward", "")),
    )


def _parse_assignment(raw: Any) -> AssignmentInfo:
    return AssignmentInfo(
        assignment_id=str(raw["AssignmentId"]),
        worker_id=str(raw.get("WorkerId", "")),
        hit_id=str(raw.get("HITId", "")),
        status=str(raw.get("AssignmentStatus", "")),
        answer_xml=str(raw.get("Answer", "") or ""),
        accept_time=raw.get("AcceptTime"),
        submit_time=raw.get("SubmitTime"),
        auto_approval_time=raw.get("AutoApprovalTime"),
        approval_time=raw.get("ApprovalTime"),
        rejection_time=raw.get("RejectionTime"),
    )


def is_duplicate_message(message: str) -> bool:
    """Tell whether a RequestError message says the idempotency token was already used.

    Args:
        message: The error message from the service.

    Returns:
        True for MTurk's "The idempotency token ... has already been processed" and the
        equivalent wordings.
    """
    text = message.lower()
    return any(marker in text for marker in _DUPLICATE_MARKERS)


class BotoBackend:
    """The MTurk requester API through boto3, for any target.

    Build it with :func:`connect`, which resolves the endpoint and credentials.

    Args:
        target: ``local``, ``mturk-sandbox`` or ``mturk``.
        client: A boto3 ``mturk`` client bound to the target's endpoint.
        endpoint_url: The endpoint the client talks to.
        live: Allow calls that change anything on ``mturk`` (production).
        rate: Client-side request rate limit, requests/s (0 = none).
    """

    def __init__(
        self,
        target: str,
        client: MTurkClient,
        endpoint_url: str,
        *,
        live: bool = False,
        rate: float = 0.0,
    ) -> None:
        self.target = check_target(target)
        self.client = client
        self.endpoint_url = endpoint_url
        self.live = live
        self.limiter = RateLimiter(rate)
        self.stats = CallStats()
        self._stats_lock = threading.Lock()
        events = client.meta.events
        events.register("before-call.mturk", self._count_call)
        events.register("before-send.mturk", self._before_send)

    # -- plumbing -----------------------------------------------------------------

    def _count_call(self, model: Any = None, **_: Any) -> None:
        name = getattr(model, "name", "?")
        with self._stats_lock:
            self.stats.calls[name] = self.stats.calls.get(name, 0) + 1

    def _before_send(self, **_: Any) -> None:
        self.limiter.acquire()
        with self._stats_lock:
            self.stats.requests += 1
        # Returning None lets botocore send the request itself.

    def _guard(self, operation: str) -> None:
        if self.target == MTURK and not self.live:
            raise MoneyError(
                f"{operation} on target mturk (production) refused: pass --live "
                "(and confirm) to change anything on the real marketplace"
            )

    def _call(self, operation: str, what: str, fn: Callable[[], _T]) -> _T:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        try:
            return fn()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Error"))
            message = str(error.get("Message", "")).strip()
            turk_code = str(exc.response.get("TurkErrorCode", ""))
            if code == "RequestError" and (
                is_duplicate_message(message) or turk_code.endswith("AlreadyExists")
            ):
                found = _EXISTING_ID.search(message)
                raise DuplicateRequestError(
                    f"{self.target}: {operation} {what}: request already processed",
                    existing_id=found.group(1) if found else None,
                ) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            kind = TransientCrowdError if code == "ServiceFault" or status >= 500 else CrowdError
            raise kind(
                f"{self.target}: {operation} {what} failed: {code}: {message or 'no message'}"
            ) from exc
        except NoCredentialsError as exc:
            raise CrowdError(
                f"{self.target}: no AWS credentials; set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (see README, 'Publishing')"
            ) from exc
        except EndpointConnectionError as exc:
            hint = " (is 'turk sandbox serve' running?)" if self.target == LOCAL else ""
            raise TransientCrowdError(
                f"{self.target}: cannot reach {self.endpoint_url}{hint}; rerun when it is up"
            ) from exc
        except (ConnectionClosedError, ReadTimeoutError) as exc:
            raise TransientCrowdError(
                f"{self.target}: {operation} {what}: no answer from {self.endpoint_url} "
                "after retries; rerun to resume"
            ) from exc
        except BotoCoreError as exc:
            raise TransientCrowdError(f"{self.target}: {operation} {what} failed: {exc}") from exc

    def _pages(self, operation: str, what: str, key: str, request: dict[str, Any]) -> Iterator[Any]:
        from botocore import xform_name

        method = getattr(self.client, xform_name(operation))
        token: str | None = None
        while True:
            args = dict(request)
            if token:
                args["NextToken"] = token
            page = self._call(operation, what, lambda a=args: method(**a))  # type: ignore[misc]
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    # -- the interface --------------------------------------------------------------

    def balance(self) -> Decimal | None:
        """Return the available balance in USD (the sandbox reports a fixed amount)."""
        out = self._call("GetAccountBalance", "", self.client.get_account_balance)
        raw = out.get("AvailableBalance")
        return Decimal(str(raw)) if raw is not None else None

    def create_hit_type(self, spec: HitTypeSpec) -> str:
        """Register a HIT type (MTurk returns the same id for the same properties)."""
        self._guard("CreateHITType")
        args: dict[str, Any] = {
            "AutoApprovalDelayInSeconds": spec.auto_approval_delay_s,
            "AssignmentDurationInSeconds": spec.assignment_duration_s,
            "Reward": f"{spec.reward:.2f}",
            "Title": spec.title,
            "Keywords": spec.keywords,
            "Description": spec.description,
        }
        if spec.qualifications:
            args["QualificationRequirements"] = [q.to_api() for q in spec.qualifications]
        out = self._call(
            "CreateHITType", repr(spec.title), lambda: self.client.create_hit_type(**args)
        )
        return str(out["HITTypeId"])

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
        """Create a HIT of a HIT type with an idempotency token (``page`` is not sent)."""
        self._guard("CreateHITWithHITType")
        out = self._call(
            "CreateHITWithHITType",
            annotation,
            lambda: self.client.create_hit_with_hit_type(
                HITTypeId=hit_type_id,
                MaxAssignments=max_assignments,
                LifetimeInSeconds=lifetime_s,
                Question=question_xml,
                RequesterAnnotation=annotation,
                UniqueRequestToken=token,
            ),
        )
        return _parse_hit(out["HIT"])

    def get_hit(self, hit_id: str) -> HitInfo:
        """Return one HIT."""
        out = self._call("GetHIT", hit_id, lambda: self.client.get_hit(HITId=hit_id))
        return _parse_hit(out["HIT"])

    def list_hits(self) -> Iterator[HitInfo]:
        """Yield every HIT of the account (100 per page)."""
        for raw in self._pages("ListHITs", "", "HITs", {"MaxResults": 100}):
            yield _parse_hit(raw)

    def list_reviewable_hits(self, hit_type_id: str | None = None) -> Iterator[HitInfo]:
        """Yield Reviewable HITs (100 per page), optionally of one HIT type."""
        request: dict[str, Any] = {"Status": "Reviewable", "MaxResults": 100}
        if hit_type_id:
            request["HITTypeId"] = hit_type_id
        for raw in self._pages("ListReviewableHITs", hit_type_id or "", "HITs", request):
            yield _parse_hit(raw)

    def list_assignments(
        self, hit_id: str, statuses: Sequence[str] = ASSIGNMENT_STATUSES
    ) -> Iterator[AssignmentInfo]:
        """Yield a HIT's assignments of the given statuses (100 per page)."""
        request = {"HITId": hit_id, "MaxResults": 100, "AssignmentStatuses": list(statuses)}
        for raw in self._pages("ListAssignmentsForHIT", hit_id, "Assignments", request):
            yield _parse_assignment(raw)

    def get_assignment(self, assignment_id: str) -> AssignmentInfo:
        """Return one assignment."""
        out = self._call(
            "GetAssignment",
            assignment_id,
            lambda: self.client.get_assignment(AssignmentId=assignment_id),
        )
        return _parse_assignment(out["Assignment"])

    def approve(self, assignment_id: str, feedback: str | None = None) -> None:
        """Approve a submitted assignment."""
        self._guard("ApproveAssignment")
        args: dict[str, Any] = {"AssignmentId": assignment_id}
        if feedback:
            args["RequesterFeedback"] = feedback[:1024]
        self._call(
            "ApproveAssignment", assignment_id, lambda: self.client.approve_assignment(**args)
        )

    def reject(self, assignment_id: str, feedback: str) -> None:
        """Reject a submitted assignment, telling the worker why."""
        self._guard("RejectAssignment")
        self._call(
            "RejectAssignment",
            assignment_id,
            lambda: self.client.reject_assignment(
                AssignmentId=assignment_id, RequesterFeedback=feedback[:1024]
            ),
        )

    def send_bonus(
        self, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str, token: str
    ) -> None:
        """Pay a bonus with an idempotency token."""
        self._guard("SendBonus")
        self._call(
            "SendBonus",
            assignment_id,
            lambda: self.client.send_bonus(
                WorkerId=worker_id,
                BonusAmount=f"{amount:.2f}",
                AssignmentId=assignment_id,
                Reason=reason,
                UniqueRequestToken=token,
            ),
        )

    def list_bonuses(self, assignment_id: str) -> list[BonusInfo]:
        """Return the bonuses paid for one assignment."""
        return self._bonuses({"AssignmentId": assignment_id}, assignment_id)

    def list_hit_bonuses(self, hit_id: str) -> list[BonusInfo]:
        """Return the bonuses paid for every assignment of one HIT (one call per page)."""
        return self._bonuses({"HITId": hit_id}, hit_id)

    def _bonuses(self, key: dict[str, str], what: str) -> list[BonusInfo]:
        request: dict[str, Any] = {**key, "MaxResults": 100}
        return [
            BonusInfo(
                worker_id=str(raw.get("WorkerId", "")),
                assignment_id=str(raw.get("AssignmentId", "")),
                amount=Decimal(str(raw.get("BonusAmount", "0"))),
                reason=str(raw.get("Reason", "")),
            )
            for raw in self._pages("ListBonusPayments", what, "BonusPayments", request)
        ]

    def block_worker(self, worker_id: str, reason: str) -> None:
        """Block a worker from this requester's HITs."""
        self._guard("CreateWorkerBlock")
        self._call(
            "CreateWorkerBlock",
            worker_id,
            lambda: self.client.create_worker_block(WorkerId=worker_id, Reason=reason),
        )

    def extend_hit(self, hit_id: str, additional: int, token: str) -> None:
        """Add assignments to a HIT with an idempotency token."""
        self._guard("CreateAdditionalAssignmentsForHIT")
        self._call(
            "CreateAdditionalAssignmentsForHIT",
            hit_id,
            lambda: self.client.create_additional_assignments_for_hit(
                HITId=hit_id, NumberOfAdditionalAssignments=additional, UniqueRequestToken=token
            ),
        )

    def expire_hit(self, hit_id: str) -> None:
        """Expire a HIT now (an expiration in the past, as MTurk documents)."""
        self.update_expiration(hit_id, datetime(2015, 1, 1, tzinfo=UTC))

    def update_expiration(self, hit_id: str, expire_at: datetime) -> None:
        """Move a HIT's expiration."""
        self._guard("UpdateExpirationForHIT")
        self._call(
            "UpdateExpirationForHIT",
            hit_id,
            lambda: self.client.update_expiration_for_hit(HITId=hit_id, ExpireAt=expire_at),
        )

    def delete_hit(self, hit_id: str) -> None:
        """Delete a finished HIT."""
        self._guard("DeleteHIT")
        self._call("DeleteHIT", hit_id, lambda: self.client.delete_hit(HITId=hit_id))

    def find_qualification_type(self, name: str) -> str | None:
        """Return the id of this requester's qualification type called exactly ``name``."""
        request = {
            "Query": name,
            "MustBeRequestable": False,
            "MustBeOwnedByCaller": True,
            "MaxResults": 100,
        }
        for raw in self._pages("ListQualificationTypes", name, "QualificationTypes", request):
            if raw.get("Name") == name and raw.get("QualificationTypeStatus", "Active") == "Active":
                return str(raw["QualificationTypeId"])
        return None

    def create_qualification_type(self, name: str, description: str) -> str:
        """Create an active qualification type."""
        self._guard("CreateQualificationType")
        out = self._call(
            "CreateQualificationType",
            repr(name),
            lambda: self.client.create_qualification_type(
                Name=name, Description=description, QualificationTypeStatus="Active"
            ),
        )
        return str(out["QualificationType"]["QualificationTypeId"])

    def grant_qualification(self, type_id: str, worker_id: str, value: int = 1) -> None:
        """Give a worker a qualification, silently."""
        self._guard("AssociateQualificationWithWorker")
        self._call(
            "AssociateQualificationWithWorker",
            worker_id,
            lambda: self.client.associate_qualification_with_worker(
                QualificationTypeId=type_id,
                WorkerId=worker_id,
                IntegerValue=value,
                SendNotification=False,
            ),
        )


def connect(
    target: str,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    live: bool = False,
    rate: float | None = None,
    max_attempts: int = 8,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    max_pool_connections: int = 32,
) -> BotoBackend:
    """Open the crowd backend for a target.

    Args:
        target: ``local``, ``mturk-sandbox`` or ``mturk``.
        endpoint_url: Overrides the target's endpoint (for ``local``: where
            ``turk sandbox serve`` listens).
        profile: AWS profile name; None uses the standard chain (environment, default
            profile, instance role).
        live: Allow changes on ``mturk`` (production); ignored on the other targets.
        rate: Client-side request limit in requests/s; None takes the target's default.
        max_attempts: Attempts per call, first try included (adaptive retry mode).
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for an answer.
        max_pool_connections: HTTP connections kept open (>= the publish concurrency).

    Returns:
        A ready :class:`BotoBackend`.

    Raises:
        ConfigError: Unknown target.
        CrowdError: No credentials for an Amazon target, or an unknown profile.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ProfileNotFound

    check_target(target)
    if target not in ENDPOINTS:
        raise ConfigError(
            f"target {target} does not speak the MTurk API; open it with "
            "turk.crowd.targets.open_backend"
        )
    url = endpoint_url or ENDPOINTS[target]
    config = Config(
        region_name=REGION,
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
    )
    if target == LOCAL:
        # Real credentials are never sent to the local server.
        session = boto3.Session(
            aws_access_key_id=_LOCAL_KEY, aws_secret_access_key=_LOCAL_KEY, region_name=REGION
        )
    else:
        try:
            session = boto3.Session(profile_name=profile, region_name=REGION)
        except ProfileNotFound as exc:
            raise CrowdError(
                f"--profile {profile!r}: no such AWS profile in ~/.aws/config or "
                "~/.aws/credentials; create it or pass another"
            ) from exc
        if session.get_credentials() is None:
            raise CrowdError(
                f"target {target}: no AWS credentials found; set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for an IAM user with "
                "AmazonMechanicalTurkFullAccess (see README, 'Publishing')"
            )
    client = session.client("mturk", endpoint_url=url, config=config)
    limit = DEFAULT_RATES[target] if rate is None else rate
    return BotoBackend(target, client, url, live=live, rate=limit)
