"""The Requester API operations: each takes the validated request and returns the reply.

Replies are shaped as botocore's MTurk model expects (timestamps as epoch seconds, money
as two-decimal strings). Refusals raise :class:`~turk.sandbox.errors.ApiError` with the
``__type`` and ``TurkErrorCode`` MTurk uses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from turk.sandbox import market
from turk.sandbox.errors import ApiError, invalid_parameter, request_error
from turk.sandbox.model import validate
from turk.sandbox.store import Store, money, new_id

QUESTION_MAX_BYTES = 65535
"""MTurk's limit on the Question XML, whitespace included."""
QUESTION_ROOTS = ("HTMLQuestion", "ExternalQuestion", "QuestionForm")
TOKEN_LIFETIME_S = 24 * 3600
"""MTurk remembers a UniqueRequestToken for 24 hours."""
MIN_DURATION_S, MAX_DURATION_S = 30, 31536000
MAX_AUTO_APPROVAL_S = 2592000
DEFAULT_PAGE = 10

Handler = Callable[[Store, dict[str, Any]], dict[str, Any]]


# -- helpers -------------------------------------------------------------------------------


def _amount(value: str, name: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise invalid_parameter(
            f'The value "{value}" is not valid for the parameter {name}.'
        ) from None
    if amount < Decimal("0.01"):
        raise invalid_parameter(f"The value {value} for {name} is below the minimum of 0.01.")
    return amount


def _seconds(
    params: dict[str, Any], name: str, low: int, high: int, default: int | None = None
) -> int:
    value = params.get(name, default)
    if value is None:
        raise invalid_parameter(
            f"Your request is missing required parameters. Required parameters include {name}."
        )
    if not low <= int(value) <= high:
        raise invalid_parameter(
            f"The value {value} for {name} is out of range; it must be from {low} to {high}."
        )
    return int(value)


def _page(params: dict[str, Any]) -> tuple[int, int]:
    """Return (rowid after which to start, page size) from NextToken and MaxResults."""
    size = int(params.get("MaxResults") or DEFAULT_PAGE)
    token = params.get("NextToken")
    if not token:
        return 0, size
    try:
        after = int(json.loads(base64.urlsafe_b64decode(token.encode()))["after"])
    except (ValueError, KeyError, TypeError):
        raise invalid_parameter(
            f'The value "{token}" is not valid for the parameter NextToken.'
        ) from None
    return after, size


def _next_token(last_rowid: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_rowid}).encode()).decode()


def _paged(
    rows: list[sqlite3.Row], size: int, key: str, render: Callable[[sqlite3.Row], dict[str, Any]]
) -> dict[str, Any]:
    """Build a list reply from rows fetched with ``LIMIT size + 1`` (the extra tells more)."""
    page = rows[:size]
    reply: dict[str, Any] = {"NumResults": len(page), key: [render(r) for r in page]}
    if len(rows) > size:
        reply["NextToken"] = _next_token(int(page[-1]["rid"]))
    return reply


def _remembered(
    conn: sqlite3.Connection, operation: str, token: str | None, now: float
) -> str | None:
    if not token:
        return None
    row = conn.execute(
        "SELECT result FROM request_tokens WHERE operation = ? AND token = ? AND created > ?",
        (operation, token, now - TOKEN_LIFETIME_S),
    ).fetchone()
    return None if row is None else str(row[0])


def _remember(
    conn: sqlite3.Connection, operation: str, token: str | None, result: str, now: float
) -> None:
    if token:
        conn.execute(
            "INSERT OR REPLACE INTO request_tokens(operation, token, result, created) "
            "VALUES (?,?,?,?)",
            (operation, token, result, now),
        )


def _duplicate(token: str) -> ApiError:
    return request_error(
        f'The idempotency token "{token}" has already been processed.',
        "AWS.MechanicalTurk.DuplicateRequest",
    )


def _check_question(question: str) -> None:
    size = len(question.encode("utf-8"))
    if size > QUESTION_MAX_BYTES:
        raise invalid_parameter(
            f"The Question is {size} bytes; the XML question data must not be larger than "
            f"{QUESTION_MAX_BYTES} bytes."
        )
    try:
        root = SafeET.fromstring(question)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise ApiError(
            "ParameterValidationError",
            "There was an error parsing the XML question or answer data in your request. "
            "Please make sure the data is well-formed and validates against the appropriate "
            f"schema. Details: {exc}",
            "AWS.MechanicalTurk.XMLParseError",
        ) from None
    local = root.tag.rsplit("}", 1)[-1]
    if local not in QUESTION_ROOTS:
        raise ApiError(
            "ParameterValidationError",
            f"The Question root element is <{local}>; it must be one of "
            f"{', '.join(QUESTION_ROOTS)}.",
            "AWS.MechanicalTurk.XMLParseError",
        )
    children = {child.tag.rsplit("}", 1)[-1] for child in root}
    needed = {
        "HTMLQuestion": ("HTMLContent", "FrameHeight"),
        "ExternalQuestion": ("ExternalURL", "FrameHeight"),
    }
    for name in needed.get(local, ()):
        if name not in children:
            raise ApiError(
                "ParameterValidationError",
                f"The {local} has no <{name}> element.",
                "AWS.MechanicalTurk.XMLParseError",
            )
    if local == "ExternalQuestion":
        url = next((c.text or "" for c in root if c.tag.rsplit("}", 1)[-1] == "ExternalURL"), "")
        problem = market.external_url_problem(url)
        if problem is not None:
            raise ApiError(
                "ParameterValidationError",
                f"The ExternalQuestion is not valid: {problem}.",
                "AWS.MechanicalTurk.XMLParseError",
            )


def _check_requirements(conn: sqlite3.Connection, requirements: list[dict[str, Any]]) -> None:
    numeric = {"LessThan", "LessThanOrEqualTo", "GreaterThan", "GreaterThanOrEqualTo"}
    for index, requirement in enumerate(requirements):
        type_id = requirement["QualificationTypeId"]
        comparator = requirement["Comparator"]
        where = f"QualificationRequirements[{index}]"
        if type_id not in market.SYSTEM_QUALIFICATIONS:
            row = conn.execute(
                "SELECT 1 FROM qualification_types WHERE id = ? AND disposing = 0", (type_id,)
            ).fetchone()
            if row is None:
                raise request_error(
                    f"QualificationType {type_id} does not exist ({where}).",
                    "AWS.MechanicalTurk.QualificationTypeDoesNotExist",
                )
        values = requirement.get("IntegerValues") or []
        locales = requirement.get("LocaleValues") or []
        if comparator in ("Exists", "DoesNotExist"):
            if values or locales:
                raise invalid_parameter(
                    f"{where}: {comparator} takes no IntegerValues or LocaleValues."
                )
            continue
        if type_id == market.SYSTEM_LOCALE:
            if not locales or comparator in numeric:
                raise invalid_parameter(
                    f"{where}: Worker_Locale needs LocaleValues with EqualTo, NotEqualTo, "
                    "In or NotIn."
                )
        elif not values:
            raise invalid_parameter(f"{where}: {comparator} needs IntegerValues.")
        if comparator not in ("In", "NotIn") and len(values) + len(locales) > 1:
            raise invalid_parameter(f"{where}: {comparator} takes exactly one value.")


def _hit_type_id(conn: sqlite3.Connection, params: dict[str, Any], now: float) -> str:
    """Find or register the HIT type for these properties (MTurk reuses identical types)."""
    reward = money(_amount(params["Reward"], "Reward"))
    duration = _seconds(params, "AssignmentDurationInSeconds", MIN_DURATION_S, MAX_DURATION_S)
    delay = _seconds(params, "AutoApprovalDelayInSeconds", 0, MAX_AUTO_APPROVAL_S, 2592000)
    requirements = params.get("QualificationRequirements") or []
    _check_requirements(conn, requirements)
    properties = [
        params["Title"],
        params["Description"],
        params.get("Keywords") or "",
        reward,
        duration,
        delay,
        requirements,
    ]
    signature = hashlib.sha256(json.dumps(properties, sort_keys=True).encode()).hexdigest()
    row = conn.execute(
        "SELECT id FROM hit_types WHERE signature = ? AND disposed = 0", (signature,)
    ).fetchone()
    if row is not None:
        return str(row[0])
    type_id = new_id()
    conn.execute(
        "INSERT INTO hit_types(id, title, description, keywords, reward, assignment_duration, "
        "auto_approval_delay, qualification_requirements, signature, created) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            type_id,
            params["Title"],
            params["Description"],
            params.get("Keywords"),
            reward,
            duration,
            delay,
            json.dumps(requirements),
            signature,
            now,
        ),
    )
    return type_id


def hit_reply(hit: sqlite3.Row, now: float) -> dict[str, Any]:
    """Render a HIT row (from :data:`market.HIT_SELECT`) as MTurk's HIT structure.

    Args:
        hit: The row.
        now: The store's clock.

    Returns:
        The HIT dictionary.
    """
    counts = market.hit_counts(hit)
    reply: dict[str, Any] = {
        "HITId": hit["id"],
        "HITTypeId": hit["hit_type_id"],
        "HITGroupId": hit["hit_type_id"],
        "CreationTime": hit["created"],
        "Title": hit["title"],
        "Description": hit["description"],
        "Question": hit["question"],
        "HITStatus": market.hit_status(hit, counts, now),
        "MaxAssignments": hit["max_assignments"],
        "Reward": hit["reward"],
        "AutoApprovalDelayInSeconds": hit["auto_approval_delay"],
        "Expiration": hit["expiration"],
        "AssignmentDurationInSeconds": hit["assignment_duration"],
        "QualificationRequirements": json.loads(hit["qualification_requirements"]),
        "HITReviewStatus": hit["review_status"],
        "NumberOfAssignmentsPending": counts.pending,
        "NumberOfAssignmentsAvailable": counts.available,
        "NumberOfAssignmentsCompleted": counts.completed,
    }
    if hit["keywords"]:
        reply["Keywords"] = hit["keywords"]
    if hit["requester_annotation"] is not None:
        reply["RequesterAnnotation"] = hit["requester_annotation"]
    return reply


def assignment_reply(row: sqlite3.Row) -> dict[str, Any]:
    """Render an ``assignments`` row as MTurk's Assignment structure.

    Args:
        row: The row.

    Returns:
        The Assignment dictionary.
    """
    reply: dict[str, Any] = {
        "AssignmentId": row["id"],
        "WorkerId": row["worker_id"],
        "HITId": row["hit_id"],
        "AssignmentStatus": row["status"],
        "AcceptTime": row["accept_time"],
        "Deadline": row["deadline"],
    }
    for key, column in (
        ("SubmitTime", "submit_time"),
        ("AutoApprovalTime", "auto_approval_time"),
        ("ApprovalTime", "approval_time"),
        ("RejectionTime", "rejection_time"),
        ("Answer", "answer"),
        ("RequesterFeedback", "requester_feedback"),
    ):
        if row[column] is not None:
            reply[key] = row[column]
    return reply


def _visible_assignment(conn: sqlite3.Connection, assignment_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT rowid AS rid, * FROM assignments WHERE id = ? "
        "AND status IN ('Submitted', 'Approved', 'Rejected')",
        (assignment_id,),
    ).fetchone()
    if row is None:
        raise request_error(
            f"Assignment {assignment_id} does not exist.",
            "AWS.MechanicalTurk.AssignmentDoesNotExist",
        )
    return row


def _wrong_state(what: str, current: str, allowed: str) -> ApiError:
    code = (
        "AWS.MechanicalTurk.InvalidAssignmentState"
        if what == "assignment"
        else "AWS.MechanicalTurk.InvalidHITState"
    )
    return request_error(
        f"This {what} is currently in the state '{current}'. "
        f"This operation can be called with a status of: {allowed}",
        code,
    )


def _qualification_type_reply(row: sqlite3.Row) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "QualificationTypeId": row["id"],
        "CreationTime": row["created"],
        "Name": row["name"],
        "Description": row["description"],
        "QualificationTypeStatus": row["status"],
        "IsRequestable": True,
        "AutoGranted": bool(row["auto_granted"]),
    }
    for key, column in (
        ("Keywords", "keywords"),
        ("Test", "test"),
        ("AnswerKey", "answer_key"),
        ("TestDurationInSeconds", "test_duration"),
        ("RetryDelayInSeconds", "retry_delay"),
        ("AutoGrantedValue", "auto_granted_value"),
    ):
        if row[column] is not None:
            reply[key] = row[column]
    return reply


def _hit_type_row(conn: sqlite3.Connection, type_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT * FROM hit_types WHERE id = ? AND disposed = 0", (type_id,)
    ).fetchone()
    if row is None:
        raise request_error(
            f"HITType {type_id} does not exist.", "AWS.MechanicalTurk.HITTypeDoesNotExist"
        )
    return row


def _qualification_type_row(conn: sqlite3.Connection, type_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT * FROM qualification_types WHERE id = ? AND disposing = 0", (type_id,)
    ).fetchone()
    if row is None:
        raise request_error(
            f"QualificationType {type_id} does not exist.",
            "AWS.MechanicalTurk.QualificationTypeDoesNotExist",
        )
    return row


# -- operations ----------------------------------------------------------------------------


def get_account_balance(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GetAccountBalance."""
    return {"AvailableBalance": money(store.balance()), "OnHoldBalance": "0.00"}


def create_hit_type(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """CreateHITType: the id of the type with these properties (new or existing)."""
    with store.transaction() as conn:
        return {"HITTypeId": _hit_type_id(conn, params, store.now())}


def _create_hit(store: Store, params: dict[str, Any], type_id: str | None) -> dict[str, Any]:
    with store.transaction() as conn:
        now = store.now()
        token = params.get("UniqueRequestToken")
        existing = _remembered(conn, "CreateHIT", token, now)
        if existing is not None:
            raise request_error(
                f'There is already a HIT which exists with the same UniqueRequestToken "{token}": '
                f"HITId {existing}.",
                "AWS.MechanicalTurk.HitAlreadyExists",
            )
        if type_id is None:
            type_id = _hit_type_id(conn, params, now)
        else:
            _hit_type_row(conn, type_id)
        question = params.get("Question")
        if params.get("HITLayoutId"):
            raise request_error(
                f"HITLayout {params['HITLayoutId']} does not exist; pass a Question.",
                "AWS.MechanicalTurk.HITLayoutDoesNotExist",
            )
        if not question:
            raise invalid_parameter(
                "Either a Question parameter or a HITLayoutId parameter must be provided."
            )
        _check_question(question)
        lifetime = _seconds(params, "LifetimeInSeconds", MIN_DURATION_S, MAX_DURATION_S)
        max_assignments = int(params.get("MaxAssignments") or 1)
        if not 1 <= max_assignments <= 1000000:
            raise invalid_parameter(
                f"The value {max_assignments} for MaxAssignments must be from 1 to 1000000."
            )
        policies = {
            key: params[key]
            for key in ("AssignmentReviewPolicy", "HITReviewPolicy")
            if params.get(key)
        }
        hit_id = new_id()
        conn.execute(
            "INSERT INTO hits(id, hit_type_id, question, max_assignments, created, expiration, "
            "requester_annotation, review_status, review_policies) "
            "VALUES (?,?,?,?,?,?,?, 'NotReviewed', ?)",
            (
                hit_id,
                type_id,
                question,
                max_assignments,
                now,
                now + lifetime,
                params.get("RequesterAnnotation"),
                json.dumps(policies) if policies else None,
            ),
        )
        _remember(conn, "CreateHIT", token, hit_id, now)
        return {"HIT": hit_reply(market.get_hit_row(conn, hit_id), now)}


def create_hit(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """CreateHIT: register (or reuse) the HIT type, then create the HIT."""
    return _create_hit(store, params, None)


def create_hit_with_hit_type(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """CreateHITWithHITType."""
    return _create_hit(store, params, params["HITTypeId"])


def get_hit(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GetHIT."""
    with store.lock:
        return {"HIT": hit_reply(market.get_hit_row(store.conn, params["HITId"]), store.now())}


def list_hits(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListHITs: every HIT not yet disposed, oldest first."""
    after, size = _page(params)
    with store.lock:
        rows = store.conn.execute(
            f"{market.HIT_SELECT} WHERE h.disposed = 0 AND h.rowid > ? ORDER BY h.rowid LIMIT ?",
            (after, size + 1),
        ).fetchall()
        now = store.now()
        return _paged(rows, size, "HITs", lambda r: hit_reply(r, now))


def list_reviewable_hits(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListReviewableHITs: HITs in Reviewable (default) or Reviewing status."""
    after, size = _page(params)
    wanted = params.get("Status") or "Reviewable"
    type_id = params.get("HITTypeId")
    with store.lock:
        now = store.now()
        sql = f"{market.HIT_SELECT} WHERE h.disposed = 0 AND h.rowid > ?"
        args: list[Any] = [after]
        if type_id:
            sql += " AND h.hit_type_id = ?"
            args.append(type_id)
        matched: list[sqlite3.Row] = []
        for row in store.conn.execute(sql + " ORDER BY h.rowid", args):
            if market.hit_status(row, market.hit_counts(row), now) == wanted:
                matched.append(row)
                if len(matched) > size:
                    break
        reply = _paged(matched, size, "HITs", lambda r: hit_reply(r, now))
        # ListReviewableHITs' model has no NumResults-free variant; keep MTurk's reply keys.
        return reply


def update_expiration_for_hit(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateExpirationForHIT: a time in the past expires the HIT now."""
    with store.transaction() as conn:
        hit = market.get_hit_row(conn, params["HITId"])
        if hit["disposed"]:
            raise _wrong_state("HIT", "Disposed", "Assignable, Unassignable, Reviewable, Reviewing")
        now = store.now()
        expire_at = float(params["ExpireAt"])
        conn.execute(
            "UPDATE hits SET expiration = ? WHERE id = ?",
            (max(expire_at, now), hit["id"]),
        )
    return {}


def update_hit_review_status(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateHITReviewStatus: Reviewable -> Reviewing, or back with Revert."""
    with store.transaction() as conn:
        hit = market.get_hit_row(conn, params["HITId"])
        status = market.hit_status(hit, market.hit_counts(hit), store.now())
        if params.get("Revert"):
            if status != "Reviewing":
                raise _wrong_state("HIT", status, "Reviewing")
            conn.execute("UPDATE hits SET reviewing = 0 WHERE id = ?", (hit["id"],))
        else:
            if status != "Reviewable":
                raise _wrong_state("HIT", status, "Reviewable")
            conn.execute("UPDATE hits SET reviewing = 1 WHERE id = ?", (hit["id"],))
    return {}


def delete_hit(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteHIT: dispose of a Reviewable HIT whose submitted work is all approved or rejected."""
    with store.transaction() as conn:
        hit = market.get_hit_row(conn, params["HITId"])
        counts = market.hit_counts(hit)
        status = market.hit_status(hit, counts, store.now())
        if status == "Disposed":
            return {}
        if status not in ("Reviewable", "Reviewing") or counts.submitted > 0:
            current = (
                f"{status} with {counts.submitted} submitted assignments "
                "not yet approved or rejected"
                if counts.submitted
                else status
            )
            raise _wrong_state("HIT", current, "Reviewable (all assignments approved or rejected)")
        conn.execute("UPDATE hits SET disposed = 1 WHERE id = ?", (hit["id"],))
    return {}


def create_additional_assignments_for_hit(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """CreateAdditionalAssignmentsForHIT (with UniqueRequestToken)."""
    with store.transaction() as conn:
        now = store.now()
        token = params.get("UniqueRequestToken")
        if _remembered(conn, "CreateAdditionalAssignmentsForHIT", token, now) is not None:
            raise _duplicate(str(token))
        hit = market.get_hit_row(conn, params["HITId"])
        extra = int(params["NumberOfAdditionalAssignments"])
        if extra < 1:
            raise invalid_parameter(
                f"The value {extra} for NumberOfAdditionalAssignments must be at least 1."
            )
        if hit["disposed"]:
            raise _wrong_state("HIT", "Disposed", "Assignable, Unassignable, Reviewable")
        current = int(hit["max_assignments"])
        if current < 10 <= current + extra:
            raise request_error(
                f"HIT {hit['id']} has {current} assignments; HITs created with fewer than 10 "
                "assignments cannot be extended to 10 or more.",
                "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease",
            )
        conn.execute(
            "UPDATE hits SET max_assignments = ? WHERE id = ?", (current + extra, hit["id"])
        )
        _remember(conn, "CreateAdditionalAssignmentsForHIT", token, str(hit["id"]), now)
    return {}


def list_assignments_for_hit(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListAssignmentsForHIT: submitted, approved and rejected work, oldest first."""
    after, size = _page(params)
    statuses = params.get("AssignmentStatuses") or ["Submitted", "Approved", "Rejected"]
    with store.lock:
        market.get_hit_row(store.conn, params["HITId"])
        marks = ",".join("?" for _ in statuses)
        rows = store.conn.execute(
            f"SELECT rowid AS rid, * FROM assignments WHERE hit_id = ? AND status IN ({marks}) "
            "AND rowid > ? ORDER BY rowid LIMIT ?",
            (params["HITId"], *statuses, after, size + 1),
        ).fetchall()
        return _paged(rows, size, "Assignments", assignment_reply)


def get_assignment(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GetAssignment: the assignment and its HIT."""
    with store.lock:
        row = _visible_assignment(store.conn, params["AssignmentId"])
        hit = market.get_hit_row(store.conn, row["hit_id"])
        return {"Assignment": assignment_reply(row), "HIT": hit_reply(hit, store.now())}


def approve_assignment(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ApproveAssignment (OverrideRejection approves rejected work)."""
    with store.transaction() as conn:
        row = _visible_assignment(conn, params["AssignmentId"])
        status = str(row["status"])
        if status == "Rejected" and not params.get("OverrideRejection"):
            raise _wrong_state(
                "assignment", status, "Submitted (or Rejected with OverrideRejection)"
            )
        if status == "Approved":
            raise _wrong_state("assignment", status, "Submitted")
        hit = market.get_hit_row(conn, row["hit_id"])
        reward = Decimal(hit["reward"])
        cost = reward + market.fee_for(reward, market.commission_rate(int(hit["max_assignments"])))
        if store.balance() < cost:
            raise request_error(
                f"Your account balance ({money(store.balance())}) is too low to pay {money(cost)}.",
                "AWS.MechanicalTurk.InsufficientFunds",
            )
        market.approve(store, row, store.now(), params.get("RequesterFeedback"))
    return {}


def reject_assignment(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """RejectAssignment: only submitted work can be rejected."""
    with store.transaction() as conn:
        row = _visible_assignment(conn, params["AssignmentId"])
        if row["status"] != "Submitted":
            raise _wrong_state("assignment", str(row["status"]), "Submitted")
        conn.execute(
            "UPDATE assignments SET status = 'Rejected', rejection_time = ?, "
            "requester_feedback = ? "
            "WHERE id = ?",
            (store.now(), params["RequesterFeedback"], row["id"]),
        )
    return {}


def send_bonus(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """SendBonus (with UniqueRequestToken): pays the bonus plus MTurk's 20% fee."""
    with store.transaction() as conn:
        now = store.now()
        token = params.get("UniqueRequestToken")
        if _remembered(conn, "SendBonus", token, now) is not None:
            raise _duplicate(str(token))
        row = _visible_assignment(conn, params["AssignmentId"])
        if row["worker_id"] != params["WorkerId"]:
            raise invalid_parameter(
                f"Assignment {row['id']} was not done by worker {params['WorkerId']}."
            )
        amount = _amount(params["BonusAmount"], "BonusAmount")
        fee = market.fee_for(amount, Decimal("0.20"))
        if store.balance() < amount + fee:
            raise request_error(
                f"Your account balance ({money(store.balance())}) is too low to pay "
                f"{money(amount + fee)}.",
                "AWS.MechanicalTurk.InsufficientFunds",
            )
        cursor = conn.execute(
            "INSERT INTO bonuses(worker_id, assignment_id, hit_id, amount, reason, grant_time) "
            "VALUES (?,?,?,?,?,?)",
            (params["WorkerId"], row["id"], row["hit_id"], money(amount), params["Reason"], now),
        )
        store.charge("bonus", f"bonus-{cursor.lastrowid}", amount, fee)
        _remember(conn, "SendBonus", token, str(cursor.lastrowid), now)
    return {}


def list_bonus_payments(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListBonusPayments for one HIT or one assignment."""
    hit_id, assignment_id = params.get("HITId"), params.get("AssignmentId")
    if bool(hit_id) == bool(assignment_id):
        raise invalid_parameter("Pass exactly one of HITId and AssignmentId.")
    after, size = _page(params)
    with store.lock:
        if hit_id:
            market.get_hit_row(store.conn, hit_id)
            column, value = "hit_id", hit_id
        else:
            column, value = "assignment_id", assignment_id
        rows = store.conn.execute(
            f"SELECT seq AS rid, * FROM bonuses WHERE {column} = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (value, after, size + 1),
        ).fetchall()
    return _paged(
        rows,
        size,
        "BonusPayments",
        lambda r: {
            "WorkerId": r["worker_id"],
            "BonusAmount": r["amount"],
            "AssignmentId": r["assignment_id"],
            "Reason": r["reason"],
            "GrantTime": r["grant_time"],
        },
    )


def create_worker_block(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """CreateWorkerBlock: the worker can no longer accept this requester's HITs."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO blocks(worker_id, reason, created) VALUES (?,?,?) "
            "ON CONFLICT(worker_id) DO UPDATE SET reason = excluded.reason",
            (params["WorkerId"], params["Reason"], store.now()),
        )
    return {}


def delete_worker_block(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteWorkerBlock."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM blocks WHERE worker_id = ?", (params["WorkerId"],))
    return {}


def list_worker_blocks(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListWorkerBlocks."""
    after, size = _page(params)
    with store.lock:
        rows = store.conn.execute(
            "SELECT rowid AS rid, * FROM blocks WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, size + 1),
        ).fetchall()
    return _paged(
        rows, size, "WorkerBlocks", lambda r: {"WorkerId": r["worker_id"], "Reason": r["reason"]}
    )


def create_qualification_type(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """CreateQualificationType: names are unique per requester."""
    with store.transaction() as conn:
        _purge_disposed_types(conn)
        if conn.execute(
            "SELECT 1 FROM qualification_types WHERE name = ?", (params["Name"],)
        ).fetchone():
            raise request_error(
                f'You have already created a QualificationType with the name "{params["Name"]}". '
                "A QualificationType's name must be unique among your QualificationTypes.",
                "AWS.MechanicalTurk.QualificationTypeAlreadyExists",
            )
        _check_test_settings(params)
        type_id = new_id()
        conn.execute(
            "INSERT INTO qualification_types(id, name, description, keywords, status, retry_delay, "
            "test, answer_key, test_duration, auto_granted, auto_granted_value, created) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                type_id,
                params["Name"],
                params["Description"],
                params.get("Keywords"),
                params["QualificationTypeStatus"],
                params.get("RetryDelayInSeconds"),
                params.get("Test"),
                params.get("AnswerKey"),
                params.get("TestDurationInSeconds"),
                int(bool(params.get("AutoGranted"))),
                params.get("AutoGrantedValue"),
                store.now(),
            ),
        )
        return {
            "QualificationType": _qualification_type_reply(_qualification_type_row(conn, type_id))
        }


def get_qualification_type(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GetQualificationType."""
    with store.lock:
        row = _qualification_type_row(store.conn, params["QualificationTypeId"])
    return {"QualificationType": _qualification_type_reply(row)}


def list_qualification_types(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListQualificationTypes: the requester's types, filtered by Query on name and text."""
    after, size = _page(params)
    query = params.get("Query")
    sql = "SELECT rowid AS rid, * FROM qualification_types WHERE disposing = 0 AND rowid > ?"
    args: list[Any] = [after]
    if query:
        sql += " AND (name LIKE ? OR description LIKE ? OR keywords LIKE ?)"
        args += [f"%{query}%"] * 3
    with store.lock:
        rows = store.conn.execute(sql + " ORDER BY rowid LIMIT ?", (*args, size + 1)).fetchall()
    return _paged(rows, size, "QualificationTypes", _qualification_type_reply)


def associate_qualification_with_worker(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """AssociateQualificationWithWorker: grant (or update) a worker's qualification."""
    with store.transaction() as conn:
        _qualification_type_row(conn, params["QualificationTypeId"])
        market.grant(
            conn,
            params["QualificationTypeId"],
            params["WorkerId"],
            params.get("IntegerValue", 1),
            store.now(),
        )
    return {}


def disassociate_qualification_from_worker(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """DisassociateQualificationFromWorker: revoke a worker's qualification."""
    with store.transaction() as conn:
        _qualification_type_row(conn, params["QualificationTypeId"])
        cursor = conn.execute(
            "UPDATE qualifications SET status = 'Revoked' WHERE type_id = ? AND worker_id = ? "
            "AND status = 'Granted'",
            (params["QualificationTypeId"], params["WorkerId"]),
        )
        if cursor.rowcount == 0:
            raise request_error(
                f"Worker {params['WorkerId']} does not have qualification "
                f"{params['QualificationTypeId']}.",
                "AWS.MechanicalTurk.QualificationDoesNotExist",
            )
    return {}


def notify_workers(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """NotifyWorkers: store the message per worker; unknown workers are reported, not raised."""
    worker_ids: list[str] = params["WorkerIds"]
    if len(worker_ids) > 100:
        raise invalid_parameter("WorkerIds holds more than 100 workers.")
    failures = []
    with store.transaction() as conn:
        now = store.now()
        for worker_id in worker_ids:
            known = conn.execute("SELECT 1 FROM workers WHERE id = ?", (worker_id,)).fetchone()
            if known is None:
                failures.append(
                    {
                        "NotifyWorkersFailureCode": "HardFailure",
                        "NotifyWorkersFailureMessage": f"Worker {worker_id} does not exist.",
                        "WorkerId": worker_id,
                    }
                )
                continue
            conn.execute(
                "INSERT INTO notifications(subject, message, worker_id, sent) VALUES (?,?,?,?)",
                (params["Subject"], params["MessageText"], worker_id, now),
            )
    return {"NotifyWorkersFailureStatuses": failures}


# -- qualifications: scores, requests, updates, deletion -----------------------------------


def _uses_type(type_id: str) -> str:
    """SQL condition: the HIT type's requirements name this qualification type."""
    # Ids are upper-case letters and digits, so they hold no LIKE wildcards.
    return f"t.qualification_requirements LIKE '%\"{type_id}\"%'"


def _purge_disposed_types(conn: sqlite3.Connection) -> None:
    """Finish deletions: a deleted type goes (and frees its name) once no live HIT uses it."""
    for row in conn.execute("SELECT id FROM qualification_types WHERE disposing = 1").fetchall():
        live = conn.execute(
            "SELECT 1 FROM hits h JOIN hit_types t ON t.id = h.hit_type_id "
            f"WHERE h.disposed = 0 AND {_uses_type(str(row['id']))} LIMIT 1"
        ).fetchone()
        if live is None:
            conn.execute("DELETE FROM qualification_types WHERE id = ?", (row["id"],))


def _qualification_reply(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "QualificationTypeId": row["type_id"],
        "WorkerId": row["worker_id"],
        "GrantTime": row["granted"],
        "IntegerValue": row["integer_value"],
        "Status": row["status"],
    }


def _check_test_settings(merged: dict[str, Any]) -> None:
    """MTurk's rules between Test, AnswerKey, TestDurationInSeconds and AutoGranted."""
    if merged.get("Test"):
        _check_question(str(merged["Test"]))
        if merged.get("TestDurationInSeconds") is None:
            raise invalid_parameter(
                "TestDurationInSeconds is required when the QualificationType has a Test."
            )
        if merged.get("AutoGranted"):
            raise invalid_parameter(
                "AutoGranted cannot be true for a QualificationType with a Test."
            )
    elif merged.get("AnswerKey"):
        raise invalid_parameter("An AnswerKey needs a Test.")


def get_qualification_score(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GetQualificationScore: one worker's qualification of a type the requester owns."""
    with store.lock:
        _qualification_type_row(store.conn, params["QualificationTypeId"])
        row = store.conn.execute(
            "SELECT * FROM qualifications WHERE type_id = ? AND worker_id = ?",
            (params["QualificationTypeId"], params["WorkerId"]),
        ).fetchone()
    if row is None:
        raise request_error(
            f"You requested a Qualification that does not exist: worker {params['WorkerId']} "
            f"has no qualification {params['QualificationTypeId']}.",
            "AWS.MechanicalTurk.QualificationDoesNotExist",
        )
    return {"Qualification": _qualification_reply(row)}


def list_workers_with_qualification_type(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListWorkersWithQualificationType: granted (or revoked, with Status) qualifications."""
    after, size = _page(params)
    with store.lock:
        _qualification_type_row(store.conn, params["QualificationTypeId"])
        sql = "SELECT rowid AS rid, * FROM qualifications WHERE type_id = ? AND rowid > ?"
        args: list[Any] = [params["QualificationTypeId"], after]
        if params.get("Status"):
            sql += " AND status = ?"
            args.append(params["Status"])
        rows = store.conn.execute(sql + " ORDER BY rowid LIMIT ?", (*args, size + 1)).fetchall()
    return _paged(rows, size, "Qualifications", _qualification_reply)


def list_hits_for_qualification_type(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListHITsForQualificationType: live HITs whose requirements name the type."""
    after, size = _page(params)
    type_id = params["QualificationTypeId"]
    with store.lock:
        _qualification_type_row(store.conn, type_id)
        rows = store.conn.execute(
            f"{market.HIT_SELECT} WHERE h.disposed = 0 AND {_uses_type(type_id)} "
            "AND h.rowid > ? ORDER BY h.rowid LIMIT ?",
            (after, size + 1),
        ).fetchall()
        now = store.now()
        return _paged(rows, size, "HITs", lambda r: hit_reply(r, now))


def list_qualification_requests(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListQualificationRequests: pending requests (of one type, or of all the requester's)."""
    after, size = _page(params)
    sql = (
        "SELECT rowid AS rid, * FROM qualification_requests WHERE status = 'Pending' AND rowid > ?"
    )
    args: list[Any] = [after]
    with store.lock:
        if params.get("QualificationTypeId"):
            _qualification_type_row(store.conn, params["QualificationTypeId"])
            sql += " AND type_id = ?"
            args.append(params["QualificationTypeId"])
        rows = store.conn.execute(sql + " ORDER BY rowid LIMIT ?", (*args, size + 1)).fetchall()

    def render(row: sqlite3.Row) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "QualificationRequestId": row["id"],
            "QualificationTypeId": row["type_id"],
            "WorkerId": row["worker_id"],
            "SubmitTime": row["submit_time"],
        }
        if row["test"] is not None:
            reply["Test"] = row["test"]
        if row["answer"] is not None:
            reply["Answer"] = row["answer"]
        return reply

    return _paged(rows, size, "QualificationRequests", render)


def _pending_request(conn: sqlite3.Connection, request_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT * FROM qualification_requests WHERE id = ?", (request_id,)
    ).fetchone()
    if row is None:
        raise request_error(
            f"QualificationRequest {request_id} does not exist.",
            "AWS.MechanicalTurk.QualificationRequestDoesNotExist",
        )
    if row["status"] != "Pending":
        raise request_error(
            f"QualificationRequest {request_id} is currently in the state '{row['status']}'. "
            "This operation can be called with a status of: Pending",
            "AWS.MechanicalTurk.InvalidQualificationRequestState",
        )
    return row


def accept_qualification_request(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """AcceptQualificationRequest: grant the qualification (IntegerValue, default 1)."""
    with store.transaction() as conn:
        row = _pending_request(conn, params["QualificationRequestId"])
        _qualification_type_row(conn, str(row["type_id"]))
        now = store.now()
        value = params.get("IntegerValue")
        market.grant(
            conn, str(row["type_id"]), str(row["worker_id"]), 1 if value is None else value, now
        )
        conn.execute(
            "UPDATE qualification_requests SET status = 'Approved', decided = ? WHERE id = ?",
            (now, row["id"]),
        )
    return {}


def reject_qualification_request(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """RejectQualificationRequest: the worker may ask again after the type's RetryDelay."""
    with store.transaction() as conn:
        row = _pending_request(conn, params["QualificationRequestId"])
        conn.execute(
            "UPDATE qualification_requests SET status = 'Rejected', reason = ?, decided = ? "
            "WHERE id = ?",
            (params.get("Reason"), store.now(), row["id"]),
        )
    return {}


def update_qualification_type(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateQualificationType: change a type's description, status, test or auto-grant."""
    columns = {
        "Description": "description",
        "QualificationTypeStatus": "status",
        "Test": "test",
        "AnswerKey": "answer_key",
        "TestDurationInSeconds": "test_duration",
        "RetryDelayInSeconds": "retry_delay",
        "AutoGranted": "auto_granted",
        "AutoGrantedValue": "auto_granted_value",
    }
    with store.transaction() as conn:
        row = _qualification_type_row(conn, params["QualificationTypeId"])
        merged: dict[str, Any] = {key: row[column] for key, column in columns.items()}
        given = {key: params[key] for key in columns if params.get(key) is not None}
        merged.update(given)
        if given.get("Test") and "AutoGranted" not in given:
            merged["AutoGranted"] = False  # a new test replaces auto-granting
        if given.get("AutoGranted") and "Test" not in given:
            merged.update(Test=None, AnswerKey=None, TestDurationInSeconds=None)
        _check_test_settings(merged)
        merged["AutoGranted"] = int(bool(merged["AutoGranted"]))
        assignments = ", ".join(f"{column} = ?" for column in columns.values())
        conn.execute(
            f"UPDATE qualification_types SET {assignments} WHERE id = ?",
            (*(merged[key] for key in columns), row["id"]),
        )
        return {
            "QualificationType": _qualification_type_reply(_qualification_type_row(conn, row["id"]))
        }


def delete_qualification_type(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteQualificationType, as MTurk does it.

    Pending requests are rejected, HIT types that require the type are deleted, granted
    qualifications stay; the name is free again once no live HIT uses the type.
    """
    type_id = params["QualificationTypeId"]
    with store.transaction() as conn:
        _qualification_type_row(conn, type_id)
        now = store.now()
        conn.execute(
            "UPDATE qualification_requests SET status = 'Rejected', decided = ?, "
            "reason = 'The QualificationType was deleted.' "
            "WHERE type_id = ? AND status = 'Pending'",
            (now, type_id),
        )
        conn.execute(
            "UPDATE hit_types SET disposed = 1, signature = signature || ':deleted:' || id "
            "WHERE disposed = 0 AND id IN "
            f"(SELECT t.id FROM hit_types t WHERE {_uses_type(type_id)})"
        )
        conn.execute(
            "UPDATE qualification_types SET disposing = 1, status = 'Inactive' WHERE id = ?",
            (type_id,),
        )
        _purge_disposed_types(conn)
    return {}


# -- HITs: type change, review policies, file uploads ---------------------------------------


def update_hit_type_of_hit(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateHITTypeOfHIT: the HIT takes on the other type's title, reward, duration, etc."""
    with store.transaction() as conn:
        hit = market.get_hit_row(conn, params["HITId"])
        if hit["disposed"]:
            raise _wrong_state("HIT", "Disposed", "Assignable, Unassignable, Reviewable, Reviewing")
        _hit_type_row(conn, params["HITTypeId"])
        conn.execute(
            "UPDATE hits SET hit_type_id = ? WHERE id = ?", (params["HITTypeId"], hit["id"])
        )
    return {}


def list_review_policy_results_for_hit(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """ListReviewPolicyResultsForHIT: the HIT's review policies, with empty reports.

    The sandbox records the policies given at CreateHIT but does not run them, so the
    reports hold no results or actions.
    """
    with store.lock:
        hit = market.get_hit_row(store.conn, params["HITId"])
    policies = json.loads(hit["review_policies"] or "{}")
    levels = params.get("PolicyLevels") or ["Assignment", "HIT"]
    reply: dict[str, Any] = {"HITId": hit["id"]}
    for level in ("Assignment", "HIT"):
        policy = policies.get(f"{level}ReviewPolicy")
        if level not in levels or policy is None:
            continue
        reply[f"{level}ReviewPolicy"] = policy
        report: dict[str, Any] = {}
        if params.get("RetrieveResults"):
            report["ReviewResults"] = []
        if params.get("RetrieveActions"):
            report["ReviewActions"] = []
        reply[f"{level}ReviewReport"] = report
    return reply


def get_file_upload_url(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """GetFileUploadURL: the worker's page posts no files here, so none is ever stored."""
    with store.lock:
        row = _visible_assignment(store.conn, params["AssignmentId"])
    raise request_error(
        f"Assignment {row['id']} has no uploaded file for question "
        f"{params['QuestionIdentifier']} (only FileUploadAnswer questions hold files).",
        "AWS.MechanicalTurk.FileUploadAnswerDoesNotExist",
    )


# -- notifications --------------------------------------------------------------------------

NOTIFICATION_VERSION = "2006-05-05"
"""The only notification ``Version`` MTurk accepts."""


def _check_notification(spec: dict[str, Any]) -> None:
    transport, destination = spec["Transport"], spec["Destination"]
    if spec["Version"] != NOTIFICATION_VERSION:
        raise invalid_parameter(
            f'The value "{spec["Version"]}" is not valid for Notification.Version; '
            f"it must be {NOTIFICATION_VERSION}."
        )
    valid = {
        "Email": "@" in destination and " " not in destination,
        "SQS": destination.startswith("https://sqs."),
        "SNS": destination.startswith("arn:aws:sns:"),
    }[transport]
    if not valid:
        raise invalid_parameter(
            f'The value "{destination}" is not a valid Notification.Destination for '
            f"Transport {transport} (an email address, an https://sqs. queue URL or an "
            "arn:aws:sns: topic)."
        )
    if not spec["EventTypes"]:
        raise invalid_parameter("Notification.EventTypes must name at least one event.")


def update_notification_settings(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateNotificationSettings: set a HIT type's notification and/or switch it on or off."""
    spec, active = params.get("Notification"), params.get("Active")
    if spec is None and active is None:
        raise invalid_parameter("Pass Notification, Active or both.")
    if spec is not None:
        _check_notification(spec)
    with store.transaction() as conn:
        row = _hit_type_row(conn, params["HITTypeId"])
        if spec is None and row["notification"] is None:
            raise request_error(
                f"HITType {row['id']} has no notification to switch; pass a Notification.",
                "AWS.MechanicalTurk.NotificationDoesNotExist",
            )
        conn.execute(
            "UPDATE hit_types SET notification = ?, notification_active = ? WHERE id = ?",
            (
                json.dumps(spec) if spec is not None else row["notification"],
                int(True if active is None else active),
                row["id"],
            ),
        )
    return {}


def send_test_event_notification(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """SendTestEventNotification: checked and recorded (nothing leaves this machine)."""
    spec = params["Notification"]
    _check_notification(spec)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO event_notifications(hit_type_id, event_type, destination, transport, "
            "test, sent) VALUES (NULL, ?, ?, ?, 1, ?)",
            (params["TestEventType"], spec["Destination"], spec["Transport"], store.now()),
        )
    return {}


OPERATIONS: dict[str, Handler] = {
    "GetAccountBalance": get_account_balance,
    "CreateHITType": create_hit_type,
    "CreateHIT": create_hit,
    "CreateHITWithHITType": create_hit_with_hit_type,
    "GetHIT": get_hit,
    "ListHITs": list_hits,
    "ListReviewableHITs": list_reviewable_hits,
    "UpdateExpirationForHIT": update_expiration_for_hit,
    "UpdateHITReviewStatus": update_hit_review_status,
    "DeleteHIT": delete_hit,
    "CreateAdditionalAssignmentsForHIT": create_additional_assignments_for_hit,
    "ListAssignmentsForHIT": list_assignments_for_hit,
    "GetAssignment": get_assignment,
    "ApproveAssignment": approve_assignment,
    "RejectAssignment": reject_assignment,
    "SendBonus": send_bonus,
    "ListBonusPayments": list_bonus_payments,
    "CreateWorkerBlock": create_worker_block,
    "DeleteWorkerBlock": delete_worker_block,
    "ListWorkerBlocks": list_worker_blocks,
    "CreateQualificationType": create_qualification_type,
    "GetQualificationType": get_qualification_type,
    "ListQualificationTypes": list_qualification_types,
    "AssociateQualificationWithWorker": associate_qualification_with_worker,
    "DisassociateQualificationFromWorker": disassociate_qualification_from_worker,
    "NotifyWorkers": notify_workers,
    "GetQualificationScore": get_qualification_score,
    "ListWorkersWithQualificationType": list_workers_with_qualification_type,
    "ListHITsForQualificationType": list_hits_for_qualification_type,
    "ListQualificationRequests": list_qualification_requests,
    "AcceptQualificationRequest": accept_qualification_request,
    "RejectQualificationRequest": reject_qualification_request,
    "UpdateQualificationType": update_qualification_type,
    "DeleteQualificationType": delete_qualification_type,
    "UpdateHITTypeOfHIT": update_hit_type_of_hit,
    "ListReviewPolicyResultsForHIT": list_review_policy_results_for_hit,
    "GetFileUploadURL": get_file_upload_url,
    "UpdateNotificationSettings": update_notification_settings,
    "SendTestEventNotification": send_test_event_notification,
}
"""Every operation the sandbox answers, by MTurk's name."""


def handle(
    store: Store, operation: str, params: Any, sweep_interval: float = 0.0
) -> dict[str, Any]:
    """Answer one Requester API call.

    Args:
        store: The store.
        operation: The operation named in ``X-Amz-Target``.
        params: The decoded JSON body.
        sweep_interval: Minimum seconds between two sweeps of due transitions.

    Returns:
        The reply body.

    Raises:
        ApiError: The call is refused, in MTurk's shape.
    """
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise ApiError("UnknownOperationException", f"Unknown operation {operation}")
    validate(operation, params)
    market.sweep(store, sweep_interval)
    return handler(store, params)
