"""Where each batch stands per target (from the ledger alone), and ending HITs.

:func:`batch_status` reads the ledger: HITs published, assignments submitted, approved
and rejected, money spent and committed, and the next auto-approval deadline; it makes
no call. :func:`expire_hits` stops offering open HITs and, when asked, deletes finished
HITs, but only those whose results are all stored in the ledger and decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from turk.crowd.backend import CrowdBackend, pays_workers
from turk.crowd.lock import crowd_lock
from turk.crowd.records import finish_action, mark_sent, record_intent, request_token, rows
from turk.crowd.spend import batch_money
from turk.ledger import Ledger


@dataclass
class BatchStatus:
    """One batch on one target.

    Attributes:
        target: The crowd target.
        batch_id: The batch.
        hits_planned: HITs with an intent in the ledger.
        hits_published: HITs that exist on the target.
        hits_open: Published HITs still taking work: not expired or deleted, and with
            assignments left to do.
        hits_done: Published HITs whose every assignment has been submitted.
        hits_deleted: HITs deleted after their results were stored.
        assignments_max: Assignments the published HITs allow.
        submitted: Assignments awaiting review.
        approved: Assignments approved (by review or automatically).
        rejected: Assignments rejected.
        flagged: Assignments whose answers did not fit or could not be read.
        bonuses: Bonuses paid.
        spent: Money paid so far: approved rewards and bonuses, fees included.
        committed: Money committed on the batch (:mod:`turk.crowd.spend`), fees included.
        next_deadline: Earliest auto-approval time of a submitted assignment (UTC ISO).
    """

    target: str
    batch_id: str
    hits_planned: int = 0
    hits_published: int = 0
    hits_open: int = 0
    hits_done: int = 0
    hits_deleted: int = 0
    assignments_max: int = 0
    submitted: int = 0
    approved: int = 0
    rejected: int = 0
    flagged: int = 0
    bonuses: int = 0
    spent: Decimal = Decimal("0")
    committed: Decimal = Decimal("0")
    next_deadline: str | None = None


def batch_status(
    ledger: Ledger, *, target: str | None = None, batch_id: str | None = None
) -> list[BatchStatus]:
    """Summarise every batch (or one) on every target (or one), from the ledger.

    Args:
        ledger: The open ledger.
        target: Only this target.
        batch_id: Only this batch.

    Returns:
        One :class:`BatchStatus` per target and batch, in target then batch order.
    """
    where, params = "1=1", []
    if target:
        where += " AND h.target=?"
        params.append(target)
    if batch_id:
        where += " AND h.batch_id=?"
        params.append(batch_id)
    out: dict[tuple[str, str], BatchStatus] = {}
    hits: dict[tuple[str, str], dict[str, Any]] = {}
    for h in rows(ledger.conn, f"SELECT * FROM hits h WHERE {where} ORDER BY id", tuple(params)):
        key = (str(h["target"]), str(h["batch_id"]))
        st = out.setdefault(key, BatchStatus(*key))
        hits[(str(h["target"]), str(h["hit_key"]))] = h
        st.hits_planned += 1
        if h["hit_id"] is None:
            continue
        st.hits_published += 1
        st.hits_deleted += int(h["status"] == "deleted")
        n = int(h["max_assignments"])
        st.assignments_max += n
    worked: dict[tuple[str, str], int] = {}
    for a in rows(
        ledger.conn,
        "SELECT a.target, a.hit_key, a.status, a.parse_status, a.auto_approval_time "
        f"FROM assignments a JOIN hits h ON h.target=a.target AND h.hit_key=a.hit_key "
        f"WHERE {where}",
        tuple(params),
    ):
        h = hits[(str(a["target"]), str(a["hit_key"]))]
        st = out[(str(h["target"]), str(h["batch_id"]))]
        status = str(a["status"])
        if status in ("Submitted", "Approved", "Rejected"):
            key = (str(a["target"]), str(a["hit_key"]))
            worked[key] = worked.get(key, 0) + 1
        if status == "Submitted":
            st.submitted += 1
            deadline = a["auto_approval_time"]
            if deadline and (st.next_deadline is None or deadline < st.next_deadline):
                st.next_deadline = str(deadline)
        elif status == "Approved":
            st.approved += 1
        elif status == "Rejected":
            st.rejected += 1
        if a["parse_status"] not in ("ok", "raw"):
            st.flagged += 1
    for key, h in hits.items():
        if h["hit_id"] is None or h["status"] == "deleted":
            continue
        st = out[(str(h["target"]), str(h["batch_id"]))]
        if worked.get(key, 0) >= int(h["max_assignments"]):
            st.hits_done += 1
        elif h["status"] == "published":
            st.hits_open += 1
    for money in batch_money(ledger, target=target, batch_id=batch_id):
        st = out.setdefault(
            (money.target, money.batch_id), BatchStatus(money.target, money.batch_id)
        )
        st.spent, st.committed, st.bonuses = money.spent, money.committed, money.bonuses_paid
    return [out[k] for k in sorted(out)]


def format_status_table(statuses: list[BatchStatus]) -> str:
    """Render batch statuses as a table with a header and, for several batches, totals.

    Args:
        statuses: What :func:`batch_status` returned.

    Returns:
        The table as plain text, without a final newline.
    """
    from turk.money import format_usd
    from turk.text import format_table

    header = (
        "target", "batch", "HITs", "open", "done", "deleted", "submitted", "approved",
        "rejected", "flagged", "spent", "committed", "next auto-approval",
    )  # fmt: skip

    def cells(st: BatchStatus, name: str) -> tuple[str, ...]:
        return (
            st.target,
            name,
            f"{st.hits_published}/{st.hits_planned}",
            str(st.hits_open),
            str(st.hits_done),
            str(st.hits_deleted),
            str(st.submitted),
            str(st.approved),
            str(st.rejected),
            str(st.flagged),
            format_usd(st.spent) if pays_workers(st.target) else "not paid",
            format_usd(st.committed) if pays_workers(st.target) else "not paid",
            st.next_deadline or "-",
        )

    lines = [cells(st, st.batch_id) for st in statuses]
    if len(statuses) > 1:
        total = BatchStatus(
            ",".join(sorted({st.target for st in statuses})), "total", next_deadline=None
        )
        for st in statuses:
            for name in (
                "hits_planned", "hits_published", "hits_open", "hits_done", "hits_deleted",
                "assignments_max", "submitted", "approved", "rejected", "flagged", "bonuses",
                "spent", "committed",
            ):  # fmt: skip
                setattr(total, name, getattr(total, name) + getattr(st, name))
            if st.next_deadline and (
                total.next_deadline is None or st.next_deadline < total.next_deadline
            ):
                total.next_deadline = st.next_deadline
        lines.append(cells(total, "total"))
    return format_table(header, lines, right=set(range(2, 12)))


@dataclass
class ExpireReport:
    """What one expire run did.

    Attributes:
        target: The crowd target.
        expired: HITs expired now.
        deleted: Finished HITs deleted now.
        kept: HITs not deleted, with the reason.
    """

    target: str
    expired: int = 0
    deleted: int = 0
    kept: list[str] = field(default_factory=list)


def expire_hits(
    ledger: Ledger,
    backend: CrowdBackend,
    *,
    batch_id: str | None = None,
    delete_finished: bool = False,
) -> ExpireReport:
    """Expire the open HITs on the target; optionally delete finished ones.

    A HIT is deleted only when the target says nothing is pending, every finished
    assignment is stored in the ledger, and none is still awaiting review.

    Args:
        ledger: The open ledger.
        backend: The target's backend.
        batch_id: Only this batch.
        delete_finished: Also delete HITs whose results are stored and decided.

    Returns:
        The :class:`ExpireReport`.

    Raises:
        BusyError: Another command holds the target's lock.
    """
    with crowd_lock(ledger, backend.target, "expire"):
        return _expire(ledger, backend, batch_id, delete_finished)


def _expire(
    ledger: Ledger, backend: CrowdBackend, batch_id: str | None, delete_finished: bool
) -> ExpireReport:
    target = backend.target
    report = ExpireReport(target=target)
    sql = "SELECT * FROM hits WHERE target=? AND hit_id IS NOT NULL AND status=?"
    extra = " AND batch_id=?" if batch_id else ""
    args: tuple[Any, ...] = (batch_id,) if batch_id else ()
    for h in rows(ledger.conn, sql + extra + " ORDER BY id", (target, "published", *args)):
        action = record_intent(
            ledger.conn,
            target=target,
            kind="expire",
            token=request_token(target, "expire", h["hit_id"], h["max_assignments"]),
            hit_id=str(h["hit_id"]),
        )
        mark_sent(ledger.conn, int(action["id"]))
        backend.expire_hit(str(h["hit_id"]))
        finish_action(ledger.conn, int(action["id"]), "done")
        with ledger.conn:
            ledger.conn.execute(
                "UPDATE hits SET status='expired' WHERE target=? AND hit_id=?",
                (target, h["hit_id"]),
            )
        report.expired += 1
    if not delete_finished:
        return report
    for h in rows(ledger.conn, sql + extra + " ORDER BY id", (target, "expired", *args)):
        hit_id = str(h["hit_id"])
        info = backend.get_hit(hit_id)
        stored = rows(
            ledger.conn,
            "SELECT status FROM assignments WHERE target=? AND hit_id=?",
            (target, hit_id),
        )
        undecided = sum(1 for a in stored if a["status"] == "Submitted")
        if info.pending or info.status not in ("Reviewable", "Reviewing"):
            report.kept.append(f"{hit_id}: {info.status}, {info.pending} in progress")
            continue
        if info.finished_work > len(stored):
            report.kept.append(
                f"{hit_id}: {info.finished_work - len(stored)} assignment(s) not collected; "
                "run 'turk collect' first"
            )
            continue
        if undecided:
            report.kept.append(
                f"{hit_id}: {undecided} assignment(s) awaiting review; run 'turk review' first"
            )
            continue
        action = record_intent(
            ledger.conn,
            target=target,
            kind="delete",
            token=request_token(target, "delete", hit_id),
            hit_id=hit_id,
        )
        mark_sent(ledger.conn, int(action["id"]))
        backend.delete_hit(hit_id)
        finish_action(ledger.conn, int(action["id"]), "done")
        with ledger.conn:
            ledger.conn.execute(
                "UPDATE hits SET status='deleted' WHERE target=? AND hit_id=?", (target, hit_id)
            )
        report.deleted += 1
    return report
