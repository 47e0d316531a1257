"""Commands of the demo area: ``turk demo`` (see :mod:`turk.cli.commands`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from turk.cli.app import app
from turk.cli.console import console


@app.command("demo")
def demo_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the demo's sample collection and ledger.")
    ] = Path("demo-out"),
    n: Annotated[int, typer.Option("--n", help="Photos in the sample collection.")] = 2000,
) -> None:
    """Run the pipeline offline on a fresh sample collection, printing each stage."""
    from turk.demo import run_demo

    def show(name: str, summary: str) -> None:
        first, _, rest = summary.partition("\n")
        console.print(f"[bold]{name}[/bold]: {first}")
        if rest:
            console.print(rest, markup=False)

    context = run_demo(out, n=n, on_stage=show)
    console.print(f"demo: done; ledger at {context.db_path}")
