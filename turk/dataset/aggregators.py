"""The aggregation models ``--aggregator`` and ``certification.aggregator`` name.

The one list of names: the command line's help, turk.yaml's check and the results all
read it here. Importing this module costs nothing; the models themselves
(:mod:`analysis.aggregation`) load when :func:`make_aggregator` first runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from turk.errors import ConfigError

if TYPE_CHECKING:
    from analysis.aggregation import Aggregator

__all__ = ["AGGREGATORS", "AGGREGATOR_HELP", "DEFAULT_AGGREGATOR", "make_aggregator"]

AGGREGATORS: dict[str, str] = {
    "ds": "Dawid-Skene",
    "one-coin": "one-coin Dawid-Skene",
    "mv": "majority vote",
    "gold-mv": "gold-weighted majority vote",
    "glad": "GLAD",
    "mace": "MACE",
}
"""Aggregation models by the name ``--aggregator`` takes, with what each is."""

DEFAULT_AGGREGATOR = "ds"
"""The model used when none is named."""

AGGREGATOR_HELP = (
    "Aggregation model: "
    + ", ".join(
        name if name.upper() == what else f"{name} ({what})" for name, what in AGGREGATORS.items()
    )
    + "."
)
"""The ``--aggregator`` help text."""


def make_aggregator(name: str) -> Aggregator:
    """Return a fresh, unfitted aggregator for an ``--aggregator`` name.

    Args:
        name: One of :data:`AGGREGATORS`.

    Returns:
        The unfitted aggregator.

    Raises:
        ConfigError: Unknown name.
    """
    from analysis.aggregation import (
        GLAD,
        MACE,
        DawidSkene,
        GoldMajorityVote,
        MajorityVote,
        OneCoinDawidSkene,
    )

    models: dict[str, type[Aggregator]] = {
        "ds": DawidSkene,
        "one-coin": OneCoinDawidSkene,
        "mv": MajorityVote,
        "gold-mv": GoldMajorityVote,
        "glad": GLAD,
        "mace": MACE,
    }
    if name not in AGGREGATORS:
        raise ConfigError(f"--aggregator {name!r}: unknown; use one of {', '.join(AGGREGATORS)}")
    return models[name]()
