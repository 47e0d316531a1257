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
    model: Annotated[
        str | None,
        typer.Option("--model", help="CLIP model for --pretrained (default ViT-B-32)."),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            "--pretrained",
            help="CLIP weights file or tag. Default: ViT-B-32 weights in open_clip's cache, "
            "else a tiny random-weight model (the ranking is then arbitrary).",
        ),
    ] = None,
) -> None:
    """Run the pipeline offline on a fresh sample collection, printing each stage."""
    from turk.demo import run_demo

    def show(name: str, summary: str) -> None:
        first, _, rest = summary.partition("\n")
        console.print(f"[bold]{name}[/bold]: {first}")
        if rest:
            console.print(rest, markup=False)

    context = run_demo(out, n=n, on_stage=show, model=model, pretrained=pretrained)
    console.print(f"demo: done; ledger at {context.db_path}")
