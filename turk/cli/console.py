"""Shared console output for commands: stdout, stderr and progress bars with a rate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
"""Where commands print their summaries (stdout)."""

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
"""Where commands print warnings (stderr)."""


def _rate_text(task: Any) -> Any:
    """Items per second of a progress task, with the unit its bar was started with."""
    from rich.text import Text

    speed = task.finished_speed or task.speed
    unit = task.fields.get("unit", "it")
    if not speed:
        return Text(f"- {unit}/s", style="progress.data.speed")
    return Text(f"{speed:,.0f} {unit}/s", style="progress.data.speed")


@contextmanager
def progress_bar(
    description: str, total: int | None = None, unit: str = "it"
) -> Iterator[Callable[[int], None]]:
    """Show a progress bar with a rate while a ``with`` block runs.

    Args:
        description: Text before the bar, e.g. ``ingest``.
        total: Expected number of items, or None when unknown.
        unit: Unit shown in the rate, e.g. ``rows`` for ``rows/s``.

    Yields:
        ``advance(n)``: call it with the number of items just done; pass it to library
        functions as their ``on_progress`` callback.
    """
    # Imported here: a command that shows no bar (and 'turk --help') starts faster.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Any:
            return _rate_text(task)

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total is not None else TextColumn("{task.completed:,}"),
        TaskProgressColumn() if total is not None else TextColumn(""),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn() if total is not None else TextColumn(""),
    ]
    # On a pipe or a file the bar would only add noise to logs and error output.
    disable = not err_console.is_terminal
    with Progress(*columns, console=err_console, transient=False, disable=disable) as progress:
        task = progress.add_task(description, total=total, unit=unit)

        def advance(n: int) -> None:
            progress.advance(task, n)

        yield advance
