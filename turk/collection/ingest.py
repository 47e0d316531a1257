"""Ingest YFCC100M metadata (and img2dataset folders) into the ledger's ``images`` table.

Wires :mod:`retrieval.collection` to the ledger. Every input is validated as a whole
before anything is written. So:

* a malformed *line* is written with its line number and reason to
  ``<ledger root>/rejects/<file>.rejects.tsv`` (or ``rejects_dir``) and the file goes on;
* a malformed *file* (missing, empty, unknown layout, truncated stream) raises with the
  ledger as it was: in-process, its one transaction is rolled back; with workers, the rows
  this ingest inserted are deleted again (rows already present are never touched);
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
  :func:`retrieval.collection.default_workers`) that insert straight into the ledger,
  taking turns on SQLite's write lock in file order, one transaction per chunk
  (:meth:`retrieval.collection.MetadataFile.insert`): while one inserts, the other parses,
  and the first occurrence of a photo id wins, as with ``workers=0``. For the load the
  ledger leaves WAL for the rollback journal when no other connection has it open (pages
  are then written once, not again at a checkpoint), and returns to WAL after. A killed
  ingest leaves whole chunks committed, which a rerun skips;
* the ``images`` indexes are dropped and rebuilt once when loading into an empty
  table (an ingest killed in between leaves them missing; the next ingest recreates
  them from the migrations), and the page cache is enlarged for the load.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from retrieval.collection import (
    BARE_ROW_FIELDS,
    ROW_FIELDS,
    CollectionFilters,
    CollectionSource,
    ImageIndex,
    InsertedChunk,
    InsertTarget,
    MetadataFile,
    decode_metadata,
    open_collection,
)
from turk.collection.tables import id_chunks
from turk.ledger import Ledger
from turk.migrations import MIGRATIONS


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
        lines: Lines (or sidecars) read, blank ones included.
        blank: Blank lines, skipped: neither rows nor rejects.
        inserted: New rows written to ``images``.
        already_present: Good rows skipped because their photo id was already there.
        rejected: Malformed lines, written to ``rejects_path``.
        filtered: Rows dropped by a filter, by reason.
        rejects_path: The rejects file, or None when nothing was rejected.
        first_reject: The reason of the first reject, or None.
    """

    path: str
    layout: str
    lines: int = 0
    blank: int = 0
    inserted: int = 0
    already_present: int = 0
    rejected: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    rejects_path: Path | None = None
    first_reject: str | None = None

    @property
    def all_rejected(self) -> bool:
        """Whether the input had lines (or sidecars) and every one was rejected."""
        return self.rejected > 0 and self.rejected == self.lines - self.blank


@dataclass
class IngestSummary:
    """What one ingest did, per file and in total.

    Attributes:
        files: One entry per input, in the order given.
    """

    files: list[FileIngest]

    def total(self, name: str) -> int:
        """Sum a counter (``lines``, ``blank``, ``inserted``, ``already_present``, ``rejected``)."""
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
    decoder_threads: int | None = None,
) -> list[CollectionSource]:
    """Open and check every input as a whole, before anything is written.

    Args:
        sources: Metadata files or img2dataset folders.
        filters: Which rows to keep.
        images_dir: Folder of local image files named by photo id, or None.
        workers: Parsing processes per metadata file (0: in-process; None: by size).
        decoder_threads: Threads decompressing each ``.bz2`` file (0: the standard
            library's decoder; None: :func:`retrieval.collection.default_decoder_threads`).

    Returns:
        One reader per input, in order.

    Raises:
        CollectionError: An input is missing, unreadable, empty or of unknown layout,
            or the images folder does not exist, or ``workers`` or
            ``decoder_threads`` is negative.
    """
    index = ImageIndex(images_dir) if images_dir is not None else None
    return [
        open_collection(
            s, filters=filters, images=index, workers=workers, decoder_threads=decoder_threads
        )
        for s in sources
    ]


def ingest_collection(
    ledger: Ledger,
    sources: Sequence[str | os.PathLike[str]],
    *,
    filters: CollectionFilters | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    rejects_dir: str | os.PathLike[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    decoder_threads: int | None = None,
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
        workers: Processes that parse each metadata file and insert its rows; 0
            parses in-process; None (default) parses in-process for files under
            :data:`retrieval.collection.IN_PROCESS_MAX_BYTES` and with ``min(2, CPUs)``
            workers otherwise.
        decoder_threads: Threads decompressing each ``.bz2`` file with
            ``indexed_bzip2``; 0 uses the standard library's decoder; None (default)
            picks :func:`retrieval.collection.default_decoder_threads`.

    Returns:
        What was read, inserted, skipped, rejected and filtered, per file.

    Raises:
        CollectionError: An input is missing, unreadable, empty, of unknown layout, or
            its compressed stream is truncated (the rows it inserted are removed again).
    """
    filters = filters or CollectionFilters()
    readers = open_sources(
        sources,
        filters=filters,
        images_dir=images_dir,
        workers=workers,
        decoder_threads=decoder_threads,
    )
    out_dir = Path(rejects_dir) if rejects_dir is not None else ledger.root / "rejects"
    settings = {
        "sources": [str(Path(s).resolve()) for s in sources],
        "filters": asdict(filters),
        "images_dir": str(images_dir) if images_dir is not None else None,
        "rejects_dir": str(out_dir),
    }
    summary = IngestSummary(files=[])
    with ledger.run("ingest", settings) as run:
        restore_indexes(ledger)
        for source, reader in zip(sources, readers, strict=True):
            result = _ingest_one(ledger, str(source), reader, out_dir, on_progress)
            summary.files.append(result)
            run.add("files")
            for key in ("lines", "inserted", "already_present", "rejected"):
                run.add(key, getattr(result, key))
            if result.blank:
                run.add("blank", result.blank)
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


def _expected_indexes() -> dict[str, str]:
    """The ``images`` indexes the migrations create: ``{name: CREATE INDEX sql}``.

    Read from the migrations applied to an in-memory database, so the schema stays
    defined by the migrations alone.
    """
    reference = sqlite_utils.Database(memory=True)
    for migration in MIGRATIONS:
        migration.up(reference)
    rows = reference.execute(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type = 'index' AND tbl_name = 'images' AND sql IS NOT NULL"
    ).fetchall()
    reference.close()
    return {str(name): str(sql) for name, sql in rows}


def restore_indexes(ledger: Ledger) -> list[str]:
    """Create the ``images`` indexes an ingest dropped and could not rebuild (it was killed).

    Args:
        ledger: The open ledger.

    Returns:
        The names of the indexes created (usually none).
    """
    conn = ledger.conn
    present = {
        str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    missing = {n: sql for n, sql in _expected_indexes().items() if n not in present}
    if missing:
        with conn:
            for sql in missing.values():
                conn.execute(sql)
    return sorted(missing)


def _source_id(conn: sqlite3.Connection, reader: CollectionSource) -> int:
    """Return the ``sources`` id of an input, adding it when new."""
    conn.execute(
        "INSERT OR IGNORE INTO sources (path, layout) VALUES (?, ?)", (reader.source, reader.layout)
    )
    row = conn.execute("SELECT id FROM sources WHERE path = ?", (reader.source,)).fetchone()
    return int(row[0])


def _bulk_journal(conn: sqlite3.Connection) -> bool:
    """Switch the ledger to the rollback journal for a bulk load, when nothing else has it open.

    In WAL mode every page a load writes is written twice (to the WAL, then to the
    database at the checkpoint); a rollback journal keeps only the original content of
    the pages a transaction changes, and none of the pages appended past the old end of
    the file. The workers' connections take turns under it just as under WAL. A killed
    load leaves at most a hot journal for its last chunk, which the next connection rolls
    back (and the next :class:`turk.ledger.Ledger` returns the file to WAL). Leaving WAL
    needs the only connection to the file, so this gives up (returns False) at once when
    another one is open.

    Returns:
        Whether the ledger is now in rollback-journal mode.
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
    if isinstance(reader, MetadataFile) and reader.workers > 0 and not conn.in_transaction:
        _ingest_in_workers(ledger, reader, result, partial, on_progress)
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
                        result.first_reject = result.first_reject or reason
                    result.rejected += len(batch.rejects)
                    result.filtered.update(batch.filtered)
                    result.lines += batch.lines
                    result.blank += batch.blank
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
    chunk: InsertedChunk,
    on_progress: Callable[[int], None] | None,
) -> None:
    for reject in chunk.rejects:
        reason = reject.reason.replace("\t", " ").replace("\n", " ")
        rejects.write(f"{reject.line}\t{reason}\t{reject.text}\n")
        result.first_reject = result.first_reject or reason
    result.inserted += chunk.inserted
    result.already_present += chunk.rows - chunk.inserted
    result.rejected += len(chunk.rejects)
    result.filtered.update(chunk.filtered)
    result.lines += chunk.lines
    result.blank += chunk.blank
    if on_progress is not None:
        on_progress(chunk.lines)


_PRESENT_SQL = "SELECT id FROM images WHERE id IN (SELECT value FROM json_each(?))"


def _ingest_in_workers(
    ledger: Ledger,
    reader: MetadataFile,
    result: FileIngest,
    partial: Path,
    on_progress: Callable[[int], None] | None,
) -> None:
    """Ingest a metadata file by worker processes that insert straight into the ledger.

    The workers parse in parallel and take turns, in file order, on the ledger's write
    lock, one transaction per chunk (:meth:`MetadataFile.insert`). A file that fails
    part-way (a truncated stream) has the rows this ingest inserted deleted again before
    the error is raised: with an ``images`` table that was empty, every row of this
    source; otherwise the ids the workers reported as new, kept in an anonymous
    temporary file so memory stays flat. Rows that were already present are never
    touched. A killed ingest leaves whole committed chunks, which a rerun skips.
    """
    conn = ledger.conn
    with conn:
        new_source = not conn.execute(
            "SELECT EXISTS (SELECT 1 FROM sources WHERE path = ?)", (reader.source,)
        ).fetchone()[0]
        source_id = _source_id(conn, reader)
        was_empty = not conn.execute("SELECT EXISTS (SELECT 1 FROM images)").fetchone()[0]
        # Committed before the workers start: a killed ingest leaves the table without
        # them, and the next ingest's restore_indexes() puts them back.
        deferred = _defer_indexes(conn)
    target = InsertTarget(
        database=str(ledger.path),
        full_sql=insert_sql(source_id),
        bare_sql=insert_sql(source_id, BARE_ROW_FIELDS),
        present_sql=None if was_empty else _PRESENT_SQL,
    )
    rollback_journal = _bulk_journal(conn)
    chunks = reader.insert(target)
    try:
        with tempfile.TemporaryFile() as new_ids:
            try:
                with open(partial, "w", encoding="utf-8", newline="\n") as rejects:
                    rejects.write(REJECTS_HEADER)
                    for chunk in chunks:
                        _count_chunk(result, rejects, chunk, on_progress)
                        new_ids.write(chunk.new_ids)
            except BaseException:
                chunks.close()  # waits for the workers: nothing is written after this
                partial.unlink(missing_ok=True)
                _undo_insert(conn, source_id, new_source, None if was_empty else new_ids)
                raise
    finally:
        previous_cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")
        try:
            with conn:
                for sql in deferred:
                    conn.execute(sql)
            if rollback_journal:
                conn.execute("PRAGMA journal_mode=WAL")
            else:
                # The workers left every page in the WAL: write them to the database once.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.execute(f"PRAGMA cache_size={int(previous_cache)}")


def _undo_insert(
    conn: sqlite3.Connection, source_id: int, new_source: bool, new_ids: IO[bytes] | None
) -> None:
    """Delete the rows one failed ingest inserted (and its ``sources`` entry when new).

    Args:
        conn: The ledger connection.
        source_id: The input's id in ``sources``.
        new_source: Whether this ingest added the ``sources`` entry.
        new_ids: The inserted ids as native 64-bit integers, or None when ``images`` was
            empty before: then every row of this source was inserted by this ingest.
    """
    with conn:
        if new_ids is None:
            conn.execute("DELETE FROM images WHERE source_id = ?", (source_id,))
        else:
            new_ids.seek(0)
            while data := new_ids.read(8 << 16):
                conn.executemany(
                    "DELETE FROM images WHERE id = ? AND source_id = ?",
                    ((i, source_id) for i in array("q", data)),
                )
        if new_source:
            conn.execute("DELETE FROM sources WHERE id = ?", (source_id,))


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
    out: dict[int, dict[str, Any]] = {}
    for chunk in id_chunks(ids):
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
