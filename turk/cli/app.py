"""The typer application, its global options and helpers shared by every command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from turk import __version__
from turk.ledger import DEFAULT_DB, Ledger

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
    if isinstance(ctx.obj, AppState):  # given by turk.cli.main, which reports errors with it
        ctx.obj.db = path
    else:
        ctx.obj = AppState(db=path)


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
