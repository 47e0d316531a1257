"""Commands of the project area: ``turk init``, ``run``, ``round``, ``demo``, ``doctor``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from turk.cli.app import app, state
from turk.cli.console import console, err_console, progress_bar

if TYPE_CHECKING:
    from turk.project.pipeline import RunResult, StageOutcome

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        help="The project file (turk.yaml), or its folder. Default: ./turk.yaml or above.",
        show_default=False,
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask before a production publish.")
]
LiveOption = Annotated[
    bool,
    typer.Option(
        "--live",
        help="Allow publishing on mturk (real money); turk.yaml needs crowd.live: true too.",
    ),
]


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
            "collect review rounds report export. Default: all that are not done.",
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
    yes: YesOption = False,
    live: LiveOption = False,
    project: ProjectOption = None,
) -> None:
    """Run the pipeline from turk.yaml, skipping what is done and stopping before spending."""
    from turk.project.config import find_project, load_project
    from turk.project.pipeline import run_pipeline

    config = load_project(find_project(project))
    result = run_pipeline(
        config,
        stages=stages or (),
        start=start,
        until=until,
        live=live,
        confirm=_confirm(yes),
        progress=progress_bar,
        on_stage=_show_stage,
    )
    _show_end(result, "run", config.ledger)


@app.command("round")
def round_command(
    yes: YesOption = False,
    live: LiveOption = False,
    project: ProjectOption = None,
) -> None:
    """Run one curation round by hand: choose the short cells' next candidates, send them,
    collect and review; 'turk run report export' then shows where every cell stands."""
    from turk.project.config import find_project, load_project
    from turk.project.pipeline import run_pipeline

    config = load_project(find_project(project))
    result = run_pipeline(
        config,
        stages=("rounds",),
        live=live,
        confirm=_confirm(yes),
        progress=progress_bar,
        on_stage=_show_stage,
        round_limit=1,
    )
    _show_end(result, "round", config.ledger)


def _confirm(yes: bool) -> Callable[[list[str]], bool]:
    """Show a production publish's cost on stderr and ask, unless ``--yes``."""

    def confirm(lines: list[str]) -> bool:
        for line in lines:
            err_console.print(f"  {line}", markup=False)
        return yes or typer.confirm("Publish these HITs on mturk (real money)?", default=False)

    return confirm


def _show_stage(outcome: StageOutcome) -> None:
    console.print(f"[bold]{outcome.name}[/bold] ({outcome.status})")
    for line in outcome.lines:
        console.print(f"  {line}", markup=False)


def _show_end(result: RunResult, command: str, ledger: Path) -> None:
    if result.stopped:
        console.print(result.stopped, markup=False)
    for note in result.notes:
        console.print(note, markup=False)
    done = sum(o.status == "done" for o in result.outcomes)
    skipped = sum(o.status == "skipped" for o in result.outcomes)
    console.print(f"{command}: {done} stages run, {skipped} already done; ledger {ledger}")


@app.command("demo")
def demo_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder of the demo project (created when missing).")
    ] = Path("demo-out"),
    n: Annotated[int, typer.Option("--n", min=11, help="Photos in the sample collection.")] = 2000,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="open_clip model name or config .json instead of the demo model's.",
            show_default=False,
        ),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            "--pretrained",
            help="Weights tag or file instead of the demo model's, or 'none' for random "
            "weights. Default: the demo model, a tiny open_clip trained on synthetic sample "
            "scenes (not CLIP).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the whole pipeline offline: 'turk init --from-sample' into --out, then 'turk run'."""
    from turk.project.demo import run_demo

    if not (out / "turk.yaml").exists():
        console.print(f"demo: writing a sample project of {n:,} photos into {out}")
    result = run_demo(
        out, n=n, model=model, pretrained=pretrained, on_stage=_show_stage, progress=progress_bar
    )
    _show_end(result.run, "demo", result.config.ledger)
    console.print(f"demo: the project is {out}; 'cd {out}' and use any turk command there")


@app.command("doctor")
def doctor_command(
    ctx: typer.Context,
    project: ProjectOption = None,
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
