"""MTurk's marketplace rules over the store: fees, HIT states, deadlines, accept, submit.

Shared by the Requester API (:mod:`turk.sandbox.api`) and the worker pages
(:mod:`turk.sandbox.worker_pages`). Time-driven transitions (abandoned work, expired
HITs, auto-approval) are applied lazily by :func:`sweep` at the start of every request,
using the store's clock.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sqlite3
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from turk.sandbox.errors import ApiError, request_error
from turk.sandbox.store import CENT, Store, new_id

SYSTEM_APPROVAL_RATE = "000000000000000000L0"
"""Worker_PercentAssignmentsApproved: percent of a worker's decided assignments approved."""
SYSTEM_NUMBER_APPROVED = "00000000000000000040"
"""Worker_NumberHITsApproved: how many of a worker's assignments were approved."""
SYSTEM_LOCALE = "00000000000000000071"
"""Worker_Locale: the worker's country (and subdivision)."""
SYSTEM_QUALIFICATIONS = {SYSTEM_APPROVAL_RATE, SYSTEM_NUMBER_APPROVED, SYSTEM_LOCALE}

PREVIEW_ASSIGNMENT_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"
"""The ``assignmentId`` MTurk puts in the iframe URL while a worker only previews."""

ANSWER_NAMESPACE = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/"
    "QuestionFormAnswers.xsd"
)

LOCAL_HOSTS = ("localhost",)
"""Host names (besides loopback addresses) whose plain-http ExternalURLs are allowed."""

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def is_loopback(host: str | None) -> bool:
    """Tell whether a host name or address is this machine (``localhost``, 127.0.0.0/8, ::1).

    Args:
        host: A host name or IP address (IPv6 with or without brackets), or None.

    Returns:
        True for loopback hosts.
    """
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def external_url_problem(url: str) -> str | None:
    """Check an ExternalQuestion's ExternalURL as MTurk does: HTTPS only.

    Plain ``http`` is allowed for this machine only (``localhost``, ``127.0.0.1``,
    ``[::1]``, any port) so that pages served locally can be tested.

    Args:
        url: The ExternalURL text.

    Returns:
        None when the URL may be framed, else what is wrong with it.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return f"the ExternalURL {url!r} is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme == "https" and host:
        return None
    if scheme == "http" and is_loopback(host):
        return None
    return (
        f"the ExternalURL {url!r} must be an https URL (http is allowed only for "
        "localhost, 127.0.0.1 and [::1])"
    )


def fee_for(amount: Decimal, rate: Decimal) -> Decimal:
    """Return MTurk's commission on one payment: ``rate`` of it, at least one cent.

    Args:
        amount: The payment to the worker.
        rate: 0.20, or 0.40 for HITs with 10 or more assignments.

    Returns:
        The fee, rounded half-up to cents.
    """
    return max(CENT, (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP))


def commission_rate(max_assignments: int) -> Decimal:
    """Return MTurk's commission rate for a HIT.

    Args:
        max_assignments: The HIT's MaxAssignments.

    Returns:
        0.40 when ``max_assignments >= 10``, else 0.20.
    """
    return Decimal("0.40") if max_assignments >= 10 else Decimal("0.20")


HIT_SELECT = (
    "SELECT h.rowid AS rid, h.*, t.title, t.description, t.keywords, t.reward, "
    "t.assignment_duration, t.auto_approval_delay, t.qualification_requirements, "
    "(SELECT COUNT(*) FROM assignments a WHERE a.hit_id = h.id AND a.status = 'Accepted') "
    "AS n_accepted, "
    "(SELECT COUNT(*) FROM assignments a WHERE a.hit_id = h.id AND a.status = 'Submitted') "
    "AS n_submitted, "
    "(SELECT COUNT(*) FROM assignments a WHERE a.hit_id = h.id "
    "AND a.status IN ('Approved', 'Rejected')) AS n_decided "
    "FROM hits h JOIN hit_types t ON t.id = h.hit_type_id"
)
"""Select a HIT with its type's properties and its assignment counts (append a WHERE)."""


@dataclass
class HitCounts:
    """Assignment counts of one HIT, as MTurk reports them."""

    pending: int
    available: int
    completed: int
    submitted: int


def hit_counts(hit: sqlite3.Row) -> HitCounts:
    """Read a HIT's assignment counts from a row selected with :data:`HIT_SELECT`.

    Args:
        hit: The row.

    Returns:
        Pending (accepted, not submitted), available, completed (approved or rejected),
        and submitted (awaiting review).
    """
    pending = int(hit["n_accepted"])
    submitted = int(hit["n_submitted"])
    completed = int(hit["n_decided"])
    available = max(0, int(hit["max_assignments"]) - pending - submitted - completed)
    return HitCounts(pending, available, completed, submitted)


def hit_status(hit: sqlite3.Row, counts: HitCounts, now: float) -> str:
    """Return a HIT's HITStatus from its flags, counts and expiration.

    Args:
        hit: The ``hits`` row.
        counts: Its assignment counts.
        now: The store's clock.

    Returns:
        Assignable, Unassignable, Reviewable, Reviewing or Disposed.
    """
    if hit["disposed"]:
        return "Disposed"
    if hit["reviewing"]:
        return "Reviewing"
    if counts.available > 0 and float(hit["expiration"]) > now:
        return "Assignable"
    if counts.pending > 0:
        return "Unassignable"
    return "Reviewable"


def get_hit_row(conn: sqlite3.Connection, hit_id: str) -> sqlite3.Row:
    """Return the joined HIT and HIT type row, or raise MTurk's error for an unknown id.

    Args:
        conn: The store's connection.
        hit_id: The HIT id.

    Returns:
        The row (``hits`` columns plus the type's columns).

    Raises:
        ApiError: ``RequestError`` / ``AWS.MechanicalTurk.HITDoesNotExist``.
    """
    row = conn.execute(f"{HIT_SELECT} WHERE h.id = ?", (hit_id,)).fetchone()
    if row is None:
        raise request_error(f"Hit {hit_id} does not exist.", "AWS.MechanicalTurk.HITDoesNotExist")
    return row


def approve(store: Store, assignment: sqlite3.Row, when: float, feedback: str | None) -> None:
    """Mark an assignment approved and pay the reward plus MTurk's fee from the balance.

    Args:
        store: The store (called inside its transaction).
        assignment: The ``assignments`` row.
        when: Approval time.
        feedback: RequesterFeedback, or None to keep what is there.
    """
    conn = store.conn
    hit = get_hit_row(conn, assignment["hit_id"])
    reward = Decimal(hit["reward"])
    fee = fee_for(reward, commission_rate(int(hit["max_assignments"])))
    conn.execute(
        "UPDATE assignments SET status = 'Approved', approval_time = ?, rejection_time = NULL, "
        "requester_feedback = COALESCE(?, requester_feedback) WHERE id = ?",
        (when, feedback, assignment["id"]),
    )
    store.charge("assignment", str(assignment["id"]), reward, fee)


def sweep(store: Store, min_interval: float = 0.0) -> None:
    """Apply the time-driven transitions that are due on the store's clock.

    Accepted work past its deadline is abandoned (its slot frees up); submitted work past
    its auto-approval time is approved and paid.

    Args:
        store: The store.
        min_interval: Skip the sweep when the last one ran less than this many seconds ago.
    """
    now = store.now()
    if min_interval > 0 and now - store.last_sweep < min_interval:
        return
    with store.lock:
        store.last_sweep = now
        conn = store.conn
        due = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM assignments WHERE status = 'Accepted' AND deadline <= ?) "
            "OR EXISTS (SELECT 1 FROM assignments WHERE status = 'Submitted' "
            "AND auto_approval_time <= ?)",
            (now, now),
        ).fetchone()[0]
        if not due:  # the common case: no write transaction at all
            return
    with store.transaction() as conn:
        conn.execute(
            "UPDATE assignments SET status = 'Abandoned' "
            "WHERE status = 'Accepted' AND deadline <= ?",
            (now,),
        )
        due = conn.execute(
            "SELECT * FROM assignments WHERE status = 'Submitted' AND auto_approval_time <= ?",
            (now,),
        ).fetchall()
        for assignment in due:
            approve(store, assignment, float(assignment["auto_approval_time"]), None)


def worker_locale(conn: sqlite3.Connection, worker_id: str) -> tuple[str, str | None]:
    """Return a worker's (country, subdivision); unknown workers are in the US.

    Args:
        conn: The store's connection.
        worker_id: The worker.

    Returns:
        ISO country code and subdivision (or None).
    """
    row = conn.execute(
        "SELECT country, subdivision FROM workers WHERE id = ?", (worker_id,)
    ).fetchone()
    if row is None:
        return ("US", None)
    return (str(row[0]), None if row[1] is None else str(row[1]))


def set_worker_locale(store: Store, worker_id: str, country: str, subdivision: str | None) -> None:
    """Record a worker's locale (used by Worker_Locale requirements).

    Args:
        store: The store.
        worker_id: The worker.
        country: ISO 3166 country code, e.g. ``US``.
        subdivision: ISO 3166-2 subdivision, e.g. ``NY``, or None.
    """
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO workers(id, country, subdivision, created) VALUES (?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET country = excluded.country, "
            "subdivision = excluded.subdivision",
            (worker_id, country.upper(), subdivision.upper() if subdivision else None, store.now()),
        )


def _worker_value(conn: sqlite3.Connection, type_id: str, worker_id: str) -> int | None:
    if type_id in (SYSTEM_APPROVAL_RATE, SYSTEM_NUMBER_APPROVED):
        row = conn.execute(
            "SELECT SUM(status = 'Approved'), SUM(status = 'Rejected') FROM assignments "
            "WHERE worker_id = ?",
            (worker_id,),
        ).fetchone()
        approved, rejected = int(row[0] or 0), int(row[1] or 0)
        if type_id == SYSTEM_NUMBER_APPROVED:
            return approved
        decided = approved + rejected
        return 100 if decided == 0 else (approved * 100) // decided
    row = conn.execute(
        "SELECT integer_value FROM qualifications WHERE type_id = ? AND worker_id = ? "
        "AND status = 'Granted'",
        (type_id, worker_id),
    ).fetchone()
    if row is None:
        return None
    return 1 if row[0] is None else int(row[0])


def _compare(comparator: str, value: Any, wanted: list[Any]) -> bool:
    if comparator == "Exists":
        return value is not None
    if comparator == "DoesNotExist":
        return value is None
    if value is None or not wanted:
        return False
    first = wanted[0]
    if comparator == "EqualTo":
        return bool(value == first)
    if comparator == "NotEqualTo":
        return bool(value != first)
    if comparator == "In":
        return value in wanted
    if comparator == "NotIn":
        return value not in wanted
    if comparator == "LessThan":
        return bool(value < first)
    if comparator == "LessThanOrEqualTo":
        return bool(value <= first)
    if comparator == "GreaterThan":
        return bool(value > first)
    if comparator == "GreaterThanOrEqualTo":
        return bool(value >= first)
    return False


def _locale_matches(
    comparator: str, country: str, subdivision: str | None, wanted: list[Any]
) -> bool:
    def same(locale: dict[str, Any]) -> bool:
        if str(locale.get("Country", "")).upper() != country:
            return False
        wanted_sub = locale.get("Subdivision")
        return wanted_sub is None or str(wanted_sub).upper() == (subdivision or "")

    hit = any(same(locale) for locale in wanted)
    if comparator in ("EqualTo", "In"):
        return hit
    if comparator in ("NotEqualTo", "NotIn"):
        return not hit
    return comparator == "Exists"


def unmet_requirement(
    conn: sqlite3.Connection, requirements: list[dict[str, Any]], worker_id: str, action: str
) -> dict[str, Any] | None:
    """Return the first qualification requirement a worker fails, or None.

    Args:
        conn: The store's connection.
        requirements: The HIT type's QualificationRequirements.
        worker_id: The worker.
        action: ``Accept``, ``Preview`` or ``Discover``: requirements guard accepting by
            default, previewing with ``RequiredToPreview`` or ``ActionsGuarded``.

    Returns:
        The failing requirement, or None when the worker meets them all.
    """
    for requirement in requirements:
        guarded = requirement.get("ActionsGuarded") or (
            "PreviewAndAccept" if requirement.get("RequiredToPreview") else "Accept"
        )
        if action == "Preview" and guarded == "Accept":
            continue
        if action == "Discover" and guarded != "DiscoverPreviewAndAccept":
            continue
        type_id = str(requirement["QualificationTypeId"])
        comparator = str(requirement["Comparator"])
        if type_id == SYSTEM_LOCALE:
            country, subdivision = worker_locale(conn, worker_id)
            ok = _locale_matches(
                comparator, country, subdivision, list(requirement.get("LocaleValues") or [])
            )
        else:
            value = _worker_value(conn, type_id, worker_id)
            ok = _compare(comparator, value, list(requirement.get("IntegerValues") or []))
        if not ok:
            return requirement
    return None


def is_blocked(conn: sqlite3.Connection, worker_id: str) -> bool:
    """Tell whether the requester has blocked a worker.

    Args:
        conn: The store's connection.
        worker_id: The worker.

    Returns:
        True when blocked.
    """
    return (
        conn.execute("SELECT 1 FROM blocks WHERE worker_id = ?", (worker_id,)).fetchone()
        is not None
    )


class WorkerRefused(Exception):
    """A worker action the marketplace refuses (the page shows the message)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def accept(store: Store, hit_id: str, worker_id: str) -> str:
    """Accept a HIT for a worker, enforcing blocks, qualifications and availability.

    Args:
        store: The store.
        hit_id: The HIT.
        worker_id: The worker.

    Returns:
        The new assignment id (or the worker's assignment in progress for that HIT).

    Raises:
        WorkerRefused: The worker may not accept this HIT now; the message says why.
    """
    with store.transaction() as conn:
        try:
            hit = get_hit_row(conn, hit_id)
        except ApiError as exc:
            raise WorkerRefused(exc.message, 404) from exc
        if is_blocked(conn, worker_id):
            raise WorkerRefused(f"Worker {worker_id} is blocked by this requester.")
        previous = conn.execute(
            "SELECT id, status FROM assignments WHERE hit_id = ? AND worker_id = ? "
            "AND status NOT IN ('Abandoned', 'Returned')",
            (hit_id, worker_id),
        ).fetchone()
        if previous is not None:
            if previous["status"] == "Accepted":
                return str(previous["id"])
            raise WorkerRefused(f"Worker {worker_id} has already worked on HIT {hit_id}.", 409)
        requirements = json.loads(hit["qualification_requirements"])
        failed = unmet_requirement(conn, requirements, worker_id, "Accept")
        if failed is not None:
            raise WorkerRefused(
                f"Worker {worker_id} does not meet the qualification requirement "
                f"{failed['QualificationTypeId']} ({failed['Comparator']}) of HIT {hit_id}."
            )
        now = store.now()
        counts = hit_counts(hit)
        status = hit_status(hit, counts, now)
        if status != "Assignable":
            raise WorkerRefused(f"HIT {hit_id} is {status}: no assignment can be accepted.", 409)
        assignment_id = new_id()
        deadline = now + int(hit["assignment_duration"])
        conn.execute(
            "INSERT INTO assignments(id, hit_id, worker_id, status, accept_time, deadline) "
            "VALUES (?, ?, ?, 'Accepted', ?, ?)",
            (assignment_id, hit_id, worker_id, now, deadline),
        )
        register_worker(conn, worker_id, now)
    return assignment_id


def return_assignment(store: Store, assignment_id: str, worker_id: str) -> None:
    """Give back accepted work without submitting it (the slot frees up).

    Args:
        store: The store.
        assignment_id: The assignment.
        worker_id: The worker who holds it.

    Raises:
        WorkerRefused: Unknown assignment, another worker's, or not in progress.
    """
    with store.transaction() as conn:
        row = _worker_assignment(conn, assignment_id, worker_id)
        if row["status"] != "Accepted":
            raise WorkerRefused(f"Assignment {assignment_id} is {row['status']}.", 409)
        conn.execute("UPDATE assignments SET status = 'Returned' WHERE id = ?", (assignment_id,))


def _worker_assignment(
    conn: sqlite3.Connection, assignment_id: str, worker_id: str | None
) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM assignments WHERE id = ?", (assignment_id,)).fetchone()
    if row is None:
        raise WorkerRefused(f"Assignment {assignment_id} does not exist.", 404)
    if worker_id is not None and row["worker_id"] != worker_id:
        raise WorkerRefused(
            f"Assignment {assignment_id} belongs to another worker, not {worker_id}.", 403
        )
    return row


def answer_xml(fields: list[tuple[str, str]]) -> str:
    """Turn posted form fields into MTurk's QuestionFormAnswers XML.

    One ``Answer`` per field name, in first-seen order; repeated names (checkboxes) are
    joined with ``|`` as MTurk does. Characters XML cannot hold are dropped.

    Args:
        fields: (name, value) pairs as posted, without ``assignmentId``.

    Returns:
        The XML document.
    """
    merged: dict[str, list[str]] = {}
    for name, value in fields:
        merged.setdefault(name, []).append(value)
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n',
        f'<QuestionFormAnswers xmlns="{ANSWER_NAMESPACE}">',
    ]
    for name, values in merged.items():
        identifier = escape(_XML_INVALID.sub("", name))
        text = escape(_XML_INVALID.sub("", "|".join(values)))
        parts.append(
            f"<Answer><QuestionIdentifier>{identifier}</QuestionIdentifier>"
            f"<FreeText>{text}</FreeText></Answer>"
        )
    parts.append("</QuestionFormAnswers>")
    return "".join(parts)


def submit(
    store: Store, assignment_id: str, worker_id: str | None, fields: list[tuple[str, str]]
) -> str:
    """Submit a worker's answers for an assignment that worker holds.

    Args:
        store: The store.
        assignment_id: The assignment (from the form's ``assignmentId``).
        worker_id: The submitting worker (posted ``workerId``, or the signed-in worker);
            None when the submission names nobody.
        fields: The other posted fields.

    Returns:
        The HIT id.

    Raises:
        WorkerRefused: Preview id, no worker, unknown assignment, another worker's
            assignment (403), already submitted, or past deadline; nothing is changed.
    """
    if assignment_id == PREVIEW_ASSIGNMENT_ID:
        raise WorkerRefused("This HIT is only being previewed; accept it before submitting.", 400)
    if not worker_id:
        raise WorkerRefused(
            f"The submission for assignment {assignment_id} names no worker; "
            "sign in (workerId) as the worker who accepted it.",
            403,
        )
    with store.transaction() as conn:
        row = _worker_assignment(conn, assignment_id, worker_id)
        status = str(row["status"])
        now = store.now()
        if status == "Accepted" and float(row["deadline"]) <= now:
            conn.execute(
                "UPDATE assignments SET status = 'Abandoned' WHERE id = ?", (assignment_id,)
            )
            status = "Abandoned"
        if status in ("Submitted", "Approved", "Rejected"):
            raise WorkerRefused(f"Assignment {assignment_id} has already been submitted.", 409)
        if status != "Accepted":
            raise WorkerRefused(
                f"Assignment {assignment_id} is {status} (past its deadline or returned); "
                "it can no longer be submitted.",
                409,
            )
        hit = get_hit_row(conn, str(row["hit_id"]))
        conn.execute(
            "UPDATE assignments SET status = 'Submitted', submit_time = ?, auto_approval_time = ?, "
            "answer = ? WHERE id = ?",
            (now, now + int(hit["auto_approval_delay"]), answer_xml(fields), assignment_id),
        )
    return str(row["hit_id"])


def request_qualification(
    store: Store, type_id: str, worker_id: str, answer: str | None = None
) -> str:
    """A worker asks for a qualification, as on MTurk's "Request Qualification" button.

    An auto-granted type grants it at once (``AutoGrantedValue``, default 1). Any other
    type gets a pending request that the requester answers with
    AcceptQualificationRequest or RejectQualificationRequest. Without
    ``RetryDelayInSeconds`` a worker may ask only once; with it, again that long after a
    rejection. (The sandbox does not score an ``AnswerKey``: such requests stay pending.)

    Args:
        store: The store.
        type_id: The qualification type.
        worker_id: The worker.
        answer: The worker's answers to the type's Test (QuestionFormAnswers), if any.

    Returns:
        ``granted`` or the new request id.

    Raises:
        WorkerRefused: Unknown or inactive type, already granted, a request pending, or
            retries not allowed (yet).
    """
    with store.transaction() as conn:
        qtype = conn.execute(
            "SELECT * FROM qualification_types WHERE id = ? AND disposing = 0", (type_id,)
        ).fetchone()
        if qtype is None:
            raise WorkerRefused(f"Qualification type {type_id} does not exist.", 404)
        if qtype["status"] != "Active":
            raise WorkerRefused(f"Qualification type {type_id} is not active.", 409)
        held = conn.execute(
            "SELECT status FROM qualifications WHERE type_id = ? AND worker_id = ?",
            (type_id, worker_id),
        ).fetchone()
        if held is not None and held["status"] == "Granted":
            raise WorkerRefused(f"Worker {worker_id} already has qualification {type_id}.", 409)
        now = store.now()
        previous = conn.execute(
            "SELECT status, decided FROM qualification_requests WHERE type_id = ? "
            "AND worker_id = ? ORDER BY submit_time DESC LIMIT 1",
            (type_id, worker_id),
        ).fetchone()
        if previous is not None:
            if previous["status"] == "Pending":
                raise WorkerRefused(
                    f"Worker {worker_id} already has a pending request for {type_id}.", 409
                )
            delay = qtype["retry_delay"]
            if delay is None:
                raise WorkerRefused(
                    f"Qualification type {type_id} allows one request per worker.", 409
                )
            if previous["decided"] is not None and now < float(previous["decided"]) + delay:
                raise WorkerRefused(
                    f"Worker {worker_id} may ask for {type_id} again {delay} s after the "
                    "last answer.",
                    409,
                )
        register_worker(conn, worker_id, now)
        if qtype["auto_granted"]:
            value = qtype["auto_granted_value"]
            grant(conn, type_id, worker_id, 1 if value is None else int(value), now)
            return "granted"
        request_id = new_id()
        conn.execute(
            "INSERT INTO qualification_requests(id, type_id, worker_id, test, answer, "
            "submit_time, status) VALUES (?,?,?,?,?,?, 'Pending')",
            (request_id, type_id, worker_id, qtype["test"], answer, now),
        )
    return request_id


def register_worker(conn: sqlite3.Connection, worker_id: str, now: float) -> None:
    """Record a worker the first time they act (locale US until they set another).

    Args:
        conn: The store's connection, inside a transaction.
        worker_id: The worker.
        now: The store's clock.
    """
    conn.execute(
        "INSERT INTO workers(id, country, subdivision, created) VALUES (?, 'US', NULL, ?) "
        "ON CONFLICT(id) DO NOTHING",
        (worker_id, now),
    )


def grant(
    conn: sqlite3.Connection, type_id: str, worker_id: str, value: int | None, now: float
) -> None:
    """Grant (or re-grant, with a new value) a worker's qualification.

    Args:
        conn: The store's connection, inside a transaction.
        type_id: The qualification type.
        worker_id: The worker.
        value: The IntegerValue.
        now: Grant time.
    """
    conn.execute(
        "INSERT INTO qualifications(type_id, worker_id, integer_value, status, granted) "
        "VALUES (?,?,?, 'Granted', ?) ON CONFLICT(type_id, worker_id) DO UPDATE SET "
        "integer_value = excluded.integer_value, status = 'Granted', "
        "granted = excluded.granted",
        (type_id, worker_id, value, now),
    )
