"""The demo's crowd stages: publish to a local sandbox, simulated workers, collect, review.

:func:`stage_publish` starts the project's MTurk-compatible server in the background
(state in ``<out>/sandbox.db``, serving the ledger's ``media/`` folder) and publishes the
ranked candidates with gold from the sample; :func:`stage_workers` lets a simulated
population (one spammer in eight) answer from the sample's ``truth.csv``;
:func:`stage_collect` and :func:`stage_review` do what ``turk collect`` and ``turk
review`` do, and the review stage stops the server. Every stage is idempotent: a rerun
publishes, collects and reviews only what is missing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turk.crowd.boto import BotoBackend
    from turk.demo import DemoContext

DEMO_WORKERS = 8
"""Simulated workers in the demo."""


def _backend(ctx: DemoContext) -> BotoBackend:
    """The demo's backend, on its sandbox (started on first use)."""
    from turk.crowd.boto import connect
    from turk.sandbox import SandboxConfig, SandboxServer

    server: Any = ctx.state.get("sandbox")
    if server is None:
        media = ctx.ledger.root / "media"
        media.mkdir(parents=True, exist_ok=True)
        server = SandboxServer(
            SandboxConfig(state_path=ctx.out_dir / "sandbox.db", media_dir=media)
        ).start()
        ctx.state["sandbox"] = server
        ctx.closers.append(server.stop)
        ctx.state["backend"] = connect("local", endpoint_url=server.url)
    backend: BotoBackend = ctx.state["backend"]
    return backend


def stage_publish(ctx: DemoContext) -> str:
    """Publish the candidates (with the sample's gold) to a local sandbox.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    from turk.publish import load_publish_config, plan_for_publish, publish

    backend = _backend(ctx)
    plans = plan_for_publish(
        ctx.ledger, backend, gold=ctx.sample_dir / "gold.csv", gold_rate=0.1, seed=ctx.seed
    )
    shown: list[str] = []
    report = publish(
        ctx.ledger,
        backend,
        plans,
        load_publish_config(),
        concurrency=8,
        on_plan=lambda prepared: shown.extend(prepared.describe()),
    )
    return (
        f"sandbox at {backend.endpoint_url}; {report.published} HITs published, "
        f"{report.already} already there; {report.money_line()} ({shown[1]})"
    )


def stage_workers(ctx: DemoContext) -> str:
    """Let simulated workers (one spammer in eight) do the open HITs.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    from turk.sandbox.workers import run_workers

    backend = _backend(ctx)
    result = run_workers(
        backend.endpoint_url,
        ctx.sample_dir / "truth.csv",
        n=DEMO_WORKERS,
        seed=ctx.seed,
        spammers=1 / DEMO_WORKERS,
    )
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(result.by_kind.items()))
    return (
        f"{result.workers} simulated workers ({kinds}) submitted {result.submitted} "
        f"assignments, {result.items_correct}/{result.items_answered} items right"
    )


def stage_collect(ctx: DemoContext) -> str:
    """Collect the submitted work into the ledger.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    from turk.collect import collect

    report = collect(ctx.ledger, _backend(ctx))
    return (
        f"{report.assignments_new} new assignments, {report.answers} answers "
        f"({report.flagged} flagged), {sum(report.calls.values())} API calls"
    )


def stage_review(ctx: DemoContext) -> str:
    """Approve or reject by the gold rule (>= 3 gold seen, >= 80% right); stop the sandbox.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    from turk.money import format_usd
    from turk.review import ReviewOptions, review
    from turk.status import batch_status

    try:
        report = review(ctx.ledger, _backend(ctx), ReviewOptions(approve_all=True))
        spent = sum((s.spent for s in batch_status(ctx.ledger, target="local")), Decimal(0))
    finally:
        server = ctx.state.pop("sandbox", None)
        ctx.state.pop("backend", None)
        if server is not None:
            server.stop()
    workers = ", ".join(f"{n} {v}" for v, n in sorted(report.workers.items()))
    return (
        f"approved {report.approved}, rejected {report.rejected} ({report.already} already "
        f"done); workers: {workers}; spent {format_usd(spent)} (sandbox money); sandbox stopped"
    )


CROWD_STAGES = [
    ("publish", stage_publish),
    ("workers", stage_workers),
    ("collect", stage_collect),
    ("review", stage_review),
]
"""The crowd stages in order, for :data:`turk.demo.STAGES`."""
