"""Files passed as a ledger: turk's own, damaged ones, and other programs' files.

A foreign file is refused before anything is written to it; every SQLite failure on a
ledger reaches the command line as one ``turk: error:`` line naming the file.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.core import CliResult
from turk.cli.main import EXIT_ERROR, main
from turk.errors import LedgerFileError
from turk.ledger import LEDGER_APPLICATION_ID, Ledger, database_error_message, quick_check

PAGE = 4096


def _turk(capsys: pytest.CaptureFixture[str], *args: object) -> CliResult:
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def _one_error_line(result: CliResult, *needles: str) -> str:
    assert result.exit_code == EXIT_ERROR, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("turk: error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


def _application_id(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA application_id").fetchone()[0])


def _pages(path: Path) -> int:
    return path.stat().st_size // PAGE


def _garble(path: Path, first: int, last: int, seed: int = 10) -> None:
    """Write random bytes over pages ``first..last`` (1-based, inclusive) in place."""
    rng = random.Random(seed)
    with path.open("r+b") as handle:
        handle.seek((first - 1) * PAGE)
        handle.write(rng.randbytes((last - first + 1) * PAGE))


def _ledger_with_runs(path: Path, runs: int = 400) -> int:
    """A closed ledger whose last pages hold ``runs`` rows; returns its page count before."""
    with Ledger(path) as ledger:
        assert ledger.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE
        ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = _pages(path)
        for i in range(runs):
            with ledger.run("ingest", {"files": [f"part-{i:04d}.tsv"], "pad": "x" * 200}):
                pass
    assert not path.with_name(path.name + "-wal").exists()
    return before


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """Another program's SQLite database, with its own tables and rows."""
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO notes (body) VALUES (?)", [(f"n{i}",) for i in range(50)])
    conn.close()
    return path


def test_new_ledger_carries_the_application_id(tmp_path: Path) -> None:
    path = tmp_path / "turk.db"
    Ledger(path).close()
    assert _application_id(path) == LEDGER_APPLICATION_ID == int.from_bytes(b"TURK", "big")
    Ledger(path).close()  # and opens again


def test_foreign_sqlite_file_is_refused_and_untouched(
    foreign: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(foreign)
    with pytest.raises(LedgerFileError, match=r"not a turk ledger \(it has tables notes\)"):
        Ledger(foreign)
    assert _snapshot(foreign) == before
    for command in (["status"], ["buckets"]):
        line = _one_error_line(
            _turk(capsys, "--db", foreign, *command), str(foreign), "not a turk ledger", "--db"
        )
        assert "notes" in line
        assert _snapshot(foreign) == before


def test_foreign_application_id_without_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id=1234")
    conn.close()
    before = _snapshot(path)
    with pytest.raises(LedgerFileError, match="application_id is 0x000004d2"):
        Ledger(path)
    assert _snapshot(path) == before


def test_random_bytes_file_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "turk.db"
    path.write_bytes(random.Random(4).randbytes(20 * PAGE))
    before = _snapshot(path)
    _one_error_line(_turk(capsys, "--db", path, "status"), str(path), "not an SQLite file")
    assert _snapshot(path) == before


def test_empty_file_becomes_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "turk.db"
    path.touch()
    with Ledger(path) as ledger:
        assert "runs" in ledger.db.table_names()
    assert _application_id(path) == LEDGER_APPLICATION_ID


def test_ledger_from_before_the_application_id_opens_and_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "turk.db"
    with Ledger(path) as ledger, ledger.run("ingest"):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id=0")
    conn.close()
    assert _application_id(path) == 0
    with Ledger(path) as ledger:
        assert ledger.applied_migrations == []
        last = ledger.last_run("ingest")
        assert last is not None and last["status"] == "ok"
    assert _application_id(path) == LEDGER_APPLICATION_ID


def test_garbage_pages_give_one_line_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "turk.db"
    _ledger_with_runs(path)
    # Every page but the header page and the last: schema, tables and indexes.
    _garble(path, 2, _pages(path) - 1)
    for command in (["status"], ["buckets"]):
        line = _one_error_line(_turk(capsys, "--db", path, *command), f"{path}: ")
        assert "restore it from a backup" in line


def test_damaged_rows_inside_a_command_give_one_line_naming_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "turk.db"
    first = _ledger_with_runs(path)
    _garble(path, first + 3, _pages(path) - 2)
    with pytest.raises(LedgerFileError) as caught, Ledger(path, create=False) as ledger:
        ledger.conn.execute("SELECT COUNT(*), MAX(settings) FROM runs").fetchone()
    message = str(caught.value)
    assert message.startswith(f"{path}: database disk image is malformed; ")
    assert "\n" not in message


def test_doctor_reports_quick_check_outside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "kept.db"
    first = _ledger_with_runs(path)
    sound = _turk(capsys, "--db", path, "doctor", "--skip-model")
    assert f"{path} " in sound.stdout and "passes SQLite's quick_check" in sound.stdout, sound
    assert "only the machine and the ledger was checked" in sound.stdout

    _garble(path, first + 3, _pages(path) - 2)
    problems = quick_check(path)  # SQLite itself finds the damage, one problem a line
    assert problems and all("\n" not in p and not p.startswith("***") for p in problems)
    before = _snapshot(path)
    damaged = _turk(capsys, "--db", path, "doctor", "--skip-model")
    assert damaged.exit_code != 0
    assert f"{path} is damaged; SQLite's quick_check says: {problems[0]} (and more)" in (
        " ".join(damaged.stdout.split())
    ), damaged
    assert "restore" in damaged.stdout and "Traceback" not in damaged.stdout + damaged.stderr
    assert _snapshot(path) == before  # the doctor only reads

    foreign = tmp_path / "notes.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    other = _turk(capsys, "--db", foreign, "doctor", "--skip-model")
    assert other.exit_code != 0 and "not a turk ledger" in other.stdout, other


_KILLED_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=DELETE")  # as ingest's bulk load does
conn.execute("PRAGMA cache_size=1")  # spill to the file, so the journal is hot
conn.execute("BEGIN IMMEDIATE")
for _ in range(3000):
    conn.execute(
        "INSERT INTO runs (command, settings, started_at, status, counts) "
        "VALUES ('ingest', ?, 'now', 'ok', '{}')",
        ("y" * 500,),
    )
os._exit(9)
"""


def test_ledger_left_with_a_hot_journal_is_identified_and_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "turk.db"
    _ledger_with_runs(path, runs=50)
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], check=False)
    assert killed.returncode == 9
    assert path.with_name("turk.db-journal").stat().st_size > 0
    # A read-only look cannot roll the journal back, and says so.
    with pytest.raises(LedgerFileError, match="left its journal; run any turk command"):
        quick_check(path)
    with Ledger(path, create=False) as ledger:
        assert ledger.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 50
    assert quick_check(path) == []


def test_every_sqlite_error_has_a_fix() -> None:
    path = Path("turk.db")
    for exc in (sqlite3.DatabaseError("file is not a database"), sqlite3.OperationalError("")):
        message = database_error_message(path, exc)
        assert message.startswith("turk.db: ") and message.count(";") >= 1
        assert "\n" not in message
