"""Commands of the dataset area (:mod:`turk.dataset`): ``audit``, ``report``, ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from turk.cli.app import app, open_ledger
from turk.cli.console import console, err_console, progress_bar
from turk.crowd.backend import TARGETS
from turk.dataset.aggregators import AGGREGATOR_HELP, DEFAULT_AGGREGATOR

if TYPE_CHECKING:
    from turk.dataset.audit import AuditProgress

_CROWD_HELP = (
    f"Crowd target whose answers to use ({', '.join(TARGETS)}). Default: the only one with answers."
)
_TARGET_HELP = "Precision to certify, e.g. 0.99."
_CONFIDENCE_HELP = "Confidence of the one-sided certification, e.g. 0.95."

AggregatorOption = Annotated[str, typer.Option("--aggregator", help=AGGREGATOR_HELP)]
CrowdOption = Annotated[str | None, typer.Option("--target", help=_CROWD_HELP, show_default=False)]
TargetOption = Annotated[float, typer.Option("--precision", help=_TARGET_HELP)]
ConfidenceOption = Annotated[float, typer.Option("--confidence", help=_CONFIDENCE_HELP)]
MinPosteriorOption = Annotated[
    float,
    typer.Option(
        "--min-posterior",
        help="Posterior probability an item needs to be accepted (a bare majority is not "
        "enough for a high-precision dataset). Use the same value for audit, report, export.",
    ),
]


@app.command("audit")
def audit_command(
    ctx: typer.Context,
    concept: Annotated[
        str | None,
        typer.Option("--concept", help="Audit only this concept.", show_default=False),
    ] = None,
    bucket: Annotated[
        int | None,
        typer.Option("--bucket", help="Audit only this time bucket.", show_default=False),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            min=1,
            help="Items in the pooled sample. Default: the zero-error size for --precision at "
            "--confidence (299 for 0.99 at 0.95), or the whole scope when smaller.",
            show_default=False,
        ),
    ] = None,
    per_stratum: Annotated[
        int,
        typer.Option(
            "--per-stratum",
            min=0,
            help="Extra items per concept x bucket (smaller cells are audited in full).",
        ),
    ] = 0,
    target: TargetOption = 0.99,
    confidence: ConfidenceOption = 0.95,
    sprt: Annotated[
        bool,
        typer.Option(
            "--sprt", help="Stop as soon as a sequential test certifies or refutes the target."
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random sample.")] = 0,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port of the audit page (0: any free).")
    ] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Address the audit page listens on.")
    ] = "127.0.0.1",
    answers: Annotated[
        Path | None,
        typer.Option(
            "--answers",
            help="Mark items from a CSV file (header image,concept,correct) instead of the page.",
            show_default=False,
        ),
    ] = None,
    from_truth: Annotated[
        Path | None,
        typer.Option(
            "--from-truth",
            help="Mark items from a known truth file (the sample's truth.csv); the report "
            "labels these verdicts as read from a truth file.",
            show_default=False,
        ),
    ] = None,
    new: Annotated[
        bool, typer.Option("--new", help="Draw a new sample even if an open audit exists.")
    ] = False,
    aggregator: AggregatorOption = DEFAULT_AGGREGATOR,
    crowd: CrowdOption = None,
    min_posterior: MinPosteriorOption = 0.95,
) -> None:
    """Check a uniform random sample of accepted images by hand and certify precision.

    Without --answers or --from-truth, serves a local page (one image at a time, Right /
    Wrong buttons, keys y / n / u) until the audit is complete; verdicts are saved at
    once, so rerunning resumes where it stopped.
    """
    from turk.dataset.audit import (
        apply_answers_file,
        apply_truth_file,
        audit_progress,
        draw_audit,
        find_open_audit,
        serve_audit,
    )
    from turk.dataset.results import crowd_results
    from turk.errors import ConfigError

    if answers is not None and from_truth is not None:
        raise ConfigError("--answers and --from-truth: pass one of them, not both")
    source = "answers-file" if answers else "truth" if from_truth else "requester"
    settings = {
        "concept": concept,
        "bucket": bucket,
        "size": size,
        "sprt": sprt,
        "seed": seed,
        "source": source,
        "target": target,
        "confidence": confidence,
    }
    with open_ledger(ctx, create=False) as ledger, ledger.run("audit", settings) as run:
        results = crowd_results(
            ledger, target=crowd, aggregator=aggregator, min_posterior=min_posterior
        )
        audit_id = None if new else find_open_audit(ledger, results.target, concept, bucket, source)
        if audit_id is None:
            audit_id = draw_audit(
                ledger,
                results,
                concept=concept,
                bucket=bucket,
                size=size,
                per_stratum=per_stratum,
                target=target,
                confidence=confidence,
                sprt=sprt,
                seed=seed,
                source=source,
            )
            progress = audit_progress(ledger, audit_id)
            console.print(
                f"audit {audit_id}: drew {progress.sample_size} of {progress.population} "
                f"accepted items ({progress.scope})"
            )
            run.add("drawn", progress.sample_size)
        else:
            progress = audit_progress(ledger, audit_id)
            console.print(
                f"audit {audit_id}: resuming ({progress.marked} of {progress.sample_size} "
                f"marked; --new draws a fresh sample)"
            )
        if answers is not None or from_truth is not None:
            apply = apply_answers_file if answers is not None else apply_truth_file
            marked, left = apply(ledger, audit_id, answers or from_truth)  # type: ignore[arg-type]
            run.add("marked", marked)
            console.print(f"audit {audit_id}: marked {marked} item(s); {left} left unmarked")
        elif progress.status != "done":
            progress = serve_audit(
                ledger,
                audit_id,
                host=host,
                port=port,
                on_ready=lambda url: console.print(
                    f"audit {audit_id}: open {url} in a browser; Ctrl-C stops (verdicts are saved)"
                ),
            )
        progress = audit_progress(ledger, audit_id)
        run.add("errors", progress.errors)
    console.print(_progress_line(progress))


def _progress_line(progress: AuditProgress) -> str:
    verdict = "certified" if progress.certified else "not certified"
    line = (
        f"audit {progress.audit_id} ({progress.scope}): {progress.marked}/"
        f"{progress.sample_size} marked, {progress.errors} wrong; precision >= "
        f"{progress.lower_bound:.2%} at {progress.confidence:.0%} confidence from "
        f"{progress.pooled_marked} pooled item(s): {verdict} for {progress.target:.2%}"
    )
    if progress.sprt:
        line += f"; sequential test: {progress.decision}"
    if progress.status != "done":
        line += "; rerun 'turk audit' to continue"
    return line


@app.command("report")
def report_command(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for report.html, report.json and the CSVs.")
    ] = Path("report"),
    aggregator: AggregatorOption = DEFAULT_AGGREGATOR,
    target: TargetOption = 0.99,
    confidence: ConfidenceOption = 0.95,
    crowd: CrowdOption = None,
    min_posterior: MinPosteriorOption = 0.95,
    title: Annotated[str, typer.Option("--title", help="Title of the report.")] = (
        "turk dataset report"
    ),
) -> None:
    """Write the dataset report: one self-contained HTML file, report.json and CSV tables."""
    from analysis.report import write_report
    from turk.dataset.report import ledger_report

    with (
        open_ledger(ctx, create=False) as ledger,
        ledger.run("report", {"out": str(out), "aggregator": aggregator, "target": target}) as run,
    ):
        report, _ = ledger_report(
            ledger,
            target=crowd,
            aggregator=aggregator,
            min_posterior=min_posterior,
            target_precision=target,
            confidence=confidence,
            title=title,
        )
        files = write_report(report, out)
        run.add("accepted", int(report.summary["accepted"]))
    s = report.summary
    console.print(
        f"report: {s['verified']} items verified, {s['accepted']} accepted, {s['audited']} "
        f"audited; dataset {s['dataset_status']} (model estimate "
        f"{s['dataset_estimated_precision']:.2%})"
    )
    console.print(f"report: wrote {files.html}, {files.json} and {len(files.csvs)} CSV files")


@app.command("export")
def export_command(
    ctx: typer.Context,
    out_dir: Annotated[
        Path,
        typer.Argument(
            help="Export folder (new, empty, or a previous export).", show_default=False
        ),
    ],
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="How images get there: copy, hardlink (copy across file systems) or symlink.",
        ),
    ] = "copy",
    link: Annotated[bool, typer.Option("--link", help="Same as --mode hardlink.")] = False,
    copy: Annotated[bool, typer.Option("--copy", help="Same as --mode copy.")] = False,
    seeds: Annotated[
        str, typer.Option("--seeds", help="Seeds of the train/test splits, comma-separated.")
    ] = "0,1,2,3,4",
    test_fraction: Annotated[
        float,
        typer.Option("--test-fraction", help="Share of each class per bucket held out for test."),
    ] = 0.3,
    instructions: Annotated[
        Path | None,
        typer.Option(
            "--instructions",
            help="Instruction set the workers saw (folder or packaged name). Default: the one "
            "publish used, else the packaged set covering the concepts.",
            show_default=False,
        ),
    ] = None,
    aggregator: AggregatorOption = DEFAULT_AGGREGATOR,
    target: TargetOption = 0.99,
    confidence: ConfidenceOption = 0.95,
    crowd: CrowdOption = None,
    min_posterior: MinPosteriorOption = 0.95,
    title: Annotated[str, typer.Option("--title", help="Dataset name in the datasheet.")] = (
        "turk dataset"
    ),
) -> None:
    """Export the verified dataset in CLEAR's layout (images, metadata, filelists, splits,
    unlabeled lists, instructions, datasheet)."""
    from turk.dataset.export import export_from_ledger
    from turk.errors import ConfigError

    if link and copy:
        raise ConfigError("--link and --copy: pass one of them")
    chosen = "hardlink" if link else "copy" if copy else mode
    if chosen not in ("copy", "hardlink", "symlink"):
        raise ConfigError(f"--mode {mode!r}: use copy, hardlink or symlink")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(
            f"--seeds {seeds!r}: write integers separated by commas, e.g. 0,1,2"
        ) from None
    with (
        open_ledger(ctx, create=False) as ledger,
        ledger.run("export", {"out": str(out_dir), "mode": chosen, "seeds": seed_list}) as run,
        progress_bar("export", None, "images") as advance,
    ):
        summary, export_report = export_from_ledger(
            ledger,
            out_dir,
            target=crowd,
            aggregator=aggregator,
            min_posterior=min_posterior,
            mode=chosen,  # type: ignore[arg-type]
            seeds=seed_list,
            test_fraction=test_fraction,
            target_precision=target,
            confidence=confidence,
            instructions=instructions,
            title=title,
            on_progress=advance,
        )
        run.add("images", summary.images)
    console.print(
        f"export: {summary.images} labeled images in {len(summary.counts)} buckets, "
        f"{len(summary.class_names)} classes ({', '.join(summary.class_names)}); "
        f"{summary.images_reused} already in place, {summary.stale_removed} stale removed; "
        f"unlabeled: {sum(summary.unlabeled.values())} images"
    )
    console.print(f"export: wrote {out_dir} (datasheet: {out_dir / 'datasheet.md'})")
    if not export_report.summary["accepted"]:
        err_console.print(
            f"export: warning: no item reached --min-posterior {min_posterior} yet, so the "
            "labeled classes are empty; run 'turk review --extend' for more answers"
        )
