"""Review collected work: gold rules per worker, then approve, reject, bonus, block, extend.

A worker is judged on the gold (known-answer) items they answered on the target: with
at least ``min_gold`` seen, a share right of at least ``min_accuracy`` passes and below
it fails. Passing workers' submitted assignments are approved; failing workers' are
rejected with a message that says why. Workers with too little gold seen are left for
later, unless everything still submitted is to be approved before MTurk's auto-approval
deadline (``approve_all``).

Every action is written to ``actions`` as an intent with a deterministic token before
its call, and nothing is sent on the ledger's word alone, because a ledger may be behind
the target (a run killed after a call, or a copy restored from before it), also past
MTurk's 24-hour token window: the assignments of every HIT concerned are read back
(one ListAssignmentsForHIT per HIT) before approving or rejecting, the bonuses of every
HIT concerned (one ListBonusPayments per HIT) before paying any, and a HIT (GetHIT)
before extending it. What the target already holds is recorded, not sent again.
``dry_run`` decides everything and sends nothing.

A budget caps everything committed on the target (:mod:`turk.crowd.spend`): each
bonus and extension is checked against it before its call.

``extend`` adds assignments to HITs with items a rule marks as uncertain (by default:
their answers disagree), up to each HIT's ``max_total_assignments``. The rule is a
parameter so that an analysis policy can replace it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from turk.crowd.backend import (
    AssignmentInfo,
    CrowdBackend,
    DuplicateRequestError,
    extend_refusal,
)
from turk.crowd.boto import TransientCrowdError
from turk.crowd.lock import crowd_lock
from turk.crowd.publish import qualification_id
from turk.crowd.records import (
    finish_action,
    iso,
    mark_sent,
    parse_iso,
    record_intent,
    request_token,
    rows,
)
from turk.crowd.spend import BudgetGuard
from turk.errors import ConfigError, CrowdError, MoneyError
from turk.ledger import Ledger, utc_now
from turk.money import assignment_cost, bonus_cost, format_usd


@dataclass(frozen=True)
class GoldRule:
    """When a worker's work is good enough.

    Attributes:
        min_gold: Gold items a worker must have answered before being judged.
        min_accuracy: Share of gold answered right needed to pass (0 to 1).
    """

    min_gold: int = 3
    min_accuracy: float = 0.8

    def __post_init__(self) -> None:
        if self.min_gold < 1:
            raise ConfigError(f"--min-gold {self.min_gold}: must be 1 or more")
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise ConfigError(f"--min-accuracy {self.min_accuracy}: use a share from 0 to 1")


@dataclass(frozen=True)
class WorkerScore:
    """A worker's gold record on the target.

    Attributes:
        worker_id: The worker.
        seen: Gold items answered (missing or invalid answers count as wrong).
        correct: Gold items answered right.
    """

    worker_id: str
    seen: int
    correct: int

    @property
    def accuracy(self) -> float:
        """Share of gold right (0 when none seen)."""
        return self.correct / self.seen if self.seen else 0.0

    def verdict(self, rule: GoldRule) -> str:
        """Return ``pass``, ``fail`` or ``undecided`` under ``rule``."""
        if self.seen < rule.min_gold:
            return "undecided"
        return "pass" if self.accuracy >= rule.min_accuracy else "fail"


@dataclass(frozen=True)
class ItemAnswers:
    """The valid labels collected so far for one non-gold item of a HIT.

    Attributes:
        hit_key: The HIT.
        position: The item's position.
        image_id: The image.
        concept: The concept asked (binary), or None.
        labels: One label per worker who answered it validly.
    """

    hit_key: str
    position: int
    image_id: int
    concept: str | None
    labels: tuple[str, ...]


UncertainRule = Callable[[ItemAnswers], bool]
"""Decides whether an item needs more answers."""


def answers_disagree(item: ItemAnswers) -> bool:
    """The simple uncertainty rule: the workers did not all give the same label.

    Args:
        item: The item's answers.

    Returns:
        True when at least two different labels were given.
    """
    return len(set(item.labels)) > 1


@dataclass
class ReviewOptions:
    """What a review does besides applying the gold rule.

    Attributes:
        rule: The gold rule.
        approve_all: Approve every submitted assignment the rule does not reject (before
            MTurk's auto-approval deadline approves it anyway).
        block_after: Block workers with this many rejected assignments (None: never).
        trusted: Name of a qualification to grant workers who pass (None: none).
        bonus: Bonus per approved assignment of workers with ``bonus_accuracy`` or more.
        bonus_accuracy: Gold share right that earns the bonus.
        bonus_reason: The message sent with a bonus.
        extend: Add assignments to HITs with uncertain items.
        uncertain: The rule marking an item uncertain.
        extend_step: Assignments added to a HIT per review (up to its maximum).
        budget: Cap on everything committed on the target (:mod:`turk.crowd.spend`);
            bonuses and extensions stop before one would cross it.
        batch_id: Only this batch (None: every batch on the target).
        dry_run: Decide and report; send nothing and write nothing.
    """

    rule: GoldRule = field(default_factory=GoldRule)
    approve_all: bool = False
    block_after: int | None = None
    trusted: str | None = None
    bonus: Decimal | None = None
    bonus_accuracy: float = 0.95
    bonus_reason: str = "Thank you for careful work: your answers matched our checks."
    extend: bool = False
    uncertain: UncertainRule = answers_disagree
    extend_step: int = 1
    budget: Decimal | None = None
    batch_id: str | None = None
    dry_run: bool = False


@dataclass
class ReviewReport:
    """What one review did (or, for a dry run, would do).

    Attributes:
        target: The crowd target.
        workers: Workers judged, by verdict.
        approved: Assignments approved now.
        rejected: Assignments rejected now.
        already: Actions found already done on the target (approved/rejected as wanted,
            bonus paid, extension made), recorded without a call.
        skipped: Actions that could not apply (e.g. approved by MTurk before a rejection).
        left: Submitted assignments left for later (too little gold seen).
        blocked: Workers blocked now.
        qualified: Workers granted the trusted qualification now.
        bonuses: Bonuses paid now (intents of an interrupted run included).
        bonus_total: Money paid in bonuses by this run, fees included.
        extended: HITs given more assignments now.
        extension_total: Money committed by this run's extensions, fees included.
        committed: Everything committed on the target after this run.
        calls: API calls made, by operation.
        budget_stopped: Actions not taken because the budget would be crossed.
        failed: Actions that failed (their intent stays; rerun).
        lines: One line per action, for the dry run and the log.
        planned: A dry run's decided statuses by assignment (nothing was sent).
    """

    target: str
    workers: dict[str, int] = field(default_factory=dict)
    approved: int = 0
    rejected: int = 0
    already: int = 0
    skipped: int = 0
    left: int = 0
    blocked: int = 0
    qualified: int = 0
    bonuses: int = 0
    bonus_total: Decimal = Decimal("0")
    extended: int = 0
    extension_total: Decimal = Decimal("0")
    budget_stopped: int = 0
    failed: int = 0
    committed: Decimal = Decimal("0")
    calls: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    planned: dict[str, str] = field(default_factory=dict)


def _batch_sql(
    target: str, batch_id: str | None, alias: str = "hit_key"
) -> tuple[str, tuple[Any, ...]]:
    """SQL (and its parameters) that keeps rows of one batch's HITs, or all when None."""
    if not batch_id:
        return "", ()
    return (
        f" AND {alias} IN (SELECT hit_key FROM hits WHERE target=? AND batch_id=?)",
        (target, batch_id),
    )


def worker_scores(
    ledger: Ledger, target: str, batch_id: str | None = None
) -> dict[str, WorkerScore]:
    """Return each worker's gold record on the target (optionally one batch).

    Args:
        ledger: The open ledger.
        target: The crowd target.
        batch_id: Only this batch's HITs.

    Returns:
        ``{worker_id: WorkerScore}`` for every worker with collected answers.
    """
    extra, params = _batch_sql(target, batch_id)
    out: dict[str, WorkerScore] = {}
    for r in rows(
        ledger.conn,
        "SELECT worker_id, SUM(is_gold) AS seen, SUM(CASE WHEN is_gold=1 AND correct=1 "
        "THEN 1 ELSE 0 END) AS correct FROM answers WHERE target=?" + extra + " GROUP BY worker_id",
        (target, *params),
    ):
        out[str(r["worker_id"])] = WorkerScore(
            str(r["worker_id"]), int(r["seen"] or 0), int(r["correct"] or 0)
        )
    return out


def _feedback(score: WorkerScore, rule: GoldRule) -> str:
    return (
        f"Rejected because {score.correct} of {score.seen} photos with a known answer were "
        f"answered right ({score.accuracy:.0%}); at least {rule.min_accuracy:.0%} is needed. "
        "Known-answer photos are mixed into every HIT of this batch."
    )


def _decide(
    ledger: Ledger, target: str, options: ReviewOptions, scores: dict[str, WorkerScore]
) -> list[tuple[str, str, str, str | None]]:
    """Return ``(kind, assignment_id, worker_id, feedback)`` for submitted work to act on."""
    extra, params = _batch_sql(target, options.batch_id)
    decided = {
        str(r["assignment_id"])
        for r in rows(
            ledger.conn,
            "SELECT assignment_id FROM actions WHERE target=? AND kind IN ('approve', 'reject')",
            (target,),
        )
    }
    out: list[tuple[str, str, str, str | None]] = []
    for r in rows(
        ledger.conn,
        "SELECT assignment_id, worker_id FROM assignments WHERE target=? AND status='Submitted'"
        + extra
        + " ORDER BY submit_time, assignment_id",
        (target, *params),
    ):
        assignment_id, worker_id = str(r["assignment_id"]), str(r["worker_id"])
        if assignment_id in decided:
            continue
        score = scores.get(worker_id, WorkerScore(worker_id, 0, 0))
        verdict = score.verdict(options.rule)
        if verdict == "pass" or (verdict == "undecided" and options.approve_all):
            out.append(("approve", assignment_id, worker_id, None))
        elif verdict == "fail":
            out.append(("reject", assignment_id, worker_id, _feedback(score, options.rule)))
        else:
            out.append(("leave", assignment_id, worker_id, None))
    return out


def _set_status(ledger: Ledger, target: str, assignment_id: str, status: str) -> None:
    column = "approval_time" if status == "Approved" else "rejection_time"
    with ledger.conn:
        ledger.conn.execute(
            f"UPDATE assignments SET status=?, {column}=COALESCE({column}, ?) "
            "WHERE target=? AND assignment_id=?",
            (status, utc_now(), target, assignment_id),
        )


def _approve_or_reject(
    ledger: Ledger,
    backend: CrowdBackend,
    report: ReviewReport,
    action: dict[str, Any],
    on_target: dict[str, AssignmentInfo],
) -> None:
    target = backend.target
    kind = str(action["kind"])
    assignment_id = str(action["assignment_id"])
    wanted = "Approved" if kind == "approve" else "Rejected"
    # What the target holds, read back just before (_statuses_on_target).
    seen = on_target.get(assignment_id)
    if seen is not None and seen.status in ("Approved", "Rejected"):
        if seen.status == wanted:
            finish_action(ledger.conn, int(action["id"]), "done")
            report.already += 1
        else:
            finish_action(ledger.conn, int(action["id"]), "skipped", f"already {seen.status}")
            report.skipped += 1
            report.lines.append(f"{kind} {assignment_id}: skipped, already {seen.status}")
        _set_status(ledger, target, assignment_id, seen.status)
        return
    mark_sent(ledger.conn, int(action["id"]))
    try:
        if kind == "approve":
            backend.approve(assignment_id)
        else:
            backend.reject(assignment_id, str(action["reason"]))
    except TransientCrowdError:
        raise
    except CrowdError as exc:
        # Already acted on (an earlier run, or MTurk's auto-approval): read the truth.
        current = backend.get_assignment(assignment_id).status
        if current == wanted:
            finish_action(ledger.conn, int(action["id"]), "done")
            _set_status(ledger, target, assignment_id, current)
            report.already += 1
            return
        if current in ("Approved", "Rejected"):
            finish_action(ledger.conn, int(action["id"]), "skipped", f"already {current}")
            _set_status(ledger, target, assignment_id, current)
            report.skipped += 1
            report.lines.append(f"{kind} {assignment_id}: skipped, already {current}")
            return
        finish_action(ledger.conn, int(action["id"]), "failed", str(exc))
        report.failed += 1
        report.lines.append(f"{kind} {assignment_id}: failed: {exc}")
        return
    finish_action(ledger.conn, int(action["id"]), "done")
    _set_status(ledger, target, assignment_id, wanted)
    if kind == "approve":
        report.approved += 1
    else:
        report.rejected += 1


def _pending_actions(ledger: Ledger, target: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    marks = ",".join("?" for _ in kinds)
    return rows(
        ledger.conn,
        f"SELECT * FROM actions WHERE target=? AND status='intent' AND kind IN ({marks}) "
        "ORDER BY id",
        (target, *kinds),
    )


def _statuses(ledger: Ledger, target: str, report: ReviewReport) -> dict[str, tuple[str, str]]:
    """Each assignment's worker and status, with a dry run's decisions applied."""
    out = {
        str(r["assignment_id"]): (str(r["worker_id"]), str(r["status"]))
        for r in rows(
            ledger.conn,
            "SELECT assignment_id, worker_id, status FROM assignments WHERE target=?",
            (target,),
        )
    }
    for assignment_id, status in report.planned.items():
        out[assignment_id] = (out[assignment_id][0], status)
    return out


def _statuses_on_target(
    ledger: Ledger, backend: CrowdBackend, hit_ids: set[str]
) -> dict[str, AssignmentInfo]:
    """Read back every assignment of these HITs whose status differs from the ledger's.

    One ListAssignmentsForHIT per HIT: an assignment the ledger holds as Submitted may
    be approved already (by an earlier run the ledger does not remember, or by MTurk's
    auto-approval), and acting on the ledger's word would ask for it again.

    Returns:
        ``{assignment_id: info}`` for each assignment the target holds in another status.
    """
    known = {
        str(r["assignment_id"]): str(r["status"])
        for r in rows(
            ledger.conn,
            "SELECT assignment_id, status FROM assignments WHERE target=?",
            (backend.target,),
        )
    }
    out: dict[str, AssignmentInfo] = {}
    for hit_id in sorted(hit_ids):
        for info in backend.list_assignments(hit_id):
            if info.assignment_id in known and known[info.assignment_id] != info.status:
                out[info.assignment_id] = info
    return out


def _apply_statuses(ledger: Ledger, target: str, changed: dict[str, AssignmentInfo]) -> None:
    with ledger.conn:
        ledger.conn.executemany(
            "UPDATE assignments SET status=?, approval_time=COALESCE(?, approval_time), "
            "rejection_time=COALESCE(?, rejection_time) WHERE target=? AND assignment_id=?",
            [
                (
                    info.status,
                    iso(info.approval_time),
                    iso(info.rejection_time),
                    target,
                    info.assignment_id,
                )
                for info in changed.values()
            ],
        )


def _hits_to_refresh(ledger: Ledger, target: str, options: ReviewOptions) -> set[str]:
    """HITs with work the ledger holds as Submitted in scope, or an unfinished decision."""
    extra, params = _batch_sql(target, options.batch_id)
    out = {
        str(r["hit_id"])
        for r in rows(
            ledger.conn,
            "SELECT DISTINCT hit_id FROM assignments WHERE target=? AND status='Submitted'" + extra,
            (target, *params),
        )
    }
    out |= {
        str(r["hit_id"])
        for r in rows(
            ledger.conn,
            "SELECT DISTINCT a.hit_id FROM actions x JOIN assignments a ON "
            "a.target=x.target AND a.assignment_id=x.assignment_id WHERE x.target=? AND "
            "x.status='intent' AND x.kind IN ('approve', 'reject')",
            (target,),
        )
    }
    return out


def review(ledger: Ledger, backend: CrowdBackend, options: ReviewOptions) -> ReviewReport:
    """Apply the gold rule and the chosen actions to the collected work on the target.

    Args:
        ledger: The open ledger.
        backend: The target's backend.
        options: What to do.

    Returns:
        The :class:`ReviewReport` (for a dry run: what would be done, in ``lines``).

    Raises:
        CrowdError: A call failed for a reason that may pass (rerun to resume).
        MoneyError: A bonus that is not a valid amount.
        ConfigError: An option the target cannot carry out (``extend`` on Turkle), or
            out of range; nothing is sent.
        BusyError: Another command holds the target's lock.
    """
    if options.bonus is not None and options.bonus <= 0:
        raise MoneyError(f"--bonus {options.bonus}: must be more than 0")
    if options.extend_step < 1:
        raise ConfigError(f"--extend-step {options.extend_step}: must be 1 or more")
    # Refused before any approval is sent, not when the extensions come up.
    refusal = extend_refusal(backend.target) if options.extend else None
    if refusal is not None:
        raise ConfigError(f"--extend: {refusal}")
    if options.dry_run:
        return _review(ledger, backend, options)
    with crowd_lock(ledger, backend.target, "review"):
        return _review(ledger, backend, options)


def _review(ledger: Ledger, backend: CrowdBackend, options: ReviewOptions) -> ReviewReport:
    target = backend.target
    report = ReviewReport(target=target)
    before = dict(backend.stats.calls)
    guard = BudgetGuard.start(ledger, target, options.budget)
    scores = worker_scores(ledger, target, options.batch_id)
    for score in scores.values():
        verdict = score.verdict(options.rule)
        report.workers[verdict] = report.workers.get(verdict, 0) + 1

    # Approvals and rejections: read the target's statuses back, resume intents of an
    # interrupted run, then decide anew.
    on_target: dict[str, AssignmentInfo] = {}
    if not options.dry_run:
        on_target = _statuses_on_target(ledger, backend, _hits_to_refresh(ledger, target, options))
        for action in _pending_actions(ledger, target, ("approve", "reject")):
            _approve_or_reject(ledger, backend, report, action, on_target)
    for kind, assignment_id, worker_id, feedback in _decide(ledger, target, options, scores):
        if kind == "leave":
            report.left += 1
            continue
        score = scores.get(worker_id, WorkerScore(worker_id, 0, 0))
        report.lines.append(
            f"{kind} {assignment_id} (worker {worker_id}: {score.correct}/{score.seen} gold right)"
        )
        if options.dry_run:
            if kind == "approve":
                report.approved += 1
            else:
                report.rejected += 1
            report.planned[assignment_id] = "Approved" if kind == "approve" else "Rejected"
            continue
        action = record_intent(
            ledger.conn,
            target=target,
            kind=kind,
            token=request_token(target, kind, assignment_id),
            assignment_id=assignment_id,
            worker_id=worker_id,
            reason=feedback,
        )
        _approve_or_reject(ledger, backend, report, action, on_target)
    # Work the target decided that this review leaves alone: the ledger follows.
    _apply_statuses(ledger, target, on_target)

    if options.block_after is not None:
        _block(ledger, backend, options, report, scores)
    if options.trusted:
        _qualify(ledger, backend, options, report, scores)
    if options.bonus is not None:
        _bonus(ledger, backend, options, report, scores, guard)
    if options.extend:
        extend_uncertain(ledger, backend, options, report, guard)
    report.committed = guard.committed
    report.calls = {
        op: n - before.get(op, 0) for op, n in backend.stats.calls.items() if n != before.get(op, 0)
    }
    return report


def _block(
    ledger: Ledger,
    backend: CrowdBackend,
    options: ReviewOptions,
    report: ReviewReport,
    scores: dict[str, WorkerScore],
) -> None:
    target = backend.target
    limit = int(options.block_after or 0)
    if limit < 1:
        raise ConfigError(f"--block-after {limit}: must be 1 or more")
    blocked = {
        str(r["worker_id"])
        for r in rows(
            ledger.conn,
            "SELECT worker_id FROM worker_blocks WHERE target=? AND status='done'",
            (target,),
        )
    }
    rejected: dict[str, int] = {}
    for worker_id, status in _statuses(ledger, target, report).values():
        if status == "Rejected" and worker_id not in blocked:
            rejected[worker_id] = rejected.get(worker_id, 0) + 1
    offenders = [{"worker_id": w, "n": n} for w, n in sorted(rejected.items()) if n >= limit]
    for r in offenders:
        worker_id = str(r["worker_id"])
        score = scores.get(worker_id, WorkerScore(worker_id, 0, 0))
        reason = (
            f"{r['n']} assignments rejected for failing known-answer checks "
            f"({score.correct} of {score.seen} right)"
        )
        report.lines.append(f"block {worker_id}: {reason}")
        if options.dry_run:
            report.blocked += 1
            continue
        with ledger.conn:
            ledger.conn.execute(
                "INSERT OR IGNORE INTO worker_blocks (target, worker_id, reason, status, "
                "created_at) VALUES (?, ?, ?, 'intent', ?)",
                (target, worker_id, reason, utc_now()),
            )
        backend.block_worker(worker_id, reason)
        with ledger.conn:
            ledger.conn.execute(
                "UPDATE worker_blocks SET status='done', done_at=? WHERE target=? AND worker_id=?",
                (utc_now(), target, worker_id),
            )
        report.blocked += 1


def _qualify(
    ledger: Ledger,
    backend: CrowdBackend,
    options: ReviewOptions,
    report: ReviewReport,
    scores: dict[str, WorkerScore],
) -> None:
    target = backend.target
    name = str(options.trusted)
    good = sorted(w for w, s in scores.items() if s.verdict(options.rule) == "pass")
    granted = {
        str(r["worker_id"])
        for r in rows(
            ledger.conn,
            "SELECT worker_id FROM actions WHERE target=? AND kind='qualify' AND status='done' "
            "AND reason=?",
            (target, name),
        )
    }
    todo = [w for w in good if w not in granted]
    if options.dry_run:
        for worker_id in todo:
            report.lines.append(f"grant {name!r} to {worker_id}")
        report.qualified += len(todo)
        return
    if not todo:
        return
    type_id = qualification_id(ledger, backend, name)
    if type_id is None:
        type_id = backend.create_qualification_type(
            name, "Workers whose answers matched known-answer checks in earlier batches."
        )
        with ledger.conn:
            ledger.conn.execute(
                "INSERT OR REPLACE INTO qualifications (target, name, qualification_type_id, "
                "created_at) VALUES (?, ?, ?, ?)",
                (target, name, type_id, utc_now()),
            )
    for worker_id in todo:
        action = record_intent(
            ledger.conn,
            target=target,
            kind="qualify",
            token=request_token(target, "qualify", type_id, worker_id),
            worker_id=worker_id,
            reason=name,
        )
        mark_sent(ledger.conn, int(action["id"]))
        backend.grant_qualification(type_id, worker_id)
        finish_action(ledger.conn, int(action["id"]), "done")
        report.qualified += 1
        report.lines.append(f"grant {name!r} to {worker_id}")


def _bonus(
    ledger: Ledger,
    backend: CrowdBackend,
    options: ReviewOptions,
    report: ReviewReport,
    scores: dict[str, WorkerScore],
    guard: BudgetGuard,
) -> None:
    target = backend.target
    amount = options.bonus or Decimal("0")
    cost = bonus_cost(amount)
    earners = {
        w
        for w, s in scores.items()
        if s.verdict(options.rule) == "pass" and s.accuracy >= options.bonus_accuracy
    }
    extra, params = _batch_sql(target, options.batch_id)
    settled = {
        str(r["assignment_id"])
        for r in rows(
            ledger.conn,
            "SELECT assignment_id FROM actions WHERE target=? AND kind='bonus'",
            (target,),
        )
    }
    hit_of = {
        str(r["assignment_id"]): str(r["hit_id"])
        for r in rows(
            ledger.conn,
            "SELECT assignment_id, hit_id FROM assignments WHERE target=?" + extra,
            (target, *params),
        )
    }
    candidates = [
        (a, w)
        for a, (w, status) in sorted(_statuses(ledger, target, report).items())
        if status == "Approved" and a in hit_of and w in earners and a not in settled
    ]
    # Intents of an interrupted run first: they may have been paid already.
    pending = [] if options.dry_run else _pending_actions(ledger, target, ("bonus",))
    if options.dry_run:
        for assignment_id, worker_id in candidates:
            if not guard.take(cost):
                report.budget_stopped += 1
                continue
            report.lines.append(f"bonus {format_usd(amount)} to {worker_id} for {assignment_id}")
            report.bonuses += 1
            report.bonus_total += cost
        return
    if not candidates and not pending:
        return
    # What the target has paid, whatever the ledger remembers: one call per HIT concerned.
    hits = {hit_of[a] for a, _ in candidates}
    hits |= {
        str(r["hit_id"])
        for r in rows(
            ledger.conn,
            "SELECT DISTINCT a.hit_id FROM actions x JOIN assignments a ON a.target=x.target "
            "AND a.assignment_id=x.assignment_id WHERE x.target=? AND x.kind='bonus' "
            "AND x.status='intent'",
            (target,),
        )
    }
    paid: set[tuple[str, Decimal]] = set()
    for hit_id in sorted(hits):
        paid |= {(b.assignment_id, b.amount) for b in backend.list_hit_bonuses(hit_id)}
    for assignment_id, worker_id in candidates:
        if (assignment_id, amount) not in paid and not guard.take(cost):
            report.budget_stopped += 1
            continue
        if (assignment_id, amount) in paid:
            guard.add(cost)
        pending.append(
            record_intent(
                ledger.conn,
                target=target,
                kind="bonus",
                token=request_token(target, "bonus", assignment_id),
                assignment_id=assignment_id,
                worker_id=worker_id,
                amount=str(amount),
                reason=options.bonus_reason,
            )
        )
    seen: set[int] = set()
    for action in pending:
        if int(action["id"]) in seen:
            continue
        seen.add(int(action["id"]))
        _pay_bonus(ledger, backend, report, action, paid, guard)


def _pay_bonus(
    ledger: Ledger,
    backend: CrowdBackend,
    report: ReviewReport,
    action: dict[str, Any],
    paid: set[tuple[str, Decimal]],
    guard: BudgetGuard,
) -> None:
    assignment_id = str(action["assignment_id"])
    amount = Decimal(str(action["amount"]))
    if (assignment_id, amount) in paid:
        finish_action(ledger.conn, int(action["id"]), "done")
        report.already += 1
        return
    mark_sent(ledger.conn, int(action["id"]))
    try:
        backend.send_bonus(
            worker_id=str(action["worker_id"]),
            assignment_id=assignment_id,
            amount=amount,
            reason=str(action["reason"]),
            token=str(action["token"]),
        )
    except DuplicateRequestError:
        finish_action(ledger.conn, int(action["id"]), "done")
        report.already += 1
        return
    except TransientCrowdError:
        raise
    except CrowdError as exc:
        finish_action(ledger.conn, int(action["id"]), "failed", str(exc))
        guard.give_back(bonus_cost(amount))
        report.failed += 1
        report.lines.append(f"bonus {assignment_id}: failed: {exc}")
        return
    finish_action(ledger.conn, int(action["id"]), "done")
    report.bonuses += 1
    report.bonus_total += bonus_cost(amount)


def uncertain_items(
    ledger: Ledger, target: str, hit_key: str, rule: UncertainRule = answers_disagree
) -> list[ItemAnswers]:
    """Return the non-gold items of a HIT that ``rule`` marks as uncertain.

    Args:
        ledger: The open ledger.
        target: The crowd target.
        hit_key: The HIT.
        rule: The uncertainty rule.

    Returns:
        The uncertain items with their labels.
    """
    by_position: dict[int, list[str]] = {}
    meta: dict[int, tuple[int, str | None]] = {}
    for r in rows(
        ledger.conn,
        "SELECT i.position, i.image_id, i.concept, a.label FROM hit_items i "
        "LEFT JOIN answers a ON a.target=i.target AND a.hit_key=i.hit_key "
        "AND a.position=i.position AND a.label IS NOT NULL "
        "LEFT JOIN assignments s ON s.target=a.target AND s.assignment_id=a.assignment_id "
        "WHERE i.target=? AND i.hit_key=? AND i.is_gold=0 "
        "AND (s.status IS NULL OR s.status != 'Rejected') ORDER BY i.position",
        (target, hit_key),
    ):
        position = int(r["position"])
        meta[position] = (int(r["image_id"]), r["concept"])
        labels = by_position.setdefault(position, [])
        if r["label"] is not None:
            labels.append(str(r["label"]))
    items = [
        ItemAnswers(hit_key, p, meta[p][0], meta[p][1], tuple(labels))
        for p, labels in sorted(by_position.items())
    ]
    return [item for item in items if rule(item)]


def extend_uncertain(
    ledger: Ledger,
    backend: CrowdBackend,
    options: ReviewOptions,
    report: ReviewReport,
    guard: BudgetGuard | None = None,
) -> None:
    """Add assignments to HITs whose items are still uncertain, up to their maximum.

    Only HITs whose published assignments are all collected are considered, so one round
    of extra answers is awaited before the next. Each HIT is read back (GetHIT) before
    it is extended: when the target already holds the extension (an earlier run the
    ledger does not remember), it is recorded, not sent again.

    Args:
        ledger: The open ledger.
        backend: The target's backend.
        options: The review options (rule, step, budget, dry run).
        report: Counts and lines are added here.
        guard: The budget of the review (default: a new one for ``options.budget``).
    """
    target = backend.target
    guard = guard or BudgetGuard.start(ledger, target, options.budget)
    sql = (
        "SELECT * FROM hits WHERE target=? AND hit_id IS NOT NULL "
        "AND status IN ('published', 'expired') AND assignments_collected >= max_assignments "
        "AND max_assignments < max_total_assignments"
    )
    params: tuple[Any, ...] = (target,)
    if options.batch_id:
        sql += " AND batch_id=?"
        params = (target, options.batch_id)
    for hit in rows(ledger.conn, sql + " ORDER BY id", params):
        unsure = uncertain_items(ledger, target, str(hit["hit_key"]), options.uncertain)
        if not unsure:
            continue
        hit_id = str(hit["hit_id"])
        current = int(hit["max_assignments"])
        new_max = min(int(hit["max_total_assignments"]), current + options.extend_step)
        reward = Decimal(str(hit["reward"]))
        per = assignment_cost(reward, new_max)
        cost = per * (new_max - current)
        token = request_token(target, "extend", hit_id, new_max)
        earlier = rows(
            ledger.conn,
            "SELECT status FROM actions WHERE target=? AND kind='extend' AND token=?",
            (target, token),
        )
        if earlier and earlier[0]["status"] == "done":
            continue
        # An earlier run's intent is counted as committed already.
        if not earlier and not guard.take(cost):
            report.budget_stopped += 1
            continue
        report.lines.append(
            f"extend {hit_id} ({hit['hit_key']}) by {new_max - current} to {new_max}: "
            f"{len(unsure)} uncertain item(s)"
        )
        if options.dry_run:
            report.extended += 1
            report.extension_total += cost
            continue
        action = record_intent(
            ledger.conn,
            target=target,
            kind="extend",
            token=token,
            hit_id=hit_id,
            amount=str(cost),
            count=new_max - current,
            reason=f"{len(unsure)} uncertain item(s)",
        )
        if action["status"] == "done":
            continue
        info = backend.get_hit(hit_id)
        if info.max_assignments >= new_max:
            # Extended by an earlier run that the ledger does not remember.
            guard.add(per * (info.max_assignments - new_max))
            _record_extension(ledger, target, hit_id, info.max_assignments, None)
            finish_action(ledger.conn, int(action["id"]), "done")
            report.already += 1
            continue
        additional = new_max - info.max_assignments
        now = datetime.now(UTC)
        expires = info.expiration or parse_iso(hit["expires_at"])
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        reopen = expires is None or expires <= now + timedelta(minutes=10)
        new_expiry = now + timedelta(seconds=int(hit["lifetime_s"]))
        mark_sent(ledger.conn, int(action["id"]))
        # A duplicate answer means the extension went through before: it counts as done.
        with contextlib.suppress(DuplicateRequestError):
            backend.extend_hit(hit_id, additional, str(action["token"]))
        if reopen:
            # An expired HIT must be offered again for the new assignments to be taken.
            backend.update_expiration(hit_id, new_expiry)
        # The HIT first, then the action: a crash between counts the money twice, never
        # not at all, and the rerun's GetHIT settles it.
        _record_extension(ledger, target, hit_id, new_max, iso(new_expiry) if reopen else None)
        finish_action(ledger.conn, int(action["id"]), "done")
        report.extended += 1
        report.extension_total += cost


def _record_extension(
    ledger: Ledger, target: str, hit_id: str, max_assignments: int, expires_at: str | None
) -> None:
    with ledger.conn:
        ledger.conn.execute(
            "UPDATE hits SET max_assignments=MAX(max_assignments, ?), status='published', "
            "expires_at=COALESCE(?, expires_at) WHERE target=? AND hit_id=?",
            (max_assignments, expires_at, target, hit_id),
        )
