"""Ingest YFCC100M metadata (and img2dataset folders) into the ledger's ``images`` table.

Wires :mod:`retrieval.collection` to the ledger: each input is validated as a whole
before anything is written, then streamed in batches into ``images`` with one
``executemany`` per batch inside one transaction per input file. So:

* a malformed *line* is written with its line number and reason to
  ``<ledger root>/rejects/<file>.rejects.tsv`` (or ``rejects_dir``) and the file goes on;
* a malformed *file* (missing, empty, unknown layout, truncated stream) raises before
  its transaction commits, so the ledger keeps none of its rows;
* rerunning is safe: rows whose photo id is already present are skipped
  (``INSERT OR IGNORE``), so an interrupted ingest resumes by running it again.

Speed comes from doing less per row and using a second core:

* rows are compact (:data:`retrieval.collection.ROW_FIELDS`): typed columns only for
  what later stages query or filter on, the other YFCC fields in one still-encoded text
  column, and the input file as a constant ``source_id`` written into the statement
  rather than bound per row. Decoding happens on read, through :func:`image_metadata`
  and :func:`iter_image_metadata`, which return every YFCC field decoded exactly as
  the reader once did on ingest: validation must cover every row, decoded text only
  the few thousand rows that get labeled and exported;
* metadata files are parsed by worker processes (``workers``; default
  :func:`retrieval.collection.default_workers`), which also bind the values: each writes
  its rows to a scratch SQLite file beside the ledger and sends back only counts and
  rejects; this process then copies each chunk into ``images`` with one
  ``INSERT OR IGNORE ... SELECT`` in file order (so the first occurrence of a photo id
  wins, as with ``workers=0``), inside the file's one transaction;
* for that copy the ledger leaves WAL for the rollback journal when no other connection
  has it open (a load then writes its pages once, not twice), and returns to WAL after;
  a killed ingest leaves a hot journal that the next open rolls back, and scratch files
  that the next ingest deletes;
* the ``images`` indexes are dropped and rebuilt once when loading into an empty
  table, and the page cache is enlarged for the load.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrieval.collection import (
    BARE_ROW_FIELDS,
    ROW_FIELDS,
    CollectionFilters,
    CollectionSource,
    ImageIndex,
    MetadataFile,
    StagedChunk,
    decode_metadata,
    open_collection,
    remove_stale_scratch,
    scratch_files,
)
from turk.ledger import Ledger


def insert_sql(source_id: int, fields: Sequence[str] = ROW_FIELDS) -> str:
    """The statement that inserts one reader row, its source written in as a constant.

    Args:
        source_id: The input's id in ``sources``.
        fields: The row's columns: :data:`ROW_FIELDS` or :data:`BARE_ROW_FIELDS`.

    Returns:
        An ``INSERT OR IGNORE`` with one parameter per field.
    """
    return (
        f"INSERT OR IGNORE INTO images ({', '.join(fields)}, source_id) "
        f"VALUES ({', '.join('?' for _ in fields)}, {int(source_id)})"
    )


_METADATA_SQL = (
    f"SELECT {', '.join(f'i.{name}' for name in ROW_FIELDS)}, s.path AS source, i.bucket "
    "FROM images i LEFT JOIN sources s ON s.id = i.source_id"
)
_METADATA_COLUMNS = (*ROW_FIELDS, "source", "bucket")

REJECTS_HEADER = "line\treason\ttext\n"
"""First line of a rejects file; each reject's raw line follows its reason after a tab."""

_BULK_CACHE_KIB = 65536  # SQLite page cache during bulk load (64 MiB): fewer spills


@dataclass
class FileIngest:
    """What ingest did with one input.

    Attributes:
        path: The input as given.
        layout: ``yfcc25``, ``yfcc23`` or ``img2dataset``.
        lines: Lines (or sidecars) read.
        inserted: New rows written to ``images``.
        already_present: Good rows skipped because their photo id was already there.
        rejected: Malformed lines, written to ``rejects_path``.
        filtered: Rows dropped by a filter, by reason.
        rejects_path: The rejects file, or None when nothing was rejected.
    """

    path: str
    layout: str
    lines: int = 0
    inserted: int = 0
    already_present: int = 0
    rejected: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    rejects_path: Path | None = None


@dataclass
class IngestSummary:
    """What one ingest did, per file and in total.

    Attributes:
        files: One entry per input, in the order given.
    """

    files: list[FileIngest]

    def total(self, name: str) -> int:
        """Sum a counter (``lines``, ``inserted``, ``already_present``, ``rejected``)."""
        return sum(int(getattr(f, name)) for f in self.files)

    @property
    def filtered(self) -> Counter[str]:
        """Rows dropped by filters over all files, by reason."""
        out: Counter[str] = Counter()
        for f in self.files:
            out.update(f.filtered)
        return out


def rejects_file(rejects_dir: Path, source: str | os.PathLike[str]) -> Path:
    """Where the rejects of ``source`` are written: ``<dir>/<file name>.rejects.tsv``.

    Args:
        rejects_dir: Folder for rejects files.
        source: The input file or folder.

    Returns:
        The rejects file path.
    """
    return rejects_dir / f"{Path(source).name}.rejects.tsv"


def open_sources(
    sources: Sequence[str | os.PathLike[str]],
    *,
    filters: CollectionFilters | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> list[CollectionSource]:
    """Open and check every input as a whole, before anything is written.

    Args:
        sources: Metadata files or img2dataset folders.
        filters: Which rows to keep.
        images_dir: Folder of local image files named by photo id, or None.
        workers: Parsing processes per metadata file (0: in-process; None: by size).

    Returns:
        One reader per input, in order.

    Raises:
        CollectionError: An input is missing, unreadable, empty or of unknown layout,
            or the images folder does not exist, or ``workers`` is negative.
    """
    index = ImageIndex(images_dir) if images_dir is not None else None
    return [open_collection(s, filters=filters, images=index, workers=workers) for s in sources]


def ingest_collection(
    ledger: Ledger,
    sources: Sequence[str | os.PathLike[str]],
    *,
    filters: CollectionFilters | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    rejects_dir: str | os.PathLike[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> IngestSummary:
    """Ingest metadata files and img2dataset folders into the ledger.

    Every input is opened and checked (exists, readable, not empty, known layout)
    before anything is written, so a bad input leaves the ledger unchanged.

    Args:
        ledger: The open ledger.
        sources: Metadata files (plain, ``.bz2``, ``.gz``; 25 or 23 columns) or
            img2dataset output folders.
        filters: Which rows to keep (default: photos only).
        images_dir: Folder of local image files named by photo id, or None.
        rejects_dir: Folder for rejects files; default ``<ledger root>/rejects``.
        on_progress: Called with the number of lines read after each batch.
        workers: Processes parsing each metadata file while this one inserts; 0
            parses in-process; None (default) parses in-process for files under
            :data:`retrieval.collection.IN_PROCESS_MAX_BYTES` and with ``min(2, CPUs)``
            workers otherwise.

    Returns:
        What was read, inserted, skipped, rejected and filtered, per file.

    Raises:
        CollectionError: An input is missing, unreadable, empty, of unknown layout, or
            its compressed stream is truncated (that file's rows are rolled back).
    """
    filters = filters or CollectionFilters()
    readers = open_sources(sources, filters=filters, images_dir=images_dir, workers=workers)
    out_dir = Path(rejects_dir) if rejects_dir is not None else ledger.root / "rejects"
    settings = {
        "sources": [str(Path(s).resolve()) for s in sources],
        "filters": asdict(filters),
        "images_dir": str(images_dir) if images_dir is not None else None,
        "rejects_dir": str(out_dir),
    }
    summary = IngestSummary(files=[])
    with ledger.run("ingest", settings) as run:
        for source, reader in zip(sources, readers, strict=True):
            result = _ingest_one(ledger, str(source), reader, out_dir, on_progress)
            summary.files.append(result)
            run.add("files")
            for key in ("lines", "inserted", "already_present", "rejected"):
                run.add(key, getattr(result, key))
            for reason, n in result.filtered.items():
                run.add(f"filtered_{reason}", n)
    return summary


def _defer_indexes(conn: sqlite3.Connection) -> list[str]:
    """Drop the indexes of an empty ``images`` table; return the SQL that rebuilds them.

    Building an index once over loaded rows is much cheaper than updating it row by
    row. Only done for an empty table: rebuilding over rows already present would cost
    more than it saves. Runs inside the caller's transaction, so a rollback restores
    the indexes.
    """
    if conn.execute("SELECT EXISTS (SELECT 1 FROM images)").fetchone()[0]:
        return []
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type = 'index' AND tbl_name = 'images' AND sql IS NOT NULL"
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    return [str(sql) for _name, sql in indexes]


def _source_id(conn: sqlite3.Connection, reader: CollectionSource) -> int:
    """Return the ``sources`` id of an input, adding it when new."""
    conn.execute(
        "INSERT OR IGNORE INTO sources (path, layout) VALUES (?, ?)", (reader.source, reader.layout)
    )
    row = conn.execute("SELECT id FROM sources WHERE path = ?", (reader.source,)).fetchone()
    return int(row[0])


def merge_sql(schema: str, source_id: int) -> str:
    """The statement that copies one staged chunk from a scratch file into ``images``.

    Args:
        schema: The name the scratch file is attached under.
        source_id: The input's id in ``sources``.

    Returns:
        An ``INSERT OR IGNORE ... SELECT`` over a rowid range (two parameters, first and
        last rowid), in rowid order so the first occurrence of a photo id wins, as it
        does when rows are inserted one by one.
    """
    columns = ", ".join(ROW_FIELDS)
    return (
        f"INSERT OR IGNORE INTO images ({columns}, source_id) "
        f'SELECT {columns}, {int(source_id)} FROM "{schema}".rows '
        "WHERE rowid BETWEEN ? AND ? ORDER BY rowid"
    )


def _bulk_journal(conn: sqlite3.Connection) -> bool:
    """Switch the ledger to the rollback journal for a bulk load, when nothing else has it open.

    In WAL mode every page a load writes is written twice (to the WAL, then to the
    database at the checkpoint); a rollback journal keeps only the original content of
    the pages it changes, and none of the pages appended past the old end of the file.
    Crash safety holds: a killed load leaves a hot journal that the next connection
    rolls back. Leaving WAL needs the only connection to the file, so this gives up
    (returns False) at once when another one is open.

    Returns:
        Whether the ledger is now in rollback-journal mode (switch back with
        :func:`_restore_wal`).
    """
    timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout=0")
    try:
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError:
        mode = "wal"
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(timeout)}")
    return str(mode).lower() == "delete"


def _restore_wal(conn: sqlite3.Connection) -> None:
    """Return the ledger to WAL mode after a bulk load."""
    conn.execute("PRAGMA journal_mode=WAL")


def _attach_limit(conn: sqlite3.Connection) -> int:
    return int(conn.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED))


def _ingest_one(
    ledger: Ledger,
    source: str,
    reader: CollectionSource,
    rejects_dir: Path,
    on_progress: Callable[[int], None] | None,
) -> FileIngest:
    """Stream one input into ``images`` inside one transaction; write its rejects."""
    result = FileIngest(path=source, layout=reader.layout)
    conn = ledger.conn
    final = rejects_file(rejects_dir, source)
    partial = final.with_name(final.name + ".part")
    rejects_dir.mkdir(parents=True, exist_ok=True)
    if (
        isinstance(reader, MetadataFile)
        and 0 < reader.workers < _attach_limit(conn)
        and not conn.in_transaction
    ):
        _ingest_staged(ledger, reader, result, partial, on_progress)
        return _finish_rejects(result, partial, final)
    previous_cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")
    try:
        with open(partial, "w", encoding="utf-8", newline="\n") as rejects:
            rejects.write(REJECTS_HEADER)
            conn.execute("BEGIN IMMEDIATE")
            try:
                deferred = _defer_indexes(conn)
                source_id = _source_id(conn, reader)
                statements = (insert_sql(source_id), insert_sql(source_id, BARE_ROW_FIELDS))
                cur = conn.cursor()
                for batch in reader.batches():
                    for sql, rows in zip(statements, (batch.rows, batch.bare_rows), strict=True):
                        if rows:
                            cur.executemany(sql, rows)
                            inserted = max(cur.rowcount, 0)
                            result.inserted += inserted
                            result.already_present += len(rows) - inserted
                    for reject in batch.rejects:
                        reason = reject.reason.replace("\t", " ").replace("\n", " ")
                        rejects.write(f"{reject.line}\t{reason}\t{reject.text}\n")
                    result.rejected += len(batch.rejects)
                    result.filtered.update(batch.filtered)
                    result.lines += batch.lines
                    if on_progress is not None:
                        on_progress(batch.lines)
                for sql in deferred:
                    conn.execute(sql)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        conn.execute(f"PRAGMA cache_size={int(previous_cache)}")
    return _finish_rejects(result, partial, final)


def _finish_rejects(result: FileIngest, partial: Path, final: Path) -> FileIngest:
    """Put a committed file's rejects in place (or remove a stale rejects file)."""
    if result.rejected:
        os.replace(partial, final)
        result.rejects_path = final
    else:
        partial.unlink(missing_ok=True)
        final.unlink(missing_ok=True)  # a stale file from an earlier run would mislead
    return result


def _count_chunk(
    result: FileIngest,
    rejects: Any,
    chunk: StagedChunk,
    on_progress: Callable[[int], None] | None,
) -> None:
    for reject in chunk.rejects:
        reason = reject.reason.replace("\t", " ").replace("\n", " ")
        rejects.write(f"{reject.line}\t{reason}\t{reject.text}\n")
    result.rejected += len(chunk.rejects)
    result.filtered.update(chunk.filtered)
    result.lines += chunk.lines
    if on_progress is not None:
        on_progress(chunk.lines)


def _ingest_staged(
    ledger: Ledger,
    reader: MetadataFile,
    result: FileIngest,
    partial: Path,
    on_progress: Callable[[int], None] | None,
) -> None:
    """Ingest a metadata file through scratch files: parse in parallel, merge in SQL.

    The workers parse and write their rows to scratch SQLite files beside the ledger
    while this process only writes rejects; then, in one transaction, each chunk is
    copied into ``images`` with one ``INSERT ... SELECT`` in file order. A file that
    fails while being read leaves the ledger untouched (nothing was written to it yet);
    the scratch files are deleted whatever happens, and ones left by a killed run are
    deleted by the next.
    """
    conn = ledger.conn
    folder = ledger.root
    remove_stale_scratch(folder)
    ranges: list[tuple[str, int, int]] = []
    schemas: list[str] = []
    previous_cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    rollback_journal = False
    try:
        with open(partial, "w", encoding="utf-8", newline="\n") as rejects:
            rejects.write(REJECTS_HEADER)
            for chunk in reader.staged(folder):
                _count_chunk(result, rejects, chunk, on_progress)
                if chunk.rows:
                    ranges.append((chunk.scratch, chunk.first_rowid, chunk.last_rowid))
        files = sorted({scratch for scratch, _first, _last in ranges})
        alias = {scratch: f"ingest_scratch_{n}" for n, scratch in enumerate(files)}
        for scratch, schema in alias.items():
            conn.execute("ATTACH DATABASE ? AS " + schema, (scratch,))
            schemas.append(schema)
        conn.execute(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")
        rollback_journal = _bulk_journal(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            deferred = _defer_indexes(conn)
            source_id = _source_id(conn, reader)
            statements = {s: merge_sql(s, source_id) for s in schemas}
            cur = conn.cursor()
            for scratch, first, last in ranges:
                cur.execute(statements[alias[scratch]], (first, last))
                inserted = max(cur.rowcount, 0)
                result.inserted += inserted
                result.already_present += last - first + 1 - inserted
            for sql in deferred:
                conn.execute(sql)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        for schema in schemas:
            conn.execute(f"DETACH DATABASE {schema}")
        if rollback_journal:
            _restore_wal(conn)
        conn.execute(f"PRAGMA cache_size={int(previous_cache)}")
        for path in scratch_files(folder, os.getpid()):
            path.unlink(missing_ok=True)


def image_metadata(ledger: Ledger, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Read images' metadata decoded: every YFCC field, the local file, source and bucket.

    Args:
        ledger: The open ledger.
        ids: Photo ids; ids not in ``images`` are left out of the result.

    Returns:
        ``{id: record}``; each record has the
        :data:`retrieval.collection.METADATA_FIELDS` (text URL-decoded as
        :func:`retrieval.collection.decode_metadata` does) and ``bucket``.
    """
    wanted = sorted({int(i) for i in ids})
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in ledger.conn.execute(f"{_METADATA_SQL} WHERE i.id IN ({marks})", chunk):
            record = decode_metadata(dict(zip(_METADATA_COLUMNS, row, strict=True)))
            out[int(record["id"])] = record
    return out


def iter_image_metadata(ledger: Ledger, *, bucketed_only: bool = False) -> Iterator[dict[str, Any]]:
    """Stream every image's metadata decoded, in id order (see :func:`image_metadata`).

    Args:
        ledger: The open ledger.
        bucketed_only: Only images assigned to a time bucket.

    Yields:
        One record per image, as :func:`image_metadata` returns them.
    """
    where = " WHERE i.bucket IS NOT NULL" if bucketed_only else ""
    for row in ledger.conn.execute(f"{_METADATA_SQL}{where} ORDER BY i.id"):
        yield decode_metadata(dict(zip(_METADATA_COLUMNS, row, strict=True)))
