"""The demo's last stages: audit (from the sample's truth), report and export.

Each function is a :data:`turk.demo.DemoStage` body: it takes the demo context and
returns its summary. The audit reads its verdicts from the sample collection's
``truth.csv`` (nobody sits at the audit page in a demo), and the report says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.report import write_report
from turk.audit import apply_truth_file, audit_progress, draw_audit, find_open_audit
from turk.exporting import export_from_ledger
from turk.reporting import crowd_results, ledger_report

if TYPE_CHECKING:
    from turk.demo import DemoContext


def stage_audit(ctx: DemoContext) -> str:
    """Audit a uniform sample of the accepted images, verdicts read from truth.csv.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    results = crowd_results(ctx.ledger)
    audit_id = find_open_audit(ctx.ledger, results.target, None, None, "truth")
    if audit_id is None:
        done = ctx.ledger.conn.execute(
            "SELECT id FROM audits WHERE target = ? AND source = 'truth' AND status = 'done' "
            "ORDER BY id DESC LIMIT 1",
            (results.target,),
        ).fetchone()
        audit_id = int(done[0]) if done else draw_audit(ctx.ledger, results, source="truth")
    apply_truth_file(ctx.ledger, audit_id, ctx.sample_dir / "truth.csv")
    p = audit_progress(ctx.ledger, audit_id)
    verdict = "certified" if p.certified else "not certified"
    return (
        f"audit {audit_id}: {p.marked} of {p.population} accepted images checked against "
        f"truth.csv (a demo stands in for the requester), {p.errors} wrong; precision >= "
        f"{p.lower_bound:.2%} at {p.confidence:.0%} confidence: {verdict} for {p.target:.0%}"
    )


def stage_report(ctx: DemoContext) -> str:
    """Write the report to ``<out>/report``.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary, with the report's path.
    """
    report, _ = ledger_report(ctx.ledger, title="turk demo report")
    files = write_report(report, ctx.out_dir / "report")
    s = report.summary
    return (
        f"{s['accepted']} of {s['verified']} verified images accepted; dataset "
        f"{s['dataset_status']} (model estimate {s['dataset_estimated_precision']:.2%}); "
        f"cost {s.get('cost_total', '?')} USD\nreport: {files.html.resolve()}"
    )


def stage_export(ctx: DemoContext) -> str:
    """Export the dataset in CLEAR's layout to ``<out>/export``.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary, with the export's path.
    """
    out = ctx.out_dir / "export"
    summary, _ = export_from_ledger(ctx.ledger, out, mode="hardlink", title="turk demo dataset")
    return (
        f"{summary.images} labeled images, classes {', '.join(summary.class_names)}, "
        f"{len(summary.counts)} labeled buckets, {len(summary.reserved_buckets)} reserved\n"
        f"export: {out.resolve()} (datasheet: {(out / 'datasheet.md').resolve()})"
    )
