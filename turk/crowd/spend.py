"""What is committed, spent and left on a crowd target: the one definition of the budget.

A budget (``--budget``, ``budget:`` in turk.yaml) caps **everything committed on one
target by this ledger**. Committed is money the ledger has exposed and cannot take back:

* every HIT that exists on the target, or may exist (its create was sent and its outcome
  is not known yet): reward plus MTurk's fee for each of its MaxAssignments, extensions
  included, whether or not workers have done the work yet;
* every extension sent but not yet recorded as done: the amount it adds;
* every bonus paid, or written as an intent to pay: the bonus plus its fee.

Spent is what has been paid: approved assignments (reward plus fee) and bonuses paid
(bonus plus fee). Left is the budget minus committed. Publish, ``review --bonus``,
``review --extend`` and ``turk run`` check this same number before every call, through
:class:`BudgetGuard`; ``turk status`` and the report show it per target.

The definition is deliberately a cap on exposure, not an estimate of the final bill:
an expired HIT's unused assignments, and rejected work, stay counted.

On a target through which turk pays nobody (:func:`turk.crowd.backend.pays_workers`:
Turkle, vendor hand-offs) nothing is money: HITs and bonus decisions are counted, their
amounts are not, the budget counts nothing for them and every line says
:data:`NOT_PAID` instead of an amount.

What the collected work costs (:func:`work_cost`: rewards and fees of every assignment
not rejected, bonuses paid and their fees) is the report's cost line; every sum of money
over the ledger is written here, on the formulas of :mod:`turk.money`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from turk.crowd.backend import pays_workers
from turk.crowd.records import rows
from turk.errors import MoneyError
from turk.ledger import Ledger
from turk.money import assignment_cost, assignment_fee, bonus_cost, bonus_fee, format_usd

if TYPE_CHECKING:
    from analysis.report import CostSummary

ZERO = Decimal("0.00")

NOT_PAID = "not paid through turk"
"""What money lines say for a target through which turk pays nobody."""


@dataclass(frozen=True)
class TargetSpend:
    """The money of one target, from the ledger.

    Attributes:
        target: The crowd target.
        committed: Everything committed (see the module docstring), fees included.
        spent: What has been paid: approved assignments and bonuses, fees included.
        hits: HITs counted in ``committed`` (published, or sent with an unknown outcome).
        bonuses: Bonuses counted in ``committed`` (paid or intended).
    """

    target: str
    committed: Decimal = ZERO
    spent: Decimal = ZERO
    hits: int = 0
    bonuses: int = 0

    def left(self, budget: Decimal | None) -> Decimal | None:
        """Return what ``budget`` leaves after ``committed`` (None for no budget).

        Args:
            budget: The cap, or None.

        Returns:
            ``budget - committed`` (never below 0), or None: no budget, or a target that
            pays nobody (nothing counts against a budget there).
        """
        if budget is None or not pays_workers(self.target):
            return None
        return max(ZERO, budget - self.committed)

    def describe(self, budget: Decimal | None) -> str:
        """Return one line: committed, spent and left on the target."""
        if not pays_workers(self.target):
            return f"target {self.target}: {NOT_PAID} (nothing counts against the budget)"
        left = self.left(budget)
        cap = (
            f"budget {format_usd(budget)}, {format_usd(left)} left"
            if budget is not None and left is not None
            else "no budget set"
        )
        return (
            f"target {self.target}: {format_usd(self.committed)} committed, "
            f"{format_usd(self.spent)} spent; {cap}"
        )


@dataclass(frozen=True)
class BatchMoney:
    """The money of one batch on one target, by the definitions above.

    Attributes:
        target: The crowd target.
        batch_id: The batch (empty for a bonus or extension whose HIT the ledger lacks).
        committed: Everything committed, fees included.
        spent: What has been paid, fees included.
        hits: HITs counted in ``committed``.
        bonuses: Bonuses counted in ``committed`` (paid or intended).
        bonuses_paid: Bonuses paid.
    """

    target: str
    batch_id: str
    committed: Decimal = ZERO
    spent: Decimal = ZERO
    hits: int = 0
    bonuses: int = 0
    bonuses_paid: int = 0


def batch_money(
    ledger: Ledger, *, target: str | None = None, batch_id: str | None = None
) -> list[BatchMoney]:
    """Sum what is committed and spent, batch by batch (the only place this is summed).

    Args:
        ledger: The open ledger.
        target: Only this target.
        batch_id: Only this batch.

    Returns:
        One :class:`BatchMoney` per target and batch with money on it, in that order.
    """
    sums: dict[tuple[str, str], dict[str, Decimal | int]] = {}

    def add(key: tuple[str, str], **amounts: Decimal | int) -> None:
        entry = sums.setdefault(
            key, {"committed": ZERO, "spent": ZERO, "hits": 0, "bonuses": 0, "bonuses_paid": 0}
        )
        for name, value in amounts.items():
            entry[name] += value

    # Unqualified, "target" is the column of each query's own table (hits, actions).
    only = " AND target=?" if target is not None else ""
    params = (target,) if target is not None else ()
    for h in rows(
        ledger.conn,
        "SELECT target, batch_id, reward, max_assignments, (SELECT COUNT(*) FROM assignments a "
        "WHERE a.target=h.target AND a.hit_key=h.hit_key AND a.status='Approved') AS approved "
        f"FROM hits h WHERE (h.hit_id IS NOT NULL OR h.sent_at IS NOT NULL){only}",
        params,
    ):
        reward, n = Decimal(str(h["reward"])), int(h["max_assignments"])
        if not pays_workers(str(h["target"])):
            # Nobody is paid through this target: the HIT counts, its money does not.
            add((str(h["target"]), str(h["batch_id"])), hits=1)
            continue
        per = assignment_cost(reward, n)
        add(
            (str(h["target"]), str(h["batch_id"])),
            committed=per * n,
            spent=per * int(h["approved"]),
            hits=1,
        )
    # A bonus belongs to the batch of its assignment's HIT, an extension to its HIT's;
    # scalar lookups, so a row can never be counted twice.
    for a in rows(
        ledger.conn,
        "SELECT x.target, x.kind, x.amount, x.status, COALESCE("
        "(SELECT h.batch_id FROM assignments s JOIN hits h ON h.target=s.target AND "
        "h.hit_key=s.hit_key WHERE s.target=x.target AND s.assignment_id=x.assignment_id LIMIT 1), "
        "(SELECT h.batch_id FROM hits h WHERE h.target=x.target AND h.hit_id=x.hit_id LIMIT 1), "
        "'') AS batch_id FROM actions x WHERE x.kind IN ('bonus', 'extend') "
        f"AND x.status IN ('intent', 'done'){only}",
        params,
    ):
        key = (str(a["target"]), str(a["batch_id"]))
        amount = Decimal(str(a["amount"] or "0"))
        if not pays_workers(key[0]):
            if a["kind"] == "bonus":
                paid = a["status"] == "done"
                add(key, bonuses=1, bonuses_paid=int(paid))
            continue
        if a["kind"] == "bonus":
            paid = a["status"] == "done"
            add(
                key,
                committed=bonus_cost(amount),
                spent=bonus_cost(amount) if paid else ZERO,
                bonuses=1,
                bonuses_paid=int(paid),
            )
        elif a["status"] == "intent":
            # A done extension is in its HIT's max_assignments already.
            add(key, committed=amount)
    cent = Decimal("0.01")
    return [
        BatchMoney(
            target=key[0],
            batch_id=key[1],
            committed=Decimal(entry["committed"]).quantize(cent),
            spent=Decimal(entry["spent"]).quantize(cent),
            hits=int(entry["hits"]),
            bonuses=int(entry["bonuses"]),
            bonuses_paid=int(entry["bonuses_paid"]),
        )
        for key, entry in sorted(sums.items())
        if batch_id is None or key[1] == batch_id
    ]


def cell_money(ledger: Ledger, target: str) -> dict[tuple[str, int], Decimal]:
    """Money committed on each concept x bucket cell, from its binary HITs.

    A HIT of one cell counts whole; a later round's HIT asks about one concept in
    several buckets, and its money is shared among them by the items each had in it.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        ``{(concept, bucket): committed}``, fees and bonuses included.
    """
    from turk.collection.tables import image_buckets

    rows = ledger.conn.execute(
        "SELECT h.batch_id, h.concept, h.bucket, i.image_id FROM hit_items i JOIN hits h "
        "ON h.target = i.target AND h.hit_key = i.hit_key WHERE h.target = ? AND "
        "h.concept IS NOT NULL AND NOT i.is_gold",
        (target,),
    ).fetchall()
    bucket_of = image_buckets(ledger, [int(r[3]) for r in rows if r[2] is None])
    items: dict[str, dict[tuple[str, int], int]] = {}
    for batch, concept, bucket, image_id in rows:
        where = bucket if bucket is not None else bucket_of.get(int(image_id))
        if where is not None:
            cells = items.setdefault(str(batch), {})
            cells[(str(concept), int(where))] = cells.get((str(concept), int(where)), 0) + 1
    out: dict[tuple[str, int], Decimal] = {}
    for money in batch_money(ledger, target=target):
        cells = items.get(money.batch_id, {})
        total = sum(cells.values())
        for cell, n in cells.items():
            out[cell] = out.get(cell, ZERO) + money.committed * n / total
    return {cell: amount.quantize(Decimal("0.01")) for cell, amount in out.items()}


def target_spend(ledger: Ledger, target: str) -> TargetSpend:
    """Read what is committed and spent on ``target``: the sum of its batches.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        The :class:`TargetSpend`.
    """
    batches = batch_money(ledger, target=target)
    return TargetSpend(
        target=target,
        committed=sum((b.committed for b in batches), ZERO),
        spent=sum((b.spent for b in batches), ZERO),
        hits=sum(b.hits for b in batches),
        bonuses=sum(b.bonuses for b in batches),
    )


def spend_by_target(ledger: Ledger) -> list[TargetSpend]:
    """Return :func:`target_spend` for every target the ledger has crowd work on.

    Args:
        ledger: The open ledger.

    Returns:
        One :class:`TargetSpend` per target, in name order.
    """
    targets = [
        str(r["target"])
        for r in rows(
            ledger.conn,
            "SELECT target FROM hits UNION SELECT target FROM actions ORDER BY target",
        )
    ]
    return [target_spend(ledger, t) for t in targets]


def work_cost(ledger: Ledger, target: str) -> CostSummary:
    """Sum what the collected work costs: rewards and fees of every assignment not
    rejected, plus bonuses paid and their fees.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        The :class:`analysis.report.CostSummary`.
    """
    from analysis.report import CostSummary

    if not pays_workers(target):
        return CostSummary(rewards=ZERO, fees=ZERO, assignments=0)
    rows = ledger.conn.execute(
        "SELECT h.reward, h.max_assignments, COUNT(*) FROM assignments a "
        "JOIN hits h ON h.target = a.target AND h.hit_key = a.hit_key "
        "WHERE a.target = ? AND a.status != 'Rejected' GROUP BY h.reward, h.max_assignments",
        (target,),
    ).fetchall()
    rewards = Decimal("0.00")
    fees = Decimal("0.00")
    assignments = 0
    for reward_text, max_assignments, count in rows:
        reward = Decimal(str(reward_text))
        per_assignment_fee = assignment_fee(reward, int(max_assignments))
        rewards += reward * int(count)
        fees += per_assignment_fee * int(count)
        assignments += int(count)
    bonuses = Decimal("0.00")
    for (amount,) in ledger.conn.execute(
        "SELECT amount FROM actions WHERE target = ? AND kind = 'bonus' AND status = 'done'",
        (target,),
    ):
        value = Decimal(str(amount))
        bonuses += value
        fees += bonus_fee(value)
    cent = Decimal("0.01")
    return CostSummary(
        rewards=rewards.quantize(cent),
        fees=fees.quantize(cent),
        bonuses=bonuses.quantize(cent),
        assignments=assignments,
    )


@dataclass
class BudgetGuard:
    """The budget of one command on one target: checked before every call that commits.

    Start it from :func:`target_spend` while holding the target's lock
    (:func:`turk.crowd.lock.crowd_lock`), then :meth:`take` the cost of each call
    before making it. What is taken stays committed whatever the call's outcome, as
    the ledger counts it, so the guard and :func:`target_spend` agree throughout.

    Attributes:
        target: The crowd target.
        cap: The budget, or None for no cap.
        committed: Committed on the target, this command's calls included.
        taken: What this command took.
        refused: Calls refused because they would cross the cap.
    """

    target: str
    cap: Decimal | None
    committed: Decimal
    taken: Decimal = ZERO
    refused: int = 0

    @classmethod
    def start(cls, ledger: Ledger, target: str, cap: Decimal | None) -> BudgetGuard:
        """Read the target's committed money and return a guard for ``cap``.

        Args:
            ledger: The open ledger.
            target: The crowd target.
            cap: The budget, or None.

        Returns:
            The guard.

        Raises:
            MoneyError: A cap of 0 or less.
        """
        if cap is not None and cap <= 0:
            raise MoneyError(f"--budget {cap}: must be more than 0")
        committed = target_spend(ledger, target).committed
        return cls(target=target, cap=cap, committed=committed)

    @property
    def left(self) -> Decimal | None:
        """What the cap still allows (None without a cap)."""
        if self.cap is None:
            return None
        return max(ZERO, self.cap - self.committed)

    def fits(self, cost: Decimal) -> bool:
        """Return whether ``cost`` more stays within the cap."""
        return self.cap is None or self.committed + cost <= self.cap

    def take(self, cost: Decimal) -> bool:
        """Commit ``cost`` if it fits; count a refusal if not.

        Args:
            cost: What the next call commits, fees included.

        Returns:
            True when taken (make the call), False when it would cross the cap.
        """
        if not self.fits(cost):
            self.refused += 1
            return False
        self.committed += cost
        self.taken += cost
        return True

    def add(self, cost: Decimal) -> None:
        """Count ``cost`` found committed on the target already (no cap check: it is done).

        Args:
            cost: What the target turned out to hold that the ledger did not count.
        """
        self.committed += cost

    def give_back(self, cost: Decimal) -> None:
        """Release ``cost`` for a call that certainly committed nothing (it was refused).

        Args:
            cost: What the refused call would have committed.
        """
        self.committed -= cost
        self.taken = max(ZERO, self.taken - cost)
