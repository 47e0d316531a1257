"""The command line's global options and the ledger's migrations and run records."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.core import CliRunner
from turk import __version__
from turk.errors import LedgerError
from turk.ledger import Ledger
from turk.migrations import MIGRATIONS


def test_version(cli: CliRunner) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"turk {__version__}"


def test_every_command_and_option_has_help(cli: CliRunner) -> None:
    import typer

    from turk.cli.app import app

    seen = {"commands": 0, "options": 0}

    def walk(command: Any, path: list[str]) -> None:
        seen["commands"] += 1
        assert command.help or command.short_help, f"no help for {' '.join(path)}"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                seen["options"] += 1
                assert param.help, f"no help for {' '.join(path)} {param.opts}"
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), ["turk"])
    assert seen["commands"] > 10 and seen["options"] > 20


def test_usage_error_is_one_line(cli: CliRunner) -> None:
    result = cli("buckets", "--count", "not-a-number")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert "--count" in result.stderr


def test_ledger_applies_migrations_once(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as ledger:
        assert ledger.applied_migrations == [m.id for m in MIGRATIONS]
    with Ledger(path) as ledger:
        assert ledger.applied_migrations == []
        assert "runs" in ledger.db.table_names()


def test_ledger_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    Ledger(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO _migrations VALUES (9999, 'future', 'x')")
    with pytest.raises(LedgerError, match="newer turk"):
        Ledger(path)


def test_ledger_rejects_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match="not a turk ledger"):
        Ledger(path)


def test_missing_ledger_when_not_creating(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger here"):
        Ledger(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_run_records_status_and_counts(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        with ledger.run("ingest", {"files": ["a.tsv"]}) as run:
            run.add("rows", 3)
            run.add("rows")
        with pytest.raises(ValueError), ledger.run("ingest") as run:
            raise ValueError("boom")
        ok = ledger.last_run("ingest")
        failed = ledger.last_run("ingest", status="failed")
    assert ok is not None and ok["counts"] == {"rows": 4}
    assert ok["settings"] == {"files": ["a.tsv"]}
    assert failed is not None and failed["error"] == "boom"


def test_help_imports_nothing_heavy() -> None:
    """``turk --help`` starts fast: no torch, pandas, numpy or sqlite_utils at start-up."""
    import subprocess
    import sys

    code = (
        "import sys; from turk.cli.main import main; main(['--help']); "
        "print(sorted(m for m in ('torch', 'pandas', 'numpy', 'sqlite_utils', 'open_clip', "
        "'boto3', 'yaml') if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
