"""Generate the CLI reference (``docs/cli.md``) from the commands' own help.

Run ``python -m turk.cli.docgen > docs/cli.md`` after changing a command; a test fails when
the file and the commands disagree. The help is rendered at a fixed width so the output
does not depend on the terminal.
"""

from __future__ import annotations

import sys
from typing import Any

WIDTH = 88
"""Width the help text is wrapped at."""

HEADER = """\
# turk command reference

Generated from the commands' own `--help` by `python -m turk.cli.docgen > docs/cli.md`;
do not edit by hand. The user's guide starts at [the tutorial](tutorial.md).
"""


def _context(command: Any, name: str, parent: Any) -> Any:
    # The context class of the command's own click (typer may ship its own copy).
    return command.context_class(
        command,
        info_name=name,
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
    )


def _help(command: Any, path: list[str], parent: Any) -> str:
    ctx = _context(command, path[-1], parent)
    return command.get_help(ctx)


def _walk(command: Any, path: list[str], parent: Any) -> list[tuple[list[str], str]]:
    ctx = _context(command, path[-1], parent)
    found = [(path, _help(command, path, parent))]
    if hasattr(command, "list_commands"):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            found.extend(_walk(sub, [*path, name], ctx))
    return found


def cli_reference() -> str:
    """Return the Markdown CLI reference of every ``turk`` command.

    Returns:
        The document: a header, a table of contents and one section per command with
        its help text in a fenced block.
    """
    import typer.main

    from turk.cli import commands  # noqa: F401  (registers every command)
    from turk.cli.app import app

    root = typer.main.get_command(app)
    sections = _walk(root, ["turk"], None)
    lines = [HEADER]
    for path, _ in sections[1:]:
        name = " ".join(path)
        anchor = "-".join(path)
        lines.append(f"- [`{name}`](#{anchor})")
    lines.append("")
    for path, text in sections:
        lines.append(f"## {' '.join(path)}\n")
        lines.append("```text")
        lines.append(text.rstrip())
        lines.append("```\n")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    """Write the reference to stdout."""
    sys.stdout.write(cli_reference())


if __name__ == "__main__":
    main()
