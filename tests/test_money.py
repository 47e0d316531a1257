"""Money: parsing amounts, MTurk's fees on both sides of the 10-assignment boundary, estimates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from turk.errors import MoneyError
from turk.money import bonus_fee, estimate_cost, format_usd, mturk_fee, parse_amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.05", "0.05"), ("$1.2", "1.20"), (" 3 ", "3.00"), ("0", "0.00"), ("0.10", "0.10")],
)
def test_parse_amount(text: str, expected: str) -> None:
    amount = parse_amount(text)
    assert isinstance(amount, Decimal)
    assert str(amount) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "not an amount"),
        ("", "not an amount"),
        ("NaN", "not an amount"),
        ("Infinity", "not an amount"),
        ("-0.05", "negative"),
        ("0.005", "fractions of a cent"),
        ("1e-3", "fractions of a cent"),
    ],
)
def test_parse_amount_rejects_and_names_the_option(text: str, reason: str) -> None:
    with pytest.raises(MoneyError, match=reason) as info:
        parse_amount(text, "--bonus")
    assert str(info.value).startswith("--bonus:")


def test_fee_is_20_percent_below_10_assignments_and_40_from_10() -> None:
    assert mturk_fee(Decimal("0.50"), 9) == Decimal("0.90")  # 0.10 x 9
    assert mturk_fee(Decimal("0.50"), 10) == Decimal("2.00")  # 0.20 x 10
    assert mturk_fee(Decimal("1.00"), 1) == Decimal("0.20")


def test_fee_has_a_one_cent_minimum_per_assignment() -> None:
    assert mturk_fee(Decimal("0.01"), 3) == Decimal("0.03")
    assert mturk_fee(Decimal("0.02"), 12) == Decimal("0.12")  # 40% of 0.02 rounds to 0.01
    assert mturk_fee(Decimal("0.00"), 2) == Decimal("0.02")


def test_bonus_fee() -> None:
    assert bonus_fee(Decimal("0")) == Decimal("0.00")
    assert bonus_fee(Decimal("0.02")) == Decimal("0.01")
    assert bonus_fee(Decimal("1.00")) == Decimal("0.20")


def test_estimate_both_sides_of_the_boundary() -> None:
    below = estimate_cost(100, Decimal("0.05"), 9, items=1000)
    assert below.assignments == 900
    assert below.rewards == Decimal("45.00")
    assert below.fees == Decimal("9.00")
    assert below.total == Decimal("54.00")
    assert below.fee_rate == Decimal("0.20")
    assert below.per_item == Decimal("0.0540")
    above = estimate_cost(100, Decimal("0.05"), 10, items=1000)
    assert above.rewards == Decimal("50.00")
    assert above.fees == Decimal("20.00")
    assert above.total == Decimal("70.00")
    assert above.fee_rate == Decimal("0.40")


def test_estimate_with_bonus_charges_20_percent_on_bonuses_only() -> None:
    est = estimate_cost(10, Decimal("0.10"), 10, Decimal("0.05"))
    assert est.rewards == Decimal("10.00")
    assert est.bonuses == Decimal("5.00")
    # rewards at 40% (10 assignments), bonuses at 20%, min 1 cent each
    assert est.fees == Decimal("4.00") + Decimal("1.00")
    assert est.total == Decimal("20.00")
    assert est.per_item is None


def test_estimate_refuses_negative_input() -> None:
    with pytest.raises(MoneyError):
        estimate_cost(-1, Decimal("0.05"), 3)
    with pytest.raises(MoneyError):
        estimate_cost(1, Decimal("-0.05"), 3)
    with pytest.raises(MoneyError):
        mturk_fee(Decimal("0.05"), 0)


def test_format_usd() -> None:
    assert format_usd(Decimal("1234.5")) == "$1,234.50"
    assert format_usd(Decimal("0.05")) == "$0.05"
    assert format_usd(Decimal("0.0125")) == "$0.0125"
    assert format_usd(Decimal("-2")) == "-$2.00"
