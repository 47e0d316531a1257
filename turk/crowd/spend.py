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
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from turk.crowd.records import rows
from turk.errors import MoneyError
from turk.ledger import Ledger
from turk.money import assignment_cost, bonus_cost, format_usd

ZERO = Decimal("0.00")


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
            ``budget - committed`` (never below 0), or None.
        """
        if budget is None:
            return None
        return max(ZERO, budget - self.committed)

    def describe(self, budget: Decimal | None) -> str:
        """Return one line: committed, spent and left on the target."""
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


def target_spend(ledger: Ledger, target: str) -> TargetSpend:
    """Read what is committed and spent on ``target`` (the only place this is summed).

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        The :class:`TargetSpend`.
    """
    committed = spent = ZERO
    hits = bonuses = 0
    for h in rows(
        ledger.conn,
        "SELECT reward, max_assignments, (SELECT COUNT(*) FROM assignments a WHERE "
        "a.target=h.target AND a.hit_key=h.hit_key AND a.status='Approved') AS approved "
        "FROM hits h WHERE h.target=? AND (h.hit_id IS NOT NULL OR h.sent_at IS NOT NULL)",
        (target,),
    ):
        reward, n = Decimal(str(h["reward"])), int(h["max_assignments"])
        per = assignment_cost(reward, n)
        committed += per * n
        spent += per * int(h["approved"])
        hits += 1
    for a in rows(
        ledger.conn,
        "SELECT kind, amount, status FROM actions WHERE target=? AND kind IN ('bonus', 'extend') "
        "AND status IN ('intent', 'done')",
        (target,),
    ):
        amount = Decimal(str(a["amount"] or "0"))
        if a["kind"] == "bonus":
            committed += bonus_cost(amount)
            bonuses += 1
            if a["status"] == "done":
                spent += bonus_cost(amount)
        elif a["status"] == "intent":
            # A done extension is in its HIT's max_assignments already.
            committed += amount
    return TargetSpend(
        target=target,
        committed=committed.quantize(Decimal("0.01")),
        spent=spent.quantize(Decimal("0.01")),
        hits=hits,
        bonuses=bonuses,
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
