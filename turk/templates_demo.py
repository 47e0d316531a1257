"""The demo's ``render`` stage: the sample's HITs rendered, validated and priced."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from turk.render import dry_run

if TYPE_CHECKING:
    from turk.demo import DemoContext

DEMO_REWARD = Decimal("0.05")
"""Reward per assignment the demo prices its HITs at."""

DEMO_ASSIGNMENTS = 3
"""Workers per HIT in the demo."""


def stage_render(ctx: DemoContext) -> str:
    """Render the sample's binary HITs with gold to ``<out>/hits`` and price them.

    Args:
        ctx: The demo context (after the ``rank`` stage).

    Returns:
        The stage's summary: the dry-run report.
    """
    report = dry_run(
        ctx.ledger,
        reward=DEMO_REWARD,
        max_assignments=DEMO_ASSIGNMENTS,
        out_dir=ctx.out_dir / "hits",
        gold=ctx.sample_dir / "gold.csv",
        gold_rate=0.1,
        seed=ctx.seed,
        instruction_set="sample",
    )
    ctx.state["render"] = report
    return "\n".join(report.lines())
