"""``turk ingest``: the sample into the ledger, rejects, reruns, filters and bad input."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from retrieval.collection import IN_PROCESS_MAX_BYTES, LAYOUTS, MetadataFile
from tests.fixtures.core import CliRunner
from tests.test_collection_reader import line25
from turk.collection.ingest import image_metadata, ingest_collection, iter_image_metadata
from turk.ledger import Ledger


def image_count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "images" not in tables:
            return 0
        return int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])


def last_run(db: Path) -> tuple[str, dict]:
    with sqlite3.connect(db) as conn:
        status, counts = conn.execute(
            "SELECT status, counts FROM runs WHERE command='ingest' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return status, json.loads(counts)


def test_ingest_sample_counts_rows_and_writes_rejects(
    cli: CliRunner, sample_dir: Path, db_path: Path
) -> None:
    result = cli("ingest", sample_dir / "metadata.tsv")
    assert result.exit_code == 0, result.stderr
    assert "240 images added" in result.stdout
    assert image_count(db_path) == 240
    status, counts = last_run(db_path)
    assert status == "ok"
    assert counts["inserted"] == 240 and counts["filtered_video"] == 2
    assert counts["rejected"] == 3 and counts["lines"] == 245
    rejects = db_path.parent / "rejects" / "metadata.tsv.rejects.tsv"
    lines = rejects.read_text().splitlines()
    assert lines[0] == "line\treason\ttext"
    metadata = (sample_dir / "metadata.tsv").read_text().splitlines()
    for entry in lines[1:]:
        number, reason, text = entry.split("\t", 2)
        assert metadata[int(number) - 1] == text  # line numbers point at the raw line
        assert reason
    with sqlite3.connect(db_path) as conn:
        truth = dict(
            line.split(",")[:2] for line in (sample_dir / "truth.csv").read_text().split()[1:]
        )
        ids = {str(r[0]) for r in conn.execute("SELECT id FROM images")}
        assert ids == set(truth)  # every photo, nothing else
    with Ledger(db_path) as ledger:
        records = iter_image_metadata(ledger)
        spaced = next(r for r in records if " " in r["title"])
        assert "+" not in spaced["title"] and Path(spaced["local_path"]).is_file()
        assert spaced["source"] == str((sample_dir / "metadata.tsv").resolve())


def test_rerun_skips_present_rows(cli: CliRunner, sample_dir: Path, db_path: Path) -> None:
    assert cli("ingest", sample_dir / "metadata.tsv").exit_code == 0
    again = cli("ingest", sample_dir / "metadata.tsv")
    assert again.exit_code == 0
    assert "0 new, 240 already present" in again.stdout
    assert image_count(db_path) == 240


def test_resume_after_partial_ingest(cli: CliRunner, sample_dir: Path, tmp_path: Path) -> None:
    lines = (sample_dir / "metadata.tsv").read_text().splitlines(keepends=True)
    first = tmp_path / "first.tsv"
    first.write_text("".join(lines[:100]))
    assert cli("ingest", first).exit_code == 0
    before = cli("ingest", sample_dir / "metadata.tsv")
    assert before.exit_code == 0
    assert "already present" in before.stdout
    assert image_count(tmp_path / "turk.db") == 240


@pytest.mark.parametrize("suffix", ["bz2", "gz"])
def test_compressed_and_23_column_input(
    cli: CliRunner, sample_dir: Path, db_path: Path, tmp_path: Path, suffix: str
) -> None:
    narrow = [
        "\t".join([f[1], *f[3:]])
        for f in (
            line.split("\t") for line in (sample_dir / "metadata.tsv").read_text().split("\n")
        )
        if len(f) == 25
    ]
    path = tmp_path / f"yfcc23.tsv.{suffix}"
    opener = bz2.open if suffix == "bz2" else gzip.open
    with opener(path, "wt") as fh:
        fh.write("\n".join(narrow) + "\n")
    result = cli("ingest", path)
    assert result.exit_code == 0, result.stderr
    assert "(yfcc23)" in result.stdout
    assert image_count(db_path) == 240


def test_filters_and_images_folder(
    cli: CliRunner, sample_dir: Path, db_path: Path, tmp_path: Path
) -> None:
    result = cli(
        "ingest",
        sample_dir / "metadata.tsv",
        "--keep-videos",
        "--valid-date",
        "--images",
        sample_dir / "images",
        "--min-edge",
        "100",
        "--max-aspect",
        "2",
        "--rejects",
        tmp_path / "rej",
    )
    assert result.exit_code == 0, result.stderr
    _, counts = last_run(db_path)
    # Videos have no image file, so the image checks drop them.
    assert counts["filtered_no_local_image"] == 2
    assert counts.get("filtered_invalid_date", 0) > 0
    assert counts["inserted"] == 240 - counts["filtered_invalid_date"]
    assert (tmp_path / "rej" / "metadata.tsv.rejects.tsv").exists()
    small = cli("ingest", sample_dir / "metadata.tsv", "--min-edge", "1000")
    assert small.exit_code == 0
    assert last_run(db_path)[1]["filtered_too_small"] == 240


def test_img2dataset_folder_ingests(cli: CliRunner, tmp_path: Path, db_path: Path) -> None:
    from PIL import Image

    shard = tmp_path / "dl" / "00000"
    shard.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (40, 30)).save(shard / f"00000000{i}.jpg")
        (shard / f"00000000{i}.json").write_text(
            json.dumps({"status": "success", "photo_id": 500 + i, "date_uploaded": 1300000000 + i})
        )
    result = cli("ingest", tmp_path / "dl")
    assert result.exit_code == 0, result.stderr
    assert image_count(db_path) == 3


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        ({"status": "success", "url": "http://x/1.jpg"}, "no photo id"),
        ({"status": "success", "photo_id": 9}, "no upload time"),
        ({"status": "success", "photo_id": 2**63, "date_uploaded": 1}, "over 2^63 - 1"),
        ({"status": "success", "photo_id": -4, "date_uploaded": 1}, "negative"),
        (
            {"status": "success", "photo_id": 4, "date_uploaded": 1, "latitude": 91},
            "outside [-90, 90]",
        ),
        ({"status": "success", "photo_id": 4, "date_uploaded": 10**12}, "in the future"),
    ],
    ids=["no-id", "no-upload-time", "huge-id", "negative-id", "latitude", "future"],
)
def test_a_folder_whose_sidecars_are_all_rejected_is_an_error(
    cli: CliRunner, tmp_path: Path, db_path: Path, sidecar: dict, reason: str
) -> None:
    from PIL import Image

    shard = tmp_path / "dl" / "00000"
    shard.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (40, 30)).save(shard / f"00000000{i}.jpg")
        (shard / f"00000000{i}.json").write_text(json.dumps(sidecar))
    line = one_line_error(cli("ingest", tmp_path / "dl"))
    assert "all 2 sidecars rejected" in line and reason in line
    assert "photo_id and date_uploaded" in line
    assert image_count(db_path) == 0


def one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("turk: error: ")
    return lines[0]


def test_bad_files_leave_the_ledger_unchanged(
    cli: CliRunner, sample_dir: Path, db_path: Path, tmp_path: Path
) -> None:
    assert cli("ingest", sample_dir / "metadata.tsv").exit_code == 0
    good = sample_dir / "metadata.tsv"
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    odd = tmp_path / "odd.tsv"
    odd.write_text("a\tb\n" * 3)
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage" * 20)
    cases = {
        tmp_path / "absent.tsv": "no such file",
        empty: "empty file",
        odd: "unknown layout",
        corrupt: "cannot",
    }
    for bad, message in cases.items():
        # The good file comes first: nothing of it is written again either.
        line = one_line_error(cli("ingest", good, bad))
        assert str(bad) in line and message in line
        assert image_count(db_path) == 240


@pytest.mark.parametrize("workers", ["0", "1"])
def test_truncated_bz2_rolls_back_its_rows(
    cli: CliRunner, sample_dir: Path, db_path: Path, tmp_path: Path, workers: str
) -> None:
    text = (sample_dir / "metadata.tsv").read_text()
    lines = text.splitlines(keepends=True)
    # Repeat the records under fresh ids so that the file spans several bzip2 blocks.
    body = []
    for copy in range(3):
        for line in lines:
            f = line.split("\t")
            if len(f) == 25 and f[1].isdigit():
                f[1] = str(int(f[1]) + 10**12 * (copy + 1))
            body.append("\t".join(f))
    data = bz2.compress("".join(body).encode(), compresslevel=1)  # 100 kB blocks
    cut = tmp_path / "cut.tsv.bz2"
    cut.write_bytes(data[: len(data) * 9 // 10])
    line = one_line_error(cli("ingest", cut, "--workers", workers))
    assert "truncated" in line and "after line" in line and str(cut) in line
    assert image_count(db_path) == 0
    assert not (db_path.parent / "rejects" / "cut.tsv.bz2.rejects.tsv").exists()
    assert last_run(db_path)[0] == "failed"


def ledger_dump(db: Path) -> list:
    with sqlite3.connect(db) as conn:
        return [
            conn.execute("SELECT * FROM images ORDER BY id").fetchall(),
            conn.execute("SELECT * FROM sources ORDER BY id").fetchall(),
            conn.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall(),
        ]


def test_truncated_bz2_over_rows_already_present_deletes_only_its_own(
    cli: CliRunner, sample_dir: Path, db_path: Path, tmp_path: Path
) -> None:
    lines = [
        line
        for line in (sample_dir / "metadata.tsv").read_text().splitlines(keepends=True)
        if len(line.split("\t")) == 25 and line.split("\t")[1].isdigit()
    ]
    body = []
    for copy in range(4):
        for line in lines:
            f = line.split("\t")
            f[1] = str(int(f[1]) + 10**12 * copy)  # copy 0 keeps the sample's own ids
            body.append("\t".join(f))
    cut = tmp_path / "cut.tsv.bz2"
    # First a whole file under the same path: its rows and its source are already present.
    cut.write_bytes(bz2.compress("".join(body[::7]).encode()))
    assert cli("ingest", cut, "--workers", "2").exit_code == 0
    assert cli("ingest", sample_dir / "metadata.tsv").exit_code == 0
    before = ledger_dump(db_path)
    data = bz2.compress("".join(body).encode(), compresslevel=1)
    cut.write_bytes(data[: len(data) * 9 // 10])
    line = one_line_error(cli("ingest", cut, "--workers", "2"))
    assert "truncated" in line and str(cut) in line
    assert ledger_dump(db_path) == before
    assert last_run(db_path)[0] == "failed"


def test_workers_ingest_the_same_rows_and_rejects(
    cli: CliRunner, sample_dir: Path, tmp_path: Path
) -> None:
    dumps = []
    for workers in ("0", "2"):
        db = tmp_path / workers / "turk.db"
        result = cli("--db", db, "ingest", sample_dir / "metadata.tsv", "--workers", workers)
        assert result.exit_code == 0, result.stderr
        with Ledger(db) as ledger:
            records = list(iter_image_metadata(ledger))
        rejects = (db.parent / "rejects" / "metadata.tsv.rejects.tsv").read_text()
        dumps.append((records, rejects))
    assert dumps[0] == dumps[1] and len(dumps[0][0]) == 240


def test_metadata_accessor_decodes_every_field(
    cli: CliRunner, sample_dir: Path, db_path: Path
) -> None:
    assert cli("ingest", sample_dir / "metadata.tsv").exit_code == 0
    lines = (sample_dir / "metadata.tsv").read_text().splitlines()
    raw = {int(f[1]): f for f in (line.split("\t") for line in lines) if len(f) == 25}
    with Ledger(db_path) as ledger:
        (photo_id,) = ledger.conn.execute(
            "SELECT id FROM images WHERE yfcc_fields LIKE '%\\%C3%' ESCAPE '\\' LIMIT 1"
        ).fetchone()
        records = image_metadata(ledger, [photo_id, 999_999_999_999])
    assert list(records) == [photo_id]  # unknown ids are left out
    record, fields = records[photo_id], raw[photo_id]
    decoded = {7: "device", 8: "title", 9: "description", 10: "user_tags", 11: "machine_tags"}
    for at, name in {4: "nickname", 17: "license_name", **decoded}.items():
        assert record[name] == unquote_plus(fields[at])
    assert "%" not in record["nickname"] + record["title"]
    assert record["hash"] == fields[2] and record["page_url"] == fields[15]
    assert record["date_uploaded"] == int(fields[6]) and record["line_number"] == int(fields[0])
    assert (record["server"], record["farm"]) == (int(fields[19]), int(fields[20]))
    assert (record["secret"], record["extension"], record["marker"]) == (fields[21], "jpg", 0)
    assert record["bucket"] is None and Path(record["local_path"]).is_file()


def test_bad_options(cli: CliRunner, sample_dir: Path, tmp_path: Path) -> None:
    line = one_line_error(cli("ingest", sample_dir / "metadata.tsv", "--images", tmp_path / "nope"))
    assert "--images" in line
    line = one_line_error(cli("ingest", sample_dir / "metadata.tsv", "--max-aspect", "0.5"))
    assert "--max-aspect" in line
    line = one_line_error(cli("ingest", sample_dir / "metadata.tsv", "--min-edge", "-3"))
    assert "--min-edge" in line
    line = one_line_error(cli("ingest", sample_dir / "metadata.tsv", "--workers", "-1"))
    assert "--workers" in line


_INGEST_CHILD = """
import sys
from turk.collection.ingest import ingest_collection
from turk.ledger import Ledger
with Ledger(sys.argv[1]) as ledger:
    ingest_collection(ledger, [sys.argv[2]], workers=2)
"""


def running(pid: int) -> bool:
    """Whether a process runs (a zombie left for a parent to reap does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.slow
def test_killed_ingest_leaves_a_consistent_ledger_and_resumes(tmp_path: Path) -> None:
    from turk.collection.sample import write_sample

    write_sample(tmp_path / "big", n=150_000, seed=3, metadata_only=True)
    metadata = tmp_path / "big" / "metadata.tsv"
    db = tmp_path / "ledger" / "turk.db"
    Ledger(db).close()
    child = subprocess.Popen(
        [sys.executable, "-c", _INGEST_CHILD, str(db), str(metadata)],
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 120
    try:
        # Kill it once the workers have committed some chunks, well before the end.
        while time.monotonic() < deadline and child.poll() is None:
            if image_count(db) > 0:
                break
            time.sleep(0.005)
        assert child.poll() is None, "the ingest finished before it could be killed"
        task = Path(f"/proc/{child.pid}/task/{child.pid}/children")
        workers = [int(pid) for pid in task.read_text().split()] if task.exists() else []
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    # Orphaned workers see their parent gone and stop without writing another chunk.
    while any(map(running, workers)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(map(running, workers))
    with Ledger(db) as ledger:
        assert ledger.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = ledger.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    assert 0 < kept < 140_000
    with Ledger(db) as ledger:
        summary = ingest_collection(ledger, [metadata], workers=2)
        indexes = {
            r[0] for r in ledger.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
    assert summary.total("already_present") == kept
    assert summary.total("inserted") + kept == image_count(db) > 140_000
    assert {"images_date_uploaded", "images_bucket"} <= indexes


def yfcc_line(pid: int, number: int, fields: dict[str, str] | None = None) -> str:
    """A good 25-column line numbered ``number``, some ``fields`` (by column name) written over."""
    values = line25(pid).split("\t")
    values[0] = str(number)
    columns = LAYOUTS["yfcc25"]
    for name, value in (fields or {}).items():
        values[columns.index(name)] = value
    return "\t".join(values)


# One line of each kind that cannot be real, with the reason it is rejected for.
_FUTURE = str(int(time.time()) + 30 * 86_400)
BAD_LINES = {
    "photo id '9223372036854775808' is over 2^63 - 1, too large to be real": {"id": str(2**63)},
    "line number '18446744073709551616' is over 2^63 - 1, too large to be real": {
        "line_number": str(2**64)
    },
    "date uploaded '9223372036854775808' is over 2^63 - 1, too large to be real": {
        "date_uploaded": str(2**63)
    },
    "date uploaded '-5' is negative": {"date_uploaded": "-5"},
    f"date uploaded '{_FUTURE}' is in the future": {"date_uploaded": _FUTURE},
    "latitude '91.5' is outside [-90, 90]": {"latitude": "91.5"},
    "longitude '-180.5' is outside [-180, 180]": {"longitude": "-180.5"},
    "longitude 'nan' is not a finite number": {"longitude": "nan"},
    "latitude 'inf' is not a finite number": {"latitude": "inf"},
    "latitude '1e999' is not a finite number": {"latitude": "1e999"},
    "photo id '+5' is written with a sign": {"id": "+5"},
    "photo id ' 5' has spaces": {"id": " 5"},
    "photo id '\u0663' has digits other than ASCII 0-9": {"id": "\u0663"},
}


def write_mixed(path: Path, *, good: int, min_bytes: int = 0) -> tuple[list[str], dict[int, str]]:
    """Write a BOM, then good lines with every bad kind and two blank lines spread through.

    At least ``good`` good lines, more when needed for the file to hold ``min_bytes``.
    Returns the file's lines (blank ones included) and the expected reason by line number.
    """
    good = max(good, min_bytes // len(yfcc_line(10_000, 1)) + 1)
    step = good // len(BAD_LINES)
    lines: list[str] = []
    expected: dict[int, str] = {}
    bad = iter(BAD_LINES.items())
    for n in range(good):
        lines.append(yfcc_line(10_000 + n, len(lines) + 1))
        if n % step == step - 1 and (kind := next(bad, None)):
            lines.append(yfcc_line(90_000 + n, len(lines) + 1, kind[1]))
            expected[len(lines)] = kind[0]
        if n in (2, 7):
            lines.append("")
    path.write_bytes(b"\xef\xbb\xbf" + "".join(line + "\n" for line in lines).encode())
    return lines, expected


def rejects_by_line(db: Path, name: str) -> dict[int, tuple[str, str]]:
    rejects = (db.parent / "rejects" / f"{name}.rejects.tsv").read_text().splitlines()
    assert rejects[0] == "line\treason\ttext"
    out = {}
    for entry in rejects[1:]:
        number, reason, text = entry.split("\t", 2)
        out[int(number)] = (reason, text)
    return out


@pytest.mark.parametrize("size", ["small", "over_in_process_max"])
def test_one_bad_value_rejects_its_line_and_keeps_every_good_row(
    cli: CliRunner, tmp_path: Path, db_path: Path, size: str
) -> None:
    path = tmp_path / "mixed.tsv"
    min_bytes = IN_PROCESS_MAX_BYTES if size == "over_in_process_max" else 0
    lines, expected = write_mixed(path, good=20, min_bytes=min_bytes)
    good = len(lines) - len(expected) - 2
    # The size alone picks the path: in-process below the threshold, workers above it.
    assert (MetadataFile(path).workers > 0) == (size == "over_in_process_max")
    result = cli("ingest", path)
    assert result.exit_code == 0, result.stderr
    assert image_count(db_path) == good and (good == 20) == (size == "small")
    status, counts = last_run(db_path)
    assert status == "ok" and counts["rejected"] == len(BAD_LINES) == len(expected)
    assert counts["blank"] == 2 and counts["lines"] == len(lines)
    got = rejects_by_line(db_path, path.name)
    assert sorted(got) == sorted(expected)
    for number, reason in expected.items():
        assert got[number][0].startswith(reason), number
        assert got[number][1] == lines[number - 1]  # the raw line, by its line number


def test_a_byte_order_mark_is_not_a_malformed_line(tmp_path: Path, db_path: Path) -> None:
    path = tmp_path / "bom.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(yfcc_line(i, i) + "\n" for i in (1, 2, 3)).encode())
    with Ledger(db_path) as ledger:
        (f,) = ingest_collection(ledger, [path]).files
        assert (f.inserted, f.rejected, f.rejects_path) == (3, 0, None)
        assert image_metadata(ledger, [1])[1]["line_number"] == 1


def test_blank_lines_are_skipped_not_rejected(tmp_path: Path, db_path: Path) -> None:
    path = tmp_path / "blank.tsv"
    path.write_text(f"\n{yfcc_line(1, 2)}\n\n  \r\n{yfcc_line(2, 5)}\n\n")
    with Ledger(db_path) as ledger:
        (f,) = ingest_collection(ledger, [path]).files
    assert (f.lines, f.blank, f.inserted, f.rejected, f.rejects_path) == (6, 4, 2, 0, None)
