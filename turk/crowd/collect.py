"""Collect workers' assignments from a crowd target into the ledger, incrementally.

For the HITs of the ledger that may have new work, collect asks the backend which HITs
are Reviewable (every page of ListReviewableHITs, per HIT type) and, for HITs still
open, reads their counts from ListHITs. Only HITs whose count of finished assignments
is higher than what the ledger holds get a ListAssignmentsForHIT (every page, statuses
Submitted, Approved and Rejected, so auto-approved work is never missed). A rerun with
nothing new makes no per-HIT call at all.

Each new assignment's raw answer XML is stored before it is parsed; parsing (with
defusedxml) then writes one ``answers`` row per item per worker. Answers that do not fit
the HIT are kept raw and flagged; hostile XML is refused and flagged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from turk.crowd.answers import ItemSpec, parse_answer
from turk.crowd.backend import AssignmentInfo, CrowdBackend, HitInfo
from turk.crowd.lock import crowd_lock
from turk.crowd.records import iso, rows
from turk.ledger import Ledger, utc_now


@dataclass
class CollectReport:
    """What one collect run did.

    Attributes:
        target: The crowd target.
        hits_checked: HITs of the ledger that could have new work.
        hits_fetched: HITs whose assignments were listed (something was new).
        assignments_new: Assignments stored for the first time.
        assignments_updated: Stored assignments whose status changed (e.g. auto-approved).
        answers: Answer rows written.
        flagged: New assignments whose answers do not fit the HIT (kept, flagged).
        refused: New assignments with malformed or hostile XML (kept raw, flagged).
        calls: API calls made, by operation.
        flags: One line per flagged or refused assignment.
    """

    target: str
    hits_checked: int = 0
    hits_fetched: int = 0
    assignments_new: int = 0
    assignments_updated: int = 0
    answers: int = 0
    flagged: int = 0
    refused: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def _work_time(info: AssignmentInfo) -> float | None:
    if info.accept_time is None or info.submit_time is None:
        return None
    return max(0.0, (info.submit_time - info.accept_time).total_seconds())


def hit_items(ledger: Ledger, target: str, hit_key: str) -> list[ItemSpec]:
    """Return the items of one HIT as the ledger planned them.

    Args:
        ledger: The open ledger.
        target: The crowd target.
        hit_key: The HIT's key.

    Returns:
        The items in position order.
    """
    return [
        ItemSpec(
            position=int(r["position"]),
            field=str(r["field"]),
            image_id=int(r["image_id"]),
            concept=r["concept"],
            is_gold=bool(r["is_gold"]),
            expected=r["expected"],
        )
        for r in rows(
            ledger.conn,
            "SELECT * FROM hit_items WHERE target=? AND hit_key=? ORDER BY position",
            (target, hit_key),
        )
    ]


def store_assignment(
    ledger: Ledger, target: str, hit: dict[str, Any], info: AssignmentInfo
) -> tuple[str, int, str | None] | None:
    """Store one new assignment: the raw XML first, then its parsed answers.

    Args:
        ledger: The open ledger.
        target: The crowd target.
        hit: The ``hits`` row it belongs to.
        info: The assignment as the backend returned it.

    Returns:
        ``(parse status, answer rows written, flag)``, or None when the ledger already
        held the assignment (stored meanwhile by another process): nothing is written.
    """
    conn = ledger.conn
    work_time = _work_time(info)
    with conn:
        inserted = conn.execute(
            "INSERT OR IGNORE INTO assignments (target, assignment_id, hit_id, hit_key, worker_id, "
            "status, accept_time, submit_time, auto_approval_time, approval_time, "
            "rejection_time, work_time_s, answer_xml, parse_status, fetched_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'raw', ?)",
            (
                target,
                info.assignment_id,
                info.hit_id,
                hit["hit_key"],
                info.worker_id,
                info.status,
                iso(info.accept_time),
                iso(info.submit_time),
                iso(info.auto_approval_time),
                iso(info.approval_time),
                iso(info.rejection_time),
                work_time,
                info.answer_xml,
                utc_now(),
            ),
        ).rowcount
    if not inserted:
        return None
    return parse_stored(ledger, target, info.assignment_id, hit)


def parse_stored(
    ledger: Ledger, target: str, assignment_id: str, hit: dict[str, Any]
) -> tuple[str, int, str | None]:
    """Parse a stored assignment's raw XML into ``answers`` rows (replacing earlier ones).

    Args:
        ledger: The open ledger.
        target: The crowd target.
        assignment_id: The stored assignment.
        hit: The ``hits`` row it belongs to.

    Returns:
        ``(parse status, answer rows written, flag)``.
    """
    conn = ledger.conn
    stored = rows(
        conn,
        "SELECT worker_id, answer_xml, work_time_s FROM assignments "
        "WHERE target=? AND assignment_id=?",
        (target, assignment_id),
    )[0]
    items = hit_items(ledger, target, hit["hit_key"])
    labels = json.loads(hit["labels"] or "[]")
    result = parse_answer(stored["answer_xml"], items, hit["task"], labels)
    with conn:
        conn.execute(
            "DELETE FROM answers WHERE target=? AND assignment_id=?", (target, assignment_id)
        )
        conn.executemany(
            "INSERT INTO answers (target, assignment_id, worker_id, hit_key, field, position, "
            "image_id, concept, value, label, is_gold, expected, correct, work_time_s, flag) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    target,
                    assignment_id,
                    stored["worker_id"],
                    hit["hit_key"],
                    a.field,
                    a.position,
                    a.image_id,
                    a.concept,
                    a.value,
                    a.label,
                    int(a.is_gold),
                    a.expected,
                    None if a.correct is None else int(a.correct),
                    stored["work_time_s"],
                    a.flag,
                )
                for a in result.answers
            ],
        )
        conn.execute(
            "UPDATE assignments SET parse_status=?, flag=? WHERE target=? AND assignment_id=?",
            (result.status, result.flag, target, assignment_id),
        )
    return result.status, len(result.answers), result.flag


def _open_hits(ledger: Ledger, target: str, batch_id: str | None) -> list[dict[str, Any]]:
    # HITs that may have new work, and HITs holding work whose auto-approval time has
    # passed (its status changed on the service without anything new to count).
    sql = (
        "SELECT * FROM hits WHERE target=? AND hit_id IS NOT NULL "
        "AND status IN ('published', 'expired') "
        "AND (assignments_collected < max_assignments OR hit_id IN ("
        "  SELECT hit_id FROM assignments WHERE target=hits.target AND status='Submitted' "
        "  AND auto_approval_time <= ?))"
    )
    params: list[Any] = [target, utc_now()]
    if batch_id:
        sql += " AND batch_id=?"
        params.append(batch_id)
    return rows(ledger.conn, sql + " ORDER BY id", tuple(params))


def _hit_counts(
    backend: CrowdBackend, wanted: dict[str, dict[str, Any]], include_open: bool
) -> dict[str, HitInfo]:
    found: dict[str, HitInfo] = {}
    for hit_type_id in sorted({str(h["hit_type_id"]) for h in wanted.values()}):
        for info in backend.list_reviewable_hits(hit_type_id):
            if info.hit_id in wanted:
                found[info.hit_id] = info
    if include_open and len(found) < len(wanted):
        for info in backend.list_hits():
            if info.hit_id in wanted and info.hit_id not in found:
                found[info.hit_id] = info
                if len(found) == len(wanted):
                    break
    return found


def _update_hit(ledger: Ledger, target: str, info: HitInfo, collected: int) -> None:
    with ledger.conn:
        ledger.conn.execute(
            "UPDATE hits SET hit_status=?, assignments_available=?, assignments_pending=?, "
            "assignments_completed=?, assignments_collected=?, max_assignments="
            "MAX(max_assignments, ?), expires_at=COALESCE(?, expires_at), checked_at=? "
            "WHERE target=? AND hit_id=?",
            (
                info.status,
                info.available,
                info.pending,
                info.completed,
                collected,
                info.max_assignments,
                iso(info.expiration),
                utc_now(),
                target,
                info.hit_id,
            ),
        )


def collect(
    ledger: Ledger,
    backend: CrowdBackend,
    *,
    batch_id: str | None = None,
    include_open: bool = True,
    concurrency: int = 4,
    on_progress: Callable[[int], None] | None = None,
) -> CollectReport:
    """Fetch what is new on the target and store it in the ledger.

    Args:
        ledger: The open ledger.
        backend: The target's crowd backend.
        batch_id: Only this batch's HITs (None: every batch on the target).
        include_open: Also look at HITs still open to workers (one ListHITs scan);
            false collects only HITs that are Reviewable.
        concurrency: Parallel ListAssignmentsForHIT calls.
        on_progress: Called with the number of HITs just looked at.

    Returns:
        The :class:`CollectReport`.

    Raises:
        BusyError: Another command holds the target's lock.
    """
    with crowd_lock(ledger, backend.target, "collect"):
        return _collect(ledger, backend, batch_id, include_open, concurrency, on_progress)


def _collect(
    ledger: Ledger,
    backend: CrowdBackend,
    batch_id: str | None,
    include_open: bool,
    concurrency: int,
    on_progress: Callable[[int], None] | None,
) -> CollectReport:
    target = backend.target
    report = CollectReport(target=target)
    before = dict(backend.stats.calls)
    pending = _open_hits(ledger, target, batch_id)
    report.hits_checked = len(pending)
    if not pending:
        return report
    wanted = {str(h["hit_id"]): h for h in pending}
    counts = _hit_counts(backend, wanted, include_open)

    stored_ids: dict[str, dict[str, str]] = {}
    for r in rows(
        ledger.conn,
        "SELECT hit_id, assignment_id, status FROM assignments WHERE target=?",
        (target,),
    ):
        stored_ids.setdefault(str(r["hit_id"]), {})[str(r["assignment_id"])] = str(r["status"])

    stale = {
        str(r["hit_id"])
        for r in rows(
            ledger.conn,
            "SELECT DISTINCT hit_id FROM assignments WHERE target=? AND status='Submitted' "
            "AND auto_approval_time <= ?",
            (target, utc_now()),
        )
    }
    to_fetch: list[str] = []
    for hit_id, info in counts.items():
        known = len(stored_ids.get(hit_id, {}))
        if info.finished_work > known or hit_id in stale:
            to_fetch.append(hit_id)
        else:
            _update_hit(ledger, target, info, known)
    untouched = len(pending) - len(to_fetch)
    if on_progress and untouched:
        on_progress(untouched)

    def fetch(hit_id: str) -> list[AssignmentInfo]:
        return list(backend.list_assignments(hit_id))

    workers = max(1, min(concurrency, len(to_fetch)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for hit_id, found in zip(to_fetch, pool.map(fetch, to_fetch), strict=True):
            _store_hit(ledger, report, wanted[hit_id], counts[hit_id], found, stored_ids)
            if on_progress:
                on_progress(1)
    report.calls = {
        op: n - before.get(op, 0) for op, n in backend.stats.calls.items() if n != before.get(op, 0)
    }
    return report


def _store_hit(
    ledger: Ledger,
    report: CollectReport,
    hit: dict[str, Any],
    info: HitInfo,
    found: Iterable[AssignmentInfo],
    stored_ids: dict[str, dict[str, str]],
) -> None:
    target = report.target
    known = stored_ids.setdefault(info.hit_id, {})
    report.hits_fetched += 1
    for assignment in found:
        previous = known.get(assignment.assignment_id)
        if previous is None:
            stored = store_assignment(ledger, target, hit, assignment)
            known[assignment.assignment_id] = assignment.status
            if stored is None:
                continue
            status, n, flag = stored
            report.assignments_new += 1
            report.answers += n
            if status == "flagged":
                report.flagged += 1
            elif status in ("malformed", "hostile"):
                report.refused += 1
            if flag:
                report.flags.append(f"{assignment.assignment_id} ({hit['hit_key']}): {flag}")
        elif previous != assignment.status and not (
            # A decision is never undone: a target without review (Turkle) reports every
            # assignment as Submitted, and turk's decision in the ledger stands.
            previous in ("Approved", "Rejected") and assignment.status == "Submitted"
        ):
            with ledger.conn:
                ledger.conn.execute(
                    "UPDATE assignments SET status=?, approval_time=COALESCE(?, approval_time), "
                    "rejection_time=COALESCE(?, rejection_time) "
                    "WHERE target=? AND assignment_id=?",
                    (
                        assignment.status,
                        iso(assignment.approval_time),
                        iso(assignment.rejection_time),
                        target,
                        assignment.assignment_id,
                    ),
                )
            known[assignment.assignment_id] = assignment.status
            report.assignments_updated += 1
    _update_hit(ledger, target, info, len(known))
