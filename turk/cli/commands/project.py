"""Commands of the project area: ``turk init``, ``turk run``, ``turk doctor``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from turk.cli.app import app, state
from turk.cli.console import console, err_console, progress_bar

_PROJECT_HELP = "The project file (turk.yaml), or its folder. Default: ./turk.yaml or above."


@app.command("init")
def init_command(
    folder: Annotated[
        Path, typer.Argument(help="Folder of the new project (created when missing).")
    ],
    from_sample: Annotated[
        bool,
        typer.Option(
            "--from-sample",
            help="Fill the project from a fresh sample collection in FOLDER/sample "
            "(simulated workers on the local sandbox; runs offline).",
        ),
    ] = False,
    n: Annotated[int, typer.Option("--n", min=11, help="Photos in the sample collection.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample collection.")] = 0,
) -> None:
    """Scaffold a curation project: turk.yaml, concepts.yaml, instructions/, gold.csv, README."""
    from turk.project.scaffold import init_project

    summary = init_project(folder, from_sample=from_sample, n=n, seed=seed)
    for name in summary.written:
        console.print(f"  wrote {folder / name}")
    for name in summary.kept:
        console.print(f"  kept  {folder / name} (already there)")
    sample = f"; sample of {summary.sample_images:,} photos" if summary.sample_images else ""
    console.print(f"init: project in {folder} with concepts {', '.join(summary.concepts)}{sample}")
    console.print(f"next: cd {folder} && turk doctor && turk run --until rank")


@app.command("run")
def run_command(
    stages: Annotated[
        list[str] | None,
        typer.Argument(
            help="Stages to run, in pipeline order: ingest buckets embed rank publish "
            "collect review report export. Default: all that are not done.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Stop after this stage.", show_default=False),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Redo this stage and every later one.", show_default=False),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before a production publish.")
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Allow publishing on mturk (real money); turk.yaml needs crowd.live: true too.",
        ),
    ] = False,
    project: Annotated[
        Path | None, typer.Option("--project", help=_PROJECT_HELP, show_default=False)
    ] = None,
) -> None:
    """Run the pipeline from turk.yaml, skipping what is done and stopping before spending."""
    from turk.project.config import find_project, load_project
    from turk.project.pipeline import StageOutcome, run_pipeline

    config = load_project(find_project(project))

    def confirm(lines: list[str]) -> bool:
        for line in lines:
            err_console.print(f"  {line}", markup=False)
        if yes:
            return True
        return typer.confirm("Publish these HITs on mturk (real money)?", default=False)

    def show(outcome: StageOutcome) -> None:
        console.print(f"[bold]{outcome.name}[/bold] ({outcome.status})")
        for line in outcome.lines:
            console.print(f"  {line}", markup=False)

    result = run_pipeline(
        config,
        stages=stages or (),
        start=start,
        until=until,
        live=live,
        confirm=confirm,
        progress=progress_bar,
        on_stage=show,
    )
    if result.stopped:
        console.print(result.stopped, markup=False)
    for note in result.notes:
        console.print(note, markup=False)
    done = sum(o.status == "done" for o in result.outcomes)
    skipped = sum(o.status == "skipped" for o in result.outcomes)
    console.print(f"run: {done} stages run, {skipped} already done; ledger {config.ledger}")


@app.command("doctor")
def doctor_command(
    ctx: typer.Context,
    project: Annotated[
        Path | None, typer.Option("--project", help=_PROJECT_HELP, show_default=False)
    ] = None,
    skip_model: Annotated[
        bool, typer.Option("--skip-model", help="Do not load the configured model.")
    ] = False,
) -> int:
    """Check Python, packages, device, ledger, model, disk, AWS, sandbox, templates, turk.yaml.

    Outside a project it checks the machine and the ledger named by --db / $TURK_DB.
    """
    from turk.errors import ConfigError
    from turk.ledger import DEFAULT_DB
    from turk.project.config import find_project
    from turk.project.doctor import FAIL, Finding, run_doctor

    try:
        project_file: Path | None = find_project(project)
    except ConfigError:
        if project is not None:
            raise
        project_file = None
    db = state(ctx).db
    # The default ./turk.db is checked only when it is there; a named one always.
    ledger = db if db.exists() or db != Path(DEFAULT_DB) else None

    def show(finding: Finding) -> None:
        style = {"ok": "green", "warn": "yellow", "fail": "red"}[finding.status]
        console.print(f"[{style}]{finding.status:>4}[/{style}] ", end="")
        line = finding.line().split("] ", 1)[1]
        console.print(line, markup=False)

    findings = run_doctor(project_file, model=not skip_model, on_finding=show, ledger=ledger)
    failed = sum(f.status == FAIL for f in findings)
    console.print(
        f"doctor: {len(findings)} checks, {failed} failed" + ("" if failed else "; ready")
    )
    if failed:
        raise typer.Exit(1)
    return 0
