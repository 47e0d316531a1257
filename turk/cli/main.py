"""Entry point of the ``turk`` command: registers every command and maps errors to exits.

Command modules register themselves on :data:`turk.cli.app.app` when imported. Each
command parses its options, opens the ledger, calls one library function and prints a
summary; heavy libraries (torch, open_clip) are imported inside commands so that
``turk --help`` and ``turk collect`` start fast.
"""

from __future__ import annotations

import sqlite3
import sys

import typer

from turk.cli import commands  # noqa: F401  (registers every command on the app)
from turk.cli.app import AppState, app, default_db
from turk.errors import USER_ERRORS
from turk.ledger import database_error_message

EXIT_ERROR = 1
"""Exit status for a reported error (bad input, refused operation)."""


EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as shells report it)."""

_INTERRUPTED = "turk: interrupted; rerun the command to resume"


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Args:
        argv: Arguments after the program name; None reads ``sys.argv``.

    Returns:
        0 on success; 1 when a reported error stopped the command; 2 for usage errors;
        130 when interrupted.
    """
    options = AppState(db=default_db())
    try:
        result = app(args=argv, prog_name="turk", standalone_mode=False, obj=options)
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except typer.TyperException as exc:  # usage errors: bad option value, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"turk: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        print("turk: aborted", file=sys.stderr)
        return EXIT_ERROR
    except USER_ERRORS as exc:
        message = " ".join(str(exc).split("\n"))
        print(f"turk: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except sqlite3.DatabaseError as exc:
        # A ledger names its own file (LedgerError above); this is SQLite failing outside
        # one, which is the --db ledger.
        print(f"turk: error: {database_error_message(options.db, exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    if result == EXIT_INTERRUPTED:  # typer returns Ctrl-C as this code, silently
        print(_INTERRUPTED, file=sys.stderr)
    return result if isinstance(result, int) else 0


def entry() -> None:
    """Console-script entry point: ``sys.exit(main())``."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
