"""Money for Mechanical Turk: parse amounts, compute MTurk's fees, estimate a batch's cost.

Every amount is a :class:`decimal.Decimal` quantised to cents, never a float. MTurk's
requester fees (https://requester.mturk.com/pricing): 20% of the reward and of every
bonus, plus another 20% of the reward for HITs with 10 or more assignments, with a
minimum fee of $0.01 per assignment and per bonus payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from turk.errors import MoneyError

CENT = Decimal("0.01")
"""The smallest amount MTurk pays."""

BASE_FEE_RATE = Decimal("0.20")
"""Commission on rewards and bonuses."""

LARGE_HIT_FEE_RATE = Decimal("0.40")
"""Commission on rewards of HITs with :data:`LARGE_HIT_ASSIGNMENTS` or more assignments."""

LARGE_HIT_ASSIGNMENTS = 10
"""MaxAssignments from which the higher commission applies."""

MIN_FEE = Decimal("0.01")
"""Minimum fee per assignment and per bonus payment."""


def parse_amount(text: str, what: str = "--reward") -> Decimal:
    """Parse a US dollar amount such as ``0.05`` or ``$1.20``.

    Args:
        text: The amount as typed; an optional leading ``$`` is allowed.
        what: The option or key the amount came from, named in errors.

    Returns:
        The amount as a Decimal with two decimal places.

    Raises:
        MoneyError: The text is not a number, is negative, or has fractions of a cent.
    """
    raw = text.strip()
    cleaned = raw[1:] if raw.startswith("$") else raw
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise MoneyError(
            f"{what}: {text!r} is not an amount in US dollars; write it like 0.05"
        ) from None
    if not amount.is_finite():
        raise MoneyError(f"{what}: {text!r} is not an amount in US dollars; write it like 0.05")
    if amount < 0:
        raise MoneyError(f"{what}: {text!r} is negative; amounts are 0 or more")
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise MoneyError(
            f"{what}: {text!r} has fractions of a cent; MTurk pays whole cents (e.g. 0.05)"
        )
    return amount.quantize(CENT)


def round_cents(amount: Decimal) -> Decimal:
    """Round an amount to whole cents, halves up (how MTurk rounds its fees).

    Args:
        amount: Dollars.

    Returns:
        The amount in cents.
    """
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def fee_rate(max_assignments: int) -> Decimal:
    """Return MTurk's commission on rewards for a HIT with ``max_assignments``.

    Args:
        max_assignments: The HIT's MaxAssignments.

    Returns:
        0.20, or 0.40 when ``max_assignments`` is 10 or more.
    """
    return LARGE_HIT_FEE_RATE if max_assignments >= LARGE_HIT_ASSIGNMENTS else BASE_FEE_RATE


def mturk_fee(reward: Decimal, max_assignments: int) -> Decimal:
    """Return MTurk's fee for one HIT paid in full (every assignment approved).

    Args:
        reward: Reward per assignment.
        max_assignments: The HIT's MaxAssignments.

    Returns:
        The fee in dollars: per assignment ``max(0.01, rate * reward)`` rounded to cents,
        times ``max_assignments``.
    """
    if max_assignments < 1:
        raise MoneyError(f"max assignments: {max_assignments} must be 1 or more")
    per_assignment = max(MIN_FEE, round_cents(reward * fee_rate(max_assignments)))
    return per_assignment * max_assignments


def assignment_fee(reward: Decimal, max_assignments: int) -> Decimal:
    """Return MTurk's fee on one assignment of a HIT with ``max_assignments``.

    Args:
        reward: Reward per assignment.
        max_assignments: The HIT's MaxAssignments (the rate rises from 10).

    Returns:
        ``max(0.01, rate * reward)`` rounded to cents.
    """
    return mturk_fee(reward, max(1, max_assignments)) / max(1, max_assignments)


def assignment_cost(reward: Decimal, max_assignments: int) -> Decimal:
    """Return what one approved assignment costs: its reward plus MTurk's fee on it.

    Args:
        reward: Reward per assignment.
        max_assignments: The HIT's MaxAssignments.

    Returns:
        The cost in dollars.
    """
    return reward + assignment_fee(reward, max_assignments)


def bonus_fee(bonus: Decimal) -> Decimal:
    """Return MTurk's fee for one bonus payment (20%, at least $0.01; none for 0).

    Args:
        bonus: The bonus amount.

    Returns:
        The fee in dollars.
    """
    if bonus <= 0:
        return Decimal("0.00")
    return max(MIN_FEE, round_cents(bonus * BASE_FEE_RATE))


def bonus_cost(bonus: Decimal) -> Decimal:
    """Return what one bonus payment costs: the bonus plus MTurk's fee on it.

    Args:
        bonus: The bonus amount.

    Returns:
        The cost in dollars.
    """
    return bonus + bonus_fee(bonus)


@dataclass(frozen=True)
class CostEstimate:
    """What a batch costs if every assignment is approved (and every bonus paid).

    Attributes:
        hits: Number of HITs.
        max_assignments: Assignments per HIT.
        reward: Reward per assignment.
        bonus: Bonus per assignment (0 when none).
        fee_rate: Commission on rewards (0.20 or 0.40).
        assignments: ``hits * max_assignments``.
        rewards: Total paid to workers as rewards.
        bonuses: Total paid to workers as bonuses.
        fees: Total MTurk fees on rewards and bonuses.
        total: ``rewards + bonuses + fees``.
        items: Items the cost is spread over (0 when unknown).
        per_item: ``total / items`` to four decimal places, or None when items is 0.
    """

    hits: int
    max_assignments: int
    reward: Decimal
    bonus: Decimal
    fee_rate: Decimal
    assignments: int
    rewards: Decimal
    bonuses: Decimal
    fees: Decimal
    total: Decimal
    items: int
    per_item: Decimal | None


def estimate_cost(
    hits: int,
    reward: Decimal,
    max_assignments: int,
    bonus: Decimal = Decimal("0"),
    *,
    items: int = 0,
) -> CostEstimate:
    """Estimate the cost of publishing ``hits`` HITs with MTurk's fees.

    Args:
        hits: Number of HITs.
        reward: Reward per assignment.
        max_assignments: Assignments per HIT (the fee rises from 10).
        bonus: Bonus per assignment, if every assignment earns one.
        items: Items labeled by the batch, to report a cost per item (0: none).

    Returns:
        The :class:`CostEstimate`.

    Raises:
        MoneyError: A negative count or amount.
    """
    if hits < 0:
        raise MoneyError(f"HIT count: {hits} is negative")
    if reward < 0 or bonus < 0:
        raise MoneyError("reward and bonus must be 0 or more")
    assignments = hits * max_assignments
    fee_per_hit = mturk_fee(reward, max_assignments)
    rewards = round_cents(reward * assignments)
    bonuses = round_cents(bonus * assignments)
    fees = fee_per_hit * hits + bonus_fee(bonus) * assignments
    total = rewards + bonuses + fees
    per_item = None
    if items:
        per_item = (total / items).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return CostEstimate(
        hits=hits,
        max_assignments=max_assignments,
        reward=round_cents(reward),
        bonus=round_cents(bonus),
        fee_rate=fee_rate(max_assignments),
        assignments=assignments,
        rewards=rewards,
        bonuses=bonuses,
        fees=round_cents(fees),
        total=round_cents(total),
        items=items,
        per_item=per_item,
    )


def format_usd(amount: Decimal) -> str:
    """Format an amount as US dollars, e.g. ``$1,234.50`` (sub-cent amounts keep 4 places).

    Args:
        amount: The amount.

    Returns:
        The formatted string.
    """
    places = CENT if amount == amount.quantize(CENT) else Decimal("0.0001")
    value = amount.quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,}"
