"""Streaming readers for YFCC100M-style collections.

Two inputs are understood:

* **YFCC100M metadata files**, tab-separated, no header, plain or compressed (``.bz2``
  or ``.gz``, recognised by their first bytes, not their names). Both public layouts are
  detected from the column count:

  - ``yfcc25``: the 25-column Webscope ``yfcc100m_dataset`` (line number, photo id,
    hash, user nsid, nickname, date taken, date uploaded, device, title, description,
    user tags, machine tags, longitude, latitude, accuracy, page url, download url,
    license name, license url, server, farm, secret, secret original, extension,
    marker);
  - ``yfcc23``: the 23-column layout that starts at the photo id (no line number, no
    hash).

* **img2dataset output folders**: image files with a ``.json`` sidecar each (the
  sidecar carries the YFCC fields saved with ``--save_additional_columns``).

Reading streams in batches (:class:`Batch`), so memory stays bounded whatever the file
size. Every line is validated in full by one function, :func:`validate_fields` (column
count, integers as ASCII digits below 2^63, coordinates finite and on the globe, upload
times not in the future, dates, marker): a good line becomes a compact row (a tuple in
:data:`ROW_FIELDS` order), a malformed one becomes a :class:`Reject` with its line number
and the field at fault, and the rest of the file goes on. Blank lines are skipped and
counted, and a UTF-8 byte order mark opening the file is dropped.

**Compact rows, decoding on read.** A row keeps typed values only for what the pipeline
queries or filters on (photo id, line number, dates, marker, coordinates, download url,
local file and its size) plus one text value, ``yfcc_fields``: the other YFCC fields of
:data:`YFCC_TEXT_FIELDS` exactly as the dataset distributes them (still URL-encoded),
tab-joined in layout order. Building it is one join of fields the line split already
produced; no field is decoded while ingesting. :func:`decode_metadata` turns a stored row
back into every YFCC field, URL-decoded (``Canon+PowerShot`` -> ``Canon PowerShot``)
exactly as the readers once did on ingest. The reason: every row is validated once, at
ingest, but decoded text (titles, tags, descriptions) is needed only for the few thousand
images that get labeled and exported, never for the other 99.99% of a 100M-row
collection; and SQLite's cost per row grows with the number of bound columns.

**Parsing in worker processes.** A metadata file is read as raw bytes by the calling
process, cut on line boundaries into chunks of ``batch_size`` lines, each tagged with its
first line number (so rejects keep exact line numbers), and parsed either in-process
(``workers=0``) or by ``workers`` processes started with the ``spawn`` method (safe
whatever threads the caller runs), which return rows and rejects in file order. At most
``2 * workers`` chunks are in flight, so memory stays bounded. :meth:`MetadataFile.insert`
has the workers also insert their rows into a SQLite database themselves, taking turns on
its write lock in file order (:class:`InsertTarget`, :class:`InsertedChunk`), so one
worker parses while the other inserts and nothing is sent back but counts and rejects.
:func:`default_workers` picks in-process parsing for files under
:data:`IN_PROCESS_MAX_BYTES` (starting a process costs more than it saves there) and
``min(2, CPUs)`` workers otherwise. img2dataset folders are read in-process.

**Decompressing in a process of its own.** Ingest never decodes a compressed file in the
process that cuts its lines: a decoder process (:mod:`retrieval.decompress`) writes the
decompressed bytes into a pipe that :meth:`MetadataFile.chunks` reads as it would a
plain file, so decoding takes a core of its own rather than turns on this process's
GIL. A ``.bz2`` file is decoded by ``indexed_bzip2`` (the optional ``bz2`` extra) on
``decoder_threads`` threads (:func:`~retrieval.decompress.default_decoder_threads`: the
CPUs of the affinity mask left over by the parsing workers, at least 1), or by the
standard library with ``decoder_threads=0`` or without the extra; ``.gz`` by the standard
library. The bytes are the same either way and stream in bounded memory, and a damaged
file raises the same error after the same line as a direct standard-library read.

Optional filters (:class:`CollectionFilters`) follow the choices CLEAR made when it
built its buckets from YFCC100M: keep photos only (marker 0, no videos), keep only
valid dates (date taken not after the upload time), and drop images that are too small
in bytes or pixels or too elongated. The image checks need the image files: either
``file://`` download URLs that exist, or a folder given as ``images`` whose files are
named by photo id (``<id>.jpg``, any depth).
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import sqlite3
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, unquote_plus

from retrieval.decompress import (
    STREAM_ERRORS,
    default_decoder_threads,
    open_binary,
)
from retrieval.errors import CollectionError
from retrieval.processes import available_cpus, die_with_parent, ignore_interrupts

ROW_FIELDS: tuple[str, ...] = (
    "id",
    "line_number",
    "date_taken",
    "date_uploaded",
    "marker",
    "longitude",
    "latitude",
    "download_url",
    "local_path",
    "byte_size",
    "width",
    "height",
    "yfcc_fields",
)
"""Order of the values in every row a reader yields (columns of the ledger's ``images``)."""

YFCC_TEXT_FIELDS: tuple[str, ...] = (
    "hash",
    "user_nsid",
    "nickname",
    "device",
    "title",
    "description",
    "user_tags",
    "machine_tags",
    "accuracy",
    "page_url",
    "license_name",
    "license_url",
    "server",
    "farm",
    "secret",
    "secret_original",
    "extension",
)
"""The YFCC fields held, tab-joined and as distributed, in a row's ``yfcc_fields``."""

METADATA_FIELDS: tuple[str, ...] = (
    "id",
    "line_number",
    "hash",
    "user_nsid",
    "nickname",
    "date_taken",
    "date_uploaded",
    "device",
    "title",
    "description",
    "user_tags",
    "machine_tags",
    "longitude",
    "latitude",
    "accuracy",
    "page_url",
    "download_url",
    "license_name",
    "license_url",
    "server",
    "farm",
    "secret",
    "secret_original",
    "extension",
    "marker",
    "local_path",
    "byte_size",
    "width",
    "height",
    "source",
)
"""Keys of a decoded record (:func:`decode_metadata`): every YFCC field, the local file
and the source the row came from."""

BARE_ROW_FIELDS: tuple[str, ...] = tuple(
    name for name in ROW_FIELDS if name not in ("local_path", "byte_size", "width", "height")
)
"""Order of the values of a row without a local image file (:attr:`Batch.bare_rows`)."""

Row = tuple[Any, ...]
"""One image: values in :data:`ROW_FIELDS` (or :data:`BARE_ROW_FIELDS`) order."""

YFCC25_COLUMNS: tuple[str, ...] = (
    "line_number",
    "id",
    "hash",
    "user_nsid",
    "nickname",
    "date_taken",
    "date_uploaded",
    "device",
    "title",
    "description",
    "user_tags",
    "machine_tags",
    "longitude",
    "latitude",
    "accuracy",
    "page_url",
    "download_url",
    "license_name",
    "license_url",
    "server",
    "farm",
    "secret",
    "secret_original",
    "extension",
    "marker",
)
"""Columns of the 25-column Webscope ``yfcc100m_dataset`` layout, in file order."""

YFCC23_COLUMNS: tuple[str, ...] = YFCC25_COLUMNS[1:2] + YFCC25_COLUMNS[3:]
"""Columns of the 23-column layout (starts at the photo id), in file order."""

LAYOUTS: dict[str, tuple[str, ...]] = {"yfcc25": YFCC25_COLUMNS, "yfcc23": YFCC23_COLUMNS}
"""Known metadata layouts by name."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})
"""File suffixes treated as images in folders."""

DEFAULT_BATCH_SIZE = 20_000
"""Rows per batch: large enough to amortise per-batch work, small enough to bound memory."""

IN_PROCESS_MAX_BYTES = 4 << 20
"""Metadata files smaller than this (on disk) are parsed in-process by default: starting a
worker process costs more than it saves on a few thousand lines."""

INT64_MAX = (1 << 63) - 1
"""Largest integer a row can hold (SQLite's signed 64-bit integer): an id, line number, time
or count above it is a reject, not a value."""

UPLOAD_SLACK_S = 86_400
"""How far past the current time (seconds) an upload time may lie before the line is
rejected as from the future: a day, for clocks off by a time zone."""

_DECIMAL_CHARS = "0123456789.+-eE"  # all a coordinate may be written with (no nan, inf, _)

Checked = tuple[int | None, int, str, datetime | None, int, int, float | None, float | None]
"""A valid line's typed values: line number (None in ``yfcc23``), photo id, date taken as
written (``""`` when absent), date taken parsed, upload time, marker, longitude, latitude."""


_INSERT_CACHE_KIB = 65536  # page cache of each inserting worker's connection (64 MiB)

_SNIFF_LINES = 50
_BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark, written first by some editors
_DECODED = (
    "nickname",
    "device",
    "title",
    "description",
    "user_tags",
    "machine_tags",
    "license_name",
)
_TEXT_INT_FIELDS = ("accuracy", "server", "farm")


@dataclass(frozen=True)
class CollectionFilters:
    """Which rows to keep while reading (CLEAR's choices are opt-in except photos only).

    Attributes:
        photos_only: Keep marker 0 (photos) and drop marker 1 (videos), as CLEAR did.
        valid_date: Drop rows whose date taken is after their upload time (a camera
            clock set wrong), as CLEAR did; rows without a date taken are kept.
        min_bytes: Drop images whose file is smaller than this many bytes.
        min_edge: Drop images whose shorter side is below this many pixels.
        max_aspect: Drop images whose long side / short side exceeds this ratio.
    """

    photos_only: bool = True
    valid_date: bool = False
    min_bytes: int | None = None
    min_edge: int | None = None
    max_aspect: float | None = None

    def __post_init__(self) -> None:
        for option, value in (("--min-bytes", self.min_bytes), ("--min-edge", self.min_edge)):
            if value is not None and value < 0:
                raise CollectionError(f"{option} {value}: must be 0 or more")
        if self.max_aspect is not None and not self.max_aspect >= 1:
            raise CollectionError(
                f"--max-aspect {self.max_aspect}: a long/short side ratio is 1 or more"
            )

    @property
    def needs_image_files(self) -> bool:
        """Whether any filter looks at the image files themselves."""
        return any(v is not None for v in (self.min_bytes, self.min_edge, self.max_aspect))


@dataclass(frozen=True)
class Reject:
    """A line that could not be used.

    Attributes:
        line: 1-based line number in the file (for folders: 1-based sidecar ordinal).
        reason: What is wrong, e.g. ``24 columns, expected 25``.
        text: The raw line (for folders: the sidecar path).
    """

    line: int
    reason: str
    text: str


@dataclass
class Batch:
    """One slice of a collection.

    Good rows come in two lists, each in file order: rows with a local image file, and
    rows without one, which leave out the four file columns (binding four NULLs per row
    costs SQLite about a fifth of an insert).

    Attributes:
        rows: Good rows with a local image file, in :data:`ROW_FIELDS` order.
        bare_rows: Good rows without a local image file, in :data:`BARE_ROW_FIELDS`
            order.
        rejects: Malformed lines.
        filtered: Rows dropped by a filter, counted by reason (``video``,
            ``invalid_date``, ``too_few_bytes``, ``too_small``, ``bad_aspect``,
            ``no_local_image``).
        lines: Lines (or sidecars) read for this batch, blank ones included.
        blank: Blank lines (empty or only white space), skipped: neither rows nor rejects.
    """

    rows: list[Row] = field(default_factory=list)
    bare_rows: list[Row] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    filtered: Counter[str] = field(default_factory=Counter)
    lines: int = 0
    blank: int = 0

    def full_rows(self) -> list[Row]:
        """Every good row in :data:`ROW_FIELDS` order (file columns None when absent)."""
        bare = [(*r[:8], None, None, None, None, r[8]) for r in self.bare_rows]
        return self.rows + bare


@dataclass
class InsertedChunk:
    """One chunk parsed by a worker and inserted into the database it was given.

    Attributes:
        rows: Good rows the chunk held.
        inserted: Rows the insert statements wrote (the others were ignored: their
            photo id was already present).
        new_ids: The photo ids this chunk inserted, as native 64-bit integers
            (``array('q')`` bytes), when the caller asked for them; otherwise empty.
        rejects: Malformed lines.
        filtered: Rows dropped by a filter, by reason.
        lines: Lines read for this chunk, blank ones included.
        blank: Blank lines skipped.
    """

    rows: int
    inserted: int
    new_ids: bytes
    rejects: list[Reject]
    filtered: Counter[str]
    lines: int
    blank: int = 0


@dataclass(frozen=True)
class InsertTarget:
    """Where and how parsing workers insert their rows (see :meth:`MetadataFile.insert`).

    Attributes:
        database: The SQLite file.
        full_sql: Inserts one row in :data:`ROW_FIELDS` order (``INSERT OR IGNORE``).
        bare_sql: Inserts one row in :data:`BARE_ROW_FIELDS` order.
        present_sql: A query taking one parameter, a JSON array of photo ids, that returns
            those already in the database; run before each chunk's insert so the chunk
            can report exactly which ids it added. None when the caller does not need them.
    """

    database: str
    full_sql: str
    bare_sql: str
    present_sql: str | None = None


class ImageIndex:
    """Maps photo ids to local image files found under a folder (any depth).

    A file belongs to photo ``N`` when its name is ``N`` plus an image suffix
    (``123456.jpg``). Memory is proportional to the number of image files in the folder.

    Args:
        root: The folder to scan.

    Raises:
        CollectionError: The folder does not exist or cannot be listed.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise CollectionError(f"{self.root}: no such folder; pass --images with a folder")
        self._paths: dict[int, str] = {}
        try:
            for dirpath, _dirs, files in os.walk(self.root):
                for name in files:
                    stem, dot, suffix = name.rpartition(".")
                    if dot and stem.isdigit() and f".{suffix.lower()}" in IMAGE_SUFFIXES:
                        self._paths[int(stem)] = os.path.abspath(os.path.join(dirpath, name))
        except OSError as exc:
            raise CollectionError(f"{self.root}: cannot list the folder ({exc})") from exc

    def __len__(self) -> int:
        return len(self._paths)

    def get(self, photo_id: int) -> str | None:
        """Return the absolute path of the photo's file, or None when absent."""
        return self._paths.get(photo_id)


def image_size(path: str) -> tuple[int, int]:
    """Read an image's width and height from its header.

    Args:
        path: Image file.

    Returns:
        ``(width, height)`` in pixels.

    Raises:
        OSError: The file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size
    except UnidentifiedImageError as exc:
        raise OSError(f"not an image ({exc})") from exc


def parse_date_taken(text: str) -> datetime:
    """Parse a YFCC date taken (``2012-02-16 09:56:37.0``) as a naive datetime.

    Args:
        text: The date as written in the metadata.

    Returns:
        The datetime (YFCC gives no time zone).

    Raises:
        ValueError: The text is not a date.
    """
    return datetime.fromisoformat(text)


def open_text(path: str | os.PathLike[str]) -> TextIO:
    """Open a plain, ``.bz2`` or ``.gz`` file as UTF-8 text (bad bytes replaced).

    Args:
        path: The file; compression is recognised from its first bytes.

    Returns:
        A text stream splitting lines on ``\\n`` only.

    Raises:
        CollectionError: The file is missing or unreadable.
    """
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace", newline="\n")


def _stream_error(path: Path, line: int, exc: BaseException) -> CollectionError:
    if isinstance(exc, EOFError):
        what = "compressed stream ends early (the file is truncated)"
    else:
        what = f"cannot decompress ({exc})"
    where = f"after line {line}" if line else "before the first line"
    return CollectionError(f"{path}: {what} {where}; download or copy the file again")


def detect_layout(path: str | os.PathLike[str]) -> str:
    """Detect the layout of a metadata file from its first lines.

    Args:
        path: Plain, ``.bz2`` or ``.gz`` metadata file.

    Returns:
        ``"yfcc25"`` or ``"yfcc23"``.

    Raises:
        CollectionError: The file is missing, unreadable, empty, or its lines do not
            have 25 or 23 tab-separated columns.
    """
    path = Path(path)
    if path.is_dir():
        raise CollectionError(f"{path}: is a folder, not a metadata file")
    counts: Counter[int] = Counter()
    line_no = 0
    with open_text(path) as text:
        try:
            for line_no, raw in enumerate(text, start=1):
                line = raw.rstrip("\r\n")
                if line:
                    counts[line.count("\t") + 1] += 1
                if line_no >= _SNIFF_LINES:
                    break
        except UnicodeError as exc:  # pragma: no cover - errors="replace" prevents it
            raise CollectionError(f"{path}: not UTF-8 text ({exc})") from exc
        except STREAM_ERRORS as exc:
            raise _stream_error(path, line_no, exc) from exc
    if not counts:
        raise CollectionError(f"{path}: empty file; pass a YFCC100M metadata file")
    known = {n: counts[n] for n in (25, 23) if counts[n]}
    if not known:
        seen = ", ".join(str(n) for n, _ in counts.most_common(3))
        raise CollectionError(
            f"{path}: unknown layout (lines have {seen} tab-separated columns); expected 25 "
            "(yfcc100m_dataset with line number and hash) or 23 (starting at the photo id)"
        )
    return "yfcc25" if known.get(25, 0) >= known.get(23, 0) else "yfcc23"


class _Images:
    """Resolves and measures the local image file of a row."""

    def __init__(self, filters: CollectionFilters, index: ImageIndex | None) -> None:
        self.filters = filters
        self.index = index

        # Folders known to exist or not: metadata whose file:// URLs point into a
        # missing folder costs one stat per folder, not one per row.
        self._folders: dict[str, bool] = {}

    def resolve(self, photo_id: int, download_url: str) -> str | None:
        if self.index is not None:
            found = self.index.get(photo_id)
            if found is not None:
                return found
        if download_url.startswith("file://"):
            candidate = download_url[7:]
            if "%" in candidate:
                candidate = unquote(candidate)
            folder = candidate.rpartition("/")[0]
            exists = self._folders.get(folder)
            if exists is None:
                if len(self._folders) > 10_000:
                    self._folders.clear()
                exists = self._folders[folder] = os.path.isdir(folder)
            if exists and os.path.isfile(candidate):
                return candidate
        return None

    def measure(self, path: str) -> tuple[int, int, int]:
        """Return (bytes, width, height); raise OSError when the image is unreadable."""
        size = os.path.getsize(path)
        width, height = image_size(path)
        return size, width, height

    def filter_reason(self, size: int, width: int, height: int) -> str | None:
        f = self.filters
        if f.min_bytes is not None and size < f.min_bytes:
            return "too_few_bytes"
        short, long = min(width, height), max(width, height)
        if f.min_edge is not None and short < f.min_edge:
            return "too_small"
        if f.max_aspect is not None and (short == 0 or long / short > f.max_aspect):
            return "bad_aspect"
        return None


def integer_reason(name: str, text: str) -> str | None:
    """Say why a field is not an integer a row can hold, or None when it is one.

    An integer field is ASCII digits only, at most :data:`INT64_MAX`: no sign, no spaces,
    no underscores, no other script's digits (all of which Python's ``int`` accepts).

    Args:
        name: The field as named in reasons, e.g. ``photo id``.
        text: The field as written.

    Returns:
        ``None``, or a reason such as ``photo id '+5' is written with a sign``.
    """
    if text.isascii() and text.isdigit():
        if len(text) < 19 or int(text) <= INT64_MAX:
            return None
        return f"{name} {_shown(text)} is over 2^63 - 1, too large to be real"
    shown = _shown(text)
    if not text:
        return f"{name} is empty"
    unsigned = text[1:]
    if text[0] in "+-" and unsigned.isascii() and unsigned.isdigit():
        if text[0] == "-" and unsigned.strip("0"):
            return f"{name} {shown} is negative"
        return f"{name} {shown} is written with a sign; write digits only"
    if text.strip() != text or " " in text:
        return f"{name} {shown} has spaces"
    if text.isdigit():
        return f"{name} {shown} has digits other than ASCII 0-9"
    return f"{name} {shown} is not an integer"


def coordinate(name: str, text: str, limit: float) -> float | str:
    """Read a longitude or latitude: its value, or why it cannot be a real one.

    A coordinate is written with ASCII digits, a point, a sign and an exponent only (so
    no ``nan``, ``inf``, spaces or underscores, which Python's ``float`` accepts) and lies
    within ``[-limit, limit]``.

    Args:
        name: ``longitude`` or ``latitude``.
        text: The field as written (not empty).
        limit: 180 for a longitude, 90 for a latitude.

    Returns:
        The value, or a reason such as ``latitude '91.5' is outside [-90, 90]``.
    """
    if not text.strip(_DECIMAL_CHARS):
        try:
            value = float(text)
        except ValueError:
            return f"{name} {_shown(text)} is not a number"
        if -limit <= value <= limit:
            return value
        if math.isfinite(value):
            return f"{name} {_shown(text)} is outside [{-limit:g}, {limit:g}]"
    elif text.strip().lower().lstrip("+-") not in ("nan", "inf", "infinity"):
        return f"{name} {_shown(text)} is not a number"
    return f"{name} {_shown(text)} is not a finite number"


def _shown(text: str) -> str:
    return repr(text[:40])


def latest_upload() -> int:
    """The latest upload time (epoch seconds) a line may have now: now plus the slack.

    Returns:
        ``time.time()`` plus :data:`UPLOAD_SLACK_S`, in whole seconds.
    """
    return int(time.time()) + UPLOAD_SLACK_S


def validate_fields(f: list[str], wide: bool, latest: int) -> Checked | str:
    """Check every field of one metadata line: the one place a line is judged.

    Both reading paths (in-process and worker processes) come here through
    :meth:`_LineParser.parse`. Rejected: an integer field (line number, photo id, upload
    time, accuracy, server, farm) that is not ASCII digits below 2^63 (see
    :func:`integer_reason`); a photo id of 0; a date taken that is not a date; an upload
    time later than ``latest``; a longitude outside [-180, 180] or latitude outside
    [-90, 90], NaN or infinite; a marker other than 0 or 1.

    Args:
        f: The line's fields, as many as its layout has columns.
        wide: Whether the layout is ``yfcc25`` (line number and hash first).
        latest: The latest upload time allowed (:func:`latest_upload`).

    Returns:
        The typed values (:data:`Checked`), or the reason for rejecting the line, naming
        its first bad field.
    """
    # In the 25-column layout every field after the photo id sits two places later
    # (line number before the id, hash after it).
    b = 2 if wide else 0
    # Each integer first passes a quick test that only valid values pass (ASCII digits,
    # under 19 of them); integer_reason(), the rule itself, judges whatever fails it.
    line_number = None
    if wide:
        s = f[0]
        if not (s.isascii() and s.isdigit() and len(s) < 19):
            why = integer_reason("line number", s)
            if why:
                return why
        line_number = int(s)
    s = f[1] if wide else f[0]
    if not (s.isascii() and s.isdigit() and len(s) < 19):
        why = integer_reason("photo id", s)
        if why:
            return why
    pid = int(s)
    if not pid:
        return f"photo id {s!r} is not positive"
    taken = f[b + 3]
    if taken == "null":
        taken = ""
    taken_dt = None
    if taken:
        try:
            taken_dt = datetime.fromisoformat(taken)
        except ValueError:
            return f"date taken {_shown(taken)} is not a date"
    s = f[b + 4]
    if not (s.isascii() and s.isdigit() and len(s) < 19):
        why = integer_reason("date uploaded", s)
        if why:
            return why
    uploaded = int(s)
    if uploaded > latest:
        when = datetime.fromtimestamp(latest, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"date uploaded {_shown(s)} is in the future (after {when})"
    s = f[b + 10]
    longitude = coordinate("longitude", s, 180.0) if s else None
    if isinstance(longitude, str):
        return longitude
    s = f[b + 11]
    latitude = coordinate("latitude", s, 90.0) if s else None
    if isinstance(latitude, str):
        return latitude
    # Validated although stored as text: the same rule as the typed integers.
    s = f[b + 12]
    if s and not (s.isascii() and s.isdigit() and len(s) < 19):
        why = integer_reason("accuracy", s)
        if why:
            return why
    s = f[b + 17]
    if not (s.isascii() and s.isdigit() and len(s) < 19):
        why = integer_reason("server", s)
        if why:
            return why
    s = f[b + 18]
    if not (s.isascii() and s.isdigit() and len(s) < 19):
        why = integer_reason("farm", s)
        if why:
            return why
    s = f[b + 22]
    if s == "0":
        marker = 0
    elif s == "1":
        marker = 1
    else:
        return f"marker {_shown(s)} is not 0 (photo) or 1 (video)"
    return line_number, pid, taken, taken_dt, uploaded, marker, longitude, latitude


class _LineParser:
    """Validates metadata lines and turns them into compact rows (one per process).

    Args:
        layout: ``yfcc25`` or ``yfcc23``.
        filters: Which rows to keep.
        images: Local image files by photo id, or None.
    """

    def __init__(self, layout: str, filters: CollectionFilters, images: ImageIndex | None) -> None:
        self.layout = layout
        self.columns = LAYOUTS[layout]
        self.filters = filters
        self.images = _Images(filters, images)

    def parse(self, first_line: int, data: bytes) -> Batch:
        """Parse a chunk of whole lines.

        Args:
            first_line: 1-based line number of the chunk's first line in its file.
            data: The lines, UTF-8 (bad bytes replaced), each ending in ``\\n`` except
                perhaps the file's last.

        Returns:
            The chunk's rows, rejects (with their line numbers in the file), filter
            counts, line count and blank lines skipped. A byte order mark opening the
            file is dropped; each other line is judged by :func:`validate_fields`.
        """
        if first_line == 1 and data.startswith(_BOM):
            data = data[len(_BOM) :]
        text = data.decode("utf-8", "replace")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        columns = self.columns
        ncols = len(columns)
        layout = self.layout
        wide = ncols == 25
        # In the 25-column layout every field after the photo id sits two places later
        # (line number before the id, hash after it).
        b = 2 if wide else 0
        filters = self.filters
        photos_only = filters.photos_only
        valid_date = filters.valid_date
        needs_files = filters.needs_image_files
        resolve = self.images.resolve
        images = self.images
        validate = validate_fields
        latest = latest_upload()
        join = "\t".join
        batch = Batch(lines=len(lines))
        rows = batch.rows
        append = rows.append
        append_bare = batch.bare_rows.append
        rejects = batch.rejects
        filtered = batch.filtered
        line_no = first_line - 1
        for raw in lines:
            line_no += 1
            line = raw.rstrip("\r\n")
            f = line.split("\t")
            if len(f) != ncols:
                if not line.strip():
                    batch.blank += 1
                    continue
                reason = f"{len(f)} columns, expected {ncols} ({layout})"
                rejects.append(Reject(line_no, reason, line))
                continue
            checked = validate(f, wide, latest)
            if isinstance(checked, str):
                rejects.append(Reject(line_no, checked, line))
                continue
            line_number, pid, taken, taken_dt, uploaded, marker, longitude, latitude = checked
            if photos_only and marker == 1:
                filtered["video"] += 1
                continue
            if (
                valid_date
                and taken_dt is not None
                and taken_dt.replace(tzinfo=UTC).timestamp() > uploaded
            ):
                filtered["invalid_date"] += 1
                continue
            # The YFCC_TEXT_FIELDS, as distributed (no decoding), in layout order.
            yfcc = join(
                (
                    f[2] if wide else "",
                    f[b + 1],
                    f[b + 2],
                    f[b + 5],
                    f[b + 6],
                    f[b + 7],
                    f[b + 8],
                    f[b + 9],
                    f[b + 12],
                    f[b + 13],
                    f[b + 15],
                    f[b + 16],
                    f[b + 17],
                    f[b + 18],
                    f[b + 19],
                    f[b + 20],
                    f[b + 21],
                )
            )
            url = f[b + 14]
            local = resolve(pid, url)
            if local is None:
                if needs_files:
                    filtered["no_local_image"] += 1
                else:
                    append_bare(
                        (
                            pid,
                            line_number,
                            taken or None,
                            uploaded,
                            marker,
                            longitude,
                            latitude,
                            url,
                            yfcc,
                        )
                    )
                continue
            try:
                size, width, height = images.measure(local)
            except OSError as exc:
                rejects.append(Reject(line_no, f"image {local}: {exc}", line))
                continue
            why = images.filter_reason(size, width, height)
            if why is not None:
                filtered[why] += 1
                continue
            append(
                (
                    pid,
                    line_number,
                    taken or None,
                    uploaded,
                    marker,
                    longitude,
                    latitude,
                    url,
                    local,
                    size,
                    width,
                    height,
                    yfcc,
                )
            )
        return batch


_worker_parser: _LineParser | None = None


def _start_worker(layout: str, filters: CollectionFilters, images: ImageIndex | None) -> None:
    """Initialise a parsing worker process (runs once in each)."""
    global _worker_parser
    ignore_interrupts()
    _worker_parser = _LineParser(layout, filters, images)


def _parse_in_worker(first_line: int, data: bytes) -> Batch:
    """Parse one chunk in a worker process."""
    assert _worker_parser is not None, "worker not initialised"
    return _worker_parser.parse(first_line, data)


class _Inserter:
    """Parses chunks and inserts their rows into the target, one worker's share.

    Workers take turns on the database's single write lock in file order: chunk ``k``
    commits only after chunk ``k - 1`` (``turn`` counts the committed chunks), so the
    first occurrence of a photo id wins, as when one process inserts every row. Parsing
    needs no turn, so one worker parses while another inserts.
    """

    def __init__(
        self,
        parser: _LineParser,
        target: InsertTarget,
        turn: Any,
        turn_changed: Any,
    ) -> None:
        self.parser = parser
        self.target = target
        self.turn = turn
        self.turn_changed = turn_changed
        self.conn = sqlite3.connect(target.database, timeout=60, isolation_level=None)
        # Per connection: WAL commits without a sync (as the ledger's own connection does).
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(f"PRAGMA cache_size=-{_INSERT_CACHE_KIB}")
        # Under WAL, no checkpoints while loading: each one writes the pages again and
        # syncs, about as much work as the inserts; the caller checkpoints once at the end.
        self.conn.execute("PRAGMA wal_autocheckpoint=0")

    def insert(self, seq: int, first_line: int, data: bytes) -> InsertedChunk:
        batch = self.parser.parse(first_line, data)
        rows = len(batch.rows) + len(batch.bare_rows)
        with self.turn_changed:
            while self.turn.value != seq:
                self.turn_changed.wait()
        try:
            new_ids, inserted = self._write(batch)
        finally:
            # Pass the turn on even after an error, so no other worker waits forever;
            # the caller gets the error from this chunk and undoes the whole file.
            self._pass_turn(seq)
        return InsertedChunk(
            rows, inserted, new_ids, batch.rejects, batch.filtered, batch.lines, batch.blank
        )

    def _pass_turn(self, seq: int) -> None:
        with self.turn_changed:
            self.turn.value = seq + 1
            self.turn_changed.notify_all()

    def _write(self, batch: Batch) -> tuple[bytes, int]:
        conn, target = self.conn, self.target
        ids: list[int] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            if target.present_sql is not None:
                ids = [r[0] for r in batch.rows] + [r[0] for r in batch.bare_rows]
                present = {r[0] for r in conn.execute(target.present_sql, (json.dumps(ids),))}
                ids = [i for i in dict.fromkeys(ids) if i not in present]
            inserted = 0
            for sql, rows in ((target.full_sql, batch.rows), (target.bare_sql, batch.bare_rows)):
                if rows:
                    cur = conn.executemany(sql, rows)
                    inserted += max(cur.rowcount, 0)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return array("q", ids).tobytes(), inserted


_worker_inserter: _Inserter | None = None


def _start_inserter(
    layout: str,
    filters: CollectionFilters,
    images: ImageIndex | None,
    target: InsertTarget,
    turn: Any,
    turn_changed: Any,
) -> None:
    """Initialise an inserting worker process (runs once in each)."""
    global _worker_inserter
    ignore_interrupts()
    die_with_parent()
    _worker_inserter = _Inserter(_LineParser(layout, filters, images), target, turn, turn_changed)


def _insert_in_worker(seq: int, first_line: int, data: bytes) -> InsertedChunk:
    """Parse one chunk in a worker process and insert its rows when its turn comes."""
    assert _worker_inserter is not None, "worker not initialised"
    return _worker_inserter.insert(seq, first_line, data)


def worker_context() -> multiprocessing.context.BaseContext:
    """How parsing workers are started: ``fork`` when safe, ``spawn`` otherwise.

    ``fork`` starts a worker in milliseconds and needs no import of the caller's main
    module, but is only safe when no other thread could hold a lock at the moment of the
    fork; so it is used only where the platform has it and the caller runs a single
    Python thread. Otherwise ``spawn`` (a fresh interpreter) is used, which, as always with
    ``spawn``, needs a script's entry point under ``if __name__ == "__main__":`` (the
    ``turk`` command has it).

    Returns:
        A multiprocessing context.
    """
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def default_workers(path: str | os.PathLike[str]) -> int:
    """How many parsing processes to use for a metadata file by default.

    Args:
        path: The metadata file.

    Returns:
        0 (parse in-process) for files under :data:`IN_PROCESS_MAX_BYTES` on disk,
        otherwise ``min(2, CPUs)`` (:func:`retrieval.processes.available_cpus`): one
        process inserting and up to two parsing keep two cores busy, and more parsers
        would only wait on the single SQLite writer.
    """
    try:
        size = os.path.getsize(path)
    except OSError:
        return 0
    if size < IN_PROCESS_MAX_BYTES:
        return 0
    return min(2, available_cpus())


class MetadataFile:
    """A YFCC100M metadata file (plain, ``.bz2`` or ``.gz``), validated on opening.

    Args:
        path: The file.
        filters: Which rows to keep.
        images: Local image files by photo id (``--images DIR``), or None.
        batch_size: Lines per :class:`Batch`.
        workers: Parsing processes; 0 parses in the calling process; None picks
            :func:`default_workers`.
        decoder_threads: Threads decompressing a ``.bz2`` file; 0 uses the standard
            library's decoder; None picks :func:`default_decoder_threads`.

    Raises:
        CollectionError: Missing, unreadable or empty file, unknown layout, or a
            negative ``workers`` or ``decoder_threads``.
    """

    kind = "metadata"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        filters: CollectionFilters | None = None,
        images: ImageIndex | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        decoder_threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.layout = detect_layout(self.path)
        self.filters = filters or CollectionFilters()
        self.images = images
        self.batch_size = batch_size
        if workers is not None and workers < 0:
            raise CollectionError(f"--workers {workers}: must be 0 or more")
        self.workers = default_workers(self.path) if workers is None else workers
        if decoder_threads is not None and decoder_threads < 0:
            raise CollectionError(f"decoder threads {decoder_threads}: must be 0 or more")
        self.decoder_threads = (
            default_decoder_threads(self.workers) if decoder_threads is None else decoder_threads
        )

    @property
    def source(self) -> str:
        """Absolute path of the file (the ``sources`` entry of its rows)."""
        return str(self.path.resolve())

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        """Read the file as raw chunks of up to ``batch_size`` whole lines.

        Yields:
            ``(first line number, bytes)`` pairs, in file order.

        Raises:
            CollectionError: The compressed stream is truncated or corrupt.
        """
        line_no = 0
        with open_binary(
            self.path, decoder_threads=self.decoder_threads, decoder_process=True
        ) as raw:
            while True:
                lines: list[bytes] = []
                try:
                    lines.extend(islice(raw, self.batch_size))
                except STREAM_ERRORS as exc:
                    # extend() keeps what it got before the error: count those lines too.
                    raise _stream_error(self.path, line_no + len(lines), exc) from exc
                if not lines:
                    return
                yield line_no + 1, b"".join(lines)
                line_no += len(lines)

    def batches(self) -> Iterator[Batch]:
        """Read the file in batches, in file order.

        Yields:
            :class:`Batch` objects of up to ``batch_size`` lines each.

        Raises:
            CollectionError: The compressed stream is truncated or corrupt.
        """
        if self.workers == 0:
            parser = _LineParser(self.layout, self.filters, self.images)
            for first_line, data in self.chunks():
                yield parser.parse(first_line, data)
            return
        context = worker_context()
        with ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self.layout, self.filters, self.images),
        ) as pool:
            if context.get_start_method() == "fork":
                # Fork every worker now, before the decoder process starts: a child must
                # not inherit the pipe it reads from, nor a lock another thread holds.
                pool.submit(os.getpid).result()
            pending: deque[Future[Batch]] = deque()
            try:
                for first_line, data in self.chunks():
                    pending.append(pool.submit(_parse_in_worker, first_line, data))
                    # Bounded: at most two chunks per worker in flight.
                    while len(pending) >= 2 * self.workers:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            except BaseException:
                for future in pending:
                    future.cancel()
                raise

    def insert(self, target: InsertTarget) -> Generator[InsertedChunk, None, None]:
        """Parse the file in worker processes that insert the good rows themselves.

        Each worker opens its own connection to ``target.database``, parses a chunk, then
        waits for its turn and inserts the chunk in one transaction; chunks commit in file
        order while parsing overlaps, so the only serial work is the insert itself. Each
        chunk is committed when yielded: on an error, the caller removes the rows already
        inserted (``target.present_sql`` tells it which ids were new), and a killed run
        leaves whole chunks that a rerun skips.

        Args:
            target: The database and the statements to insert with.

        Yields:
            :class:`InsertedChunk` objects, in file order, each already committed.

        Raises:
            CollectionError: The compressed stream is truncated or corrupt, or
                ``workers`` is 0 (inserting from workers needs worker processes).
        """
        if self.workers == 0:
            raise CollectionError(f"{self.path}: inserting from workers needs --workers 1 or more")
        # Always a fresh interpreter, never fork: a forked child inherits SQLite's
        # per-process record of the files this process has open and locked (the ledger's
        # own connection), and a connection it opens to the same file then trusts locks it
        # does not hold, which can lose committed pages.
        context = multiprocessing.get_context("spawn")
        turn_changed = context.Condition()
        turn = context.Value("q", 0, lock=False)
        with ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_start_inserter,
            initargs=(self.layout, self.filters, self.images, target, turn, turn_changed),
        ) as pool:
            pending: deque[Future[InsertedChunk]] = deque()
            try:
                for seq, (first_line, data) in enumerate(self.chunks()):
                    pending.append(pool.submit(_insert_in_worker, seq, first_line, data))
                    while len(pending) >= 2 * self.workers:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            except BaseException:
                for future in pending:
                    future.cancel()
                raise


def decode_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """Decode a stored row into every YFCC field, URL-decoded as distributed text.

    Args:
        row: A row by column name: the :data:`ROW_FIELDS` (``yfcc_fields`` may be None
            for rows not written by ingest) and optionally ``source`` (the input path)
            and ``bucket``; any other key is passed through.

    Returns:
        A dict with the :data:`METADATA_FIELDS` (title, description, tags, machine
        tags, device, nickname and license name URL-decoded; accuracy, server and farm
        as integers or None; an absent hash as None), then the row's other keys.

    Raises:
        ValueError: ``yfcc_fields`` does not hold one value per :data:`YFCC_TEXT_FIELDS`.
    """
    out: dict[str, Any] = {name: row.get(name) for name in METADATA_FIELDS}
    text = row.get("yfcc_fields")
    if text is not None:
        values = text.split("\t")
        if len(values) != len(YFCC_TEXT_FIELDS):
            raise ValueError(
                f"image {row.get('id')}: yfcc_fields holds {len(values)} values, "
                f"expected {len(YFCC_TEXT_FIELDS)}"
            )
        out.update(zip(YFCC_TEXT_FIELDS, values, strict=True))
        for name in _DECODED:
            value = out[name]
            out[name] = unquote_plus(value) if "%" in value else value.replace("+", " ")
        for name in _TEXT_INT_FIELDS:
            out[name] = int(out[name]) if out[name] else None
        out["hash"] = out["hash"] or None
    for key, value in row.items():
        if key not in out and key != "yfcc_fields":
            out[key] = value
    return out


_SIDECAR_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("photo_id", "photoid", "id"),
    "line_number": ("line_number",),
    "hash": ("hash",),
    "user_nsid": ("user_nsid", "usernsid", "uid"),
    "nickname": ("nickname", "user_nickname"),
    "date_taken": ("date_taken", "datetaken"),
    "date_uploaded": ("date_uploaded", "dateuploaded"),
    "device": ("device", "capture_device"),
    "title": ("title",),
    "description": ("description",),
    "user_tags": ("user_tags", "usertags"),
    "machine_tags": ("machine_tags", "machinetags"),
    "longitude": ("longitude",),
    "latitude": ("latitude",),
    "accuracy": ("accuracy",),
    "page_url": ("page_url", "pageurl"),
    "download_url": ("download_url", "downloadurl", "url"),
    "license_name": ("license_name", "licensename"),
    "license_url": ("license_url", "licenseurl"),
    "server": ("server", "server_id"),
    "farm": ("farm", "farm_id"),
    "secret": ("secret",),
    "secret_original": ("secret_original",),
    "extension": ("extension", "ext"),
    "marker": ("marker",),
}
_INT_FIELDS = frozenset({"id", "line_number", "date_uploaded", "accuracy", "server", "farm"})
_FLOAT_FIELDS = frozenset({"longitude", "latitude"})


def _sidecar_row(
    sidecar: dict[str, Any], image: str, images: _Images, latest: int
) -> tuple[Row | None, str | None, str | None]:
    """Build a row from an img2dataset sidecar: (row, filter reason, reject reason).

    Text values are kept as the sidecar gives them (YFCC's URL-encoded form) and decoded
    on read like metadata lines; a tab or line break inside a value that gets decoded is
    percent-encoded, inside any other text value it makes the sidecar a reject.
    """
    if sidecar.get("status", "success") != "success":
        return None, "download_failed", None
    values: dict[str, Any] = {}
    for name, aliases in _SIDECAR_ALIASES.items():
        value = next((sidecar[a] for a in aliases if sidecar.get(a) not in (None, "")), None)
        if value is None:
            values[name] = None
            continue
        what = name.replace("_", " ")
        if name in _INT_FIELDS:
            # The rules of metadata lines: ASCII digits below 2^63, no sign or spaces.
            why = integer_reason(what, str(value))
            if why:
                return None, None, why
            values[name] = int(value)
            continue
        if name in _FLOAT_FIELDS:
            place = coordinate(name, str(value), 180.0 if name == "longitude" else 90.0)
            if isinstance(place, str):
                return None, None, place
            values[name] = place
            continue
        try:
            if name == "marker":
                values[name] = int(value)
            else:
                text = str(value)
                if name in _DECODED:
                    text = text.replace("\t", "%09").replace("\n", "%0A").replace("\r", "%0D")
                elif "\t" in text or "\n" in text or "\r" in text:
                    what = name.replace("_", " ")
                    return None, None, f"{what} {text[:40]!r} holds a tab or line break"
                values[name] = text
        except (TypeError, ValueError):
            return None, None, f"{name.replace('_', ' ')} {str(value)[:40]!r} is not a number"
    if values["id"] is None or values["id"] <= 0:
        return None, None, "no photo id (save it with img2dataset --save_additional_columns)"
    if values["date_uploaded"] is None:
        return None, None, "no upload time (save date_uploaded with the images)"
    if values["date_uploaded"] > latest:
        when = datetime.fromtimestamp(latest, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            None,
            None,
            f"date uploaded {values['date_uploaded']} is in the future (after {when})",
        )
    marker = values["marker"] if values["marker"] is not None else 0
    if marker not in (0, 1):
        return None, None, f"marker {marker!r} is not 0 (photo) or 1 (video)"
    values["marker"] = marker
    taken = values["date_taken"]
    taken_dt = None
    if taken:
        try:
            taken_dt = parse_date_taken(str(taken))
        except ValueError:
            return None, None, f"date taken {str(taken)[:40]!r} is not a date"
    if images.filters.photos_only and marker == 1:
        return None, "video", None
    if (
        images.filters.valid_date
        and taken_dt is not None
        and taken_dt.replace(tzinfo=UTC).timestamp() > values["date_uploaded"]
    ):
        return None, "invalid_date", None
    try:
        size, width, height = images.measure(image)
    except OSError as exc:
        return None, None, f"image {image}: {exc}"
    why = images.filter_reason(size, width, height)
    if why is not None:
        return None, why, None
    values.update(local_path=image, byte_size=size, width=width, height=height)
    values["yfcc_fields"] = "\t".join(
        "" if values[name] is None else str(values[name]) for name in YFCC_TEXT_FIELDS
    )
    return tuple(values[name] for name in ROW_FIELDS), None, None


class Img2DatasetFolder:
    """An img2dataset output folder: image files, each with a ``.json`` sidecar.

    Sidecars must carry the photo id (``photo_id``/``photoid``/``id``) and the upload
    time (``date_uploaded``/``dateuploaded``, epoch seconds); other YFCC fields are
    taken when present (names as in :data:`IMAGE_FIELDS`, or without underscores).
    Sidecars whose ``status`` is not ``success`` are skipped as ``download_failed``.

    Args:
        path: The folder.
        filters: Which rows to keep.
        batch_size: Rows per :class:`Batch`.

    Raises:
        CollectionError: The folder holds no image with a sidecar.
    """

    kind = "img2dataset"
    layout = "img2dataset"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        filters: CollectionFilters | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.path = Path(path)
        self.filters = filters or CollectionFilters()
        self.batch_size = batch_size
        if next(self._pairs(), None) is None:
            raise CollectionError(
                f"{self.path}: no images with .json sidecars in this folder; pass an "
                "img2dataset output folder or a metadata file"
            )

    @property
    def source(self) -> str:
        """Absolute path of the folder (the ``sources`` entry of its rows)."""
        return str(self.path.resolve())

    def _pairs(self) -> Iterator[tuple[str, str]]:
        """Yield (sidecar, image) path pairs, folder by folder in sorted order."""
        try:
            for dirpath, dirs, files in os.walk(self.path):
                dirs.sort()
                names = set(files)
                for name in sorted(files):
                    stem, dot, suffix = name.rpartition(".")
                    if not dot or suffix != "json" or stem.endswith("_stats"):
                        continue
                    for ext in ("jpg", "jpeg", "png", "webp"):
                        if f"{stem}.{ext}" in names:
                            yield (
                                os.path.join(dirpath, name),
                                os.path.abspath(os.path.join(dirpath, f"{stem}.{ext}")),
                            )
                            break
        except OSError as exc:
            raise CollectionError(f"{self.path}: cannot list the folder ({exc})") from exc

    def batches(self) -> Iterator[Batch]:
        """Read the folder's sidecars in batches, in sorted path order.

        Yields:
            :class:`Batch` objects; a reject's ``line`` is the sidecar's ordinal and its
            ``text`` the sidecar path.
        """
        images = _Images(self.filters, None)
        latest = latest_upload()
        batch = Batch()
        for ordinal, (sidecar_path, image) in enumerate(self._pairs(), start=1):
            batch.lines += 1
            try:
                with open(sidecar_path, encoding="utf-8") as fh:
                    sidecar = json.load(fh)
                if not isinstance(sidecar, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                batch.rejects.append(Reject(ordinal, f"sidecar unreadable ({exc})", sidecar_path))
            else:
                row, filtered, rejected = _sidecar_row(sidecar, image, images, latest)
                if row is not None:
                    batch.rows.append(row)
                elif filtered is not None:
                    batch.filtered[filtered] += 1
                else:
                    batch.rejects.append(Reject(ordinal, rejected or "unusable", sidecar_path))
            if batch.lines >= self.batch_size:
                yield batch
                batch = Batch()
        if batch.lines:
            yield batch


CollectionSource = MetadataFile | Img2DatasetFolder
"""Anything :func:`open_collection` returns."""


def open_collection(
    path: str | os.PathLike[str],
    *,
    filters: CollectionFilters | None = None,
    images: ImageIndex | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    decoder_threads: int | None = None,
) -> CollectionSource:
    """Open a metadata file or an img2dataset folder, validating it as a whole first.

    Args:
        path: Metadata file (plain, ``.bz2``, ``.gz``) or img2dataset output folder.
        filters: Which rows to keep; default keeps photos only.
        images: Local image files by photo id (metadata files only), or None.
        batch_size: Lines per batch.
        workers: Parsing processes for a metadata file (0: in-process; None:
            :func:`default_workers`); folders are always read in-process.
        decoder_threads: Threads decompressing a ``.bz2`` metadata file (0: the
            standard library's decoder; None: :func:`default_decoder_threads`).

    Returns:
        A reader whose ``batches()`` streams the collection.

    Raises:
        CollectionError: Missing, unreadable or empty input, unknown layout, or a
            negative ``workers`` or ``decoder_threads``.
    """
    p = Path(path)
    if p.is_dir():
        return Img2DatasetFolder(p, filters=filters, batch_size=batch_size)
    return MetadataFile(
        p,
        filters=filters,
        images=images,
        batch_size=batch_size,
        workers=workers,
        decoder_threads=decoder_threads,
    )


def read_records(
    path: str | os.PathLike[str],
    *,
    filters: CollectionFilters | None = None,
    workers: int | None = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[dict[str, Any] | Reject]:
    """Stream a collection decoded: each batch's good rows, then its rejects.

    A convenience over :func:`open_collection` and :func:`decode_metadata` for small
    inputs and tests (ingest stores compact rows and decodes only on read).

    Args:
        path: Metadata file or img2dataset folder.
        filters: Which rows to keep.
        workers: Parsing processes (default 0: in-process).
        batch_size: Lines per batch.

    Yields:
        Decoded records (dicts with the :data:`METADATA_FIELDS`) and :class:`Reject`
        objects.
    """
    reader = open_collection(path, filters=filters, workers=workers, batch_size=batch_size)
    source = reader.source
    for batch in reader.batches():
        for row in batch.full_rows():
            yield decode_metadata({**dict(zip(ROW_FIELDS, row, strict=True)), "source": source})
        yield from batch.rejects
