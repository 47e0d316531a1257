"""The typer application, its global options and helpers shared by every command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from turk import __version__
from turk.ledger import DEFAULT_DB, Ledger

if TYPE_CHECKING:
    from turk.project.config import ProjectConfig

COMMAND_ORDER = (
    "init",
    "doctor",
    "run",
    "round",
    "demo",
    "sample",
    "ingest",
    "buckets",
    "embed",
    "rank",
    "preview",
    "render",
    "publish",
    "collect",
    "review",
    "status",
    "expire",
    "audit",
    "report",
    "export",
    "sandbox",
    "turkle",
)
"""Commands in the order ``turk --help`` lists them: set-up, then the pipeline's order
(:func:`turk.cli.commands` sorts the registered commands by it)."""


app = typer.Typer(
    name="turk",
    help=(
        "Turn a web-scale image collection into a small, certified, high-precision "
        "labeled dataset: time buckets, CLIP retrieval, Mechanical Turk verification "
        "with gold checks, aggregation, certified precision, export."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class AppState:
    """Global options, kept on the click context for every command."""

    db: Path


def default_db() -> Path:
    """The ledger used when ``--db`` is not given: ``$TURK_DB``, else ``./turk.db``.

    Returns:
        The ledger path.
    """
    return Path(os.environ.get("TURK_DB") or DEFAULT_DB)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"turk {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Ledger file (SQLite). Default: $TURK_DB, else ./turk.db.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print turk's version and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Global options; see each command's --help."""
    path = db if db is not None else default_db()
    if db is None and not os.environ.get("TURK_DB"):
        project = _project_here(ctx.invoked_subcommand)
        if project is not None:
            from turk.project.defaults import command_defaults

            # Inside a project every command uses its ledger and its turk.yaml settings;
            # options given on the command line still win.
            ctx.default_map = command_defaults(project)
            path = project.ledger
    if isinstance(ctx.obj, AppState):  # given by turk.cli.main, which reports errors with it
        ctx.obj.db = path
    else:
        ctx.obj = AppState(db=path)


def _project_here(command: str | None) -> ProjectConfig | None:
    """The project of the current folder (or one above it), for a command that uses one."""
    from turk.errors import ConfigError
    from turk.project.config import find_project, load_project
    from turk.project.defaults import PROJECT_COMMANDS

    if command is None or command in PROJECT_COMMANDS:
        return None
    try:
        found = find_project()
    except ConfigError:  # no turk.yaml here or above: not in a project
        return None
    return load_project(found, check_files=False)


def state(ctx: typer.Context) -> AppState:
    """Return the global options of the running command.

    Args:
        ctx: The command's click context.

    Returns:
        The :class:`AppState` set by the global callback.
    """
    obj = ctx.find_root().obj
    if not isinstance(obj, AppState):  # invoked without the root callback (tests)
        obj = AppState(db=default_db())
        ctx.find_root().obj = obj
    return obj


def open_ledger(ctx: typer.Context, *, create: bool = True) -> Ledger:
    """Open the ledger named by ``--db`` / ``$TURK_DB``, applying migrations.

    Args:
        ctx: The command's click context.
        create: Create the file when missing; when false a missing ledger is an error.

    Returns:
        The open :class:`Ledger`.
    """
    return Ledger(state(ctx).db, create=create)
