"""How other areas read the tables the collection area owns: ``images`` and ``buckets``.

Only :mod:`turk.collection` writes ``sources``, ``images`` and ``buckets``
(``turk ingest``, ``turk sample``, ``turk buckets``); every other area reads them through
these functions, so a column can change in one place. Image metadata (titles, tags,
devices) is read with :func:`turk.collection.ingest.image_metadata`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from turk.ledger import Ledger

__all__ = [
    "bucket_ids",
    "id_chunks",
    "image_buckets",
    "image_count",
    "image_files",
    "image_ids",
    "image_ids_by_url",
    "local_image_files",
]

_CHUNK = 500
"""Ids per ``IN (...)`` query: well under SQLite's limit on bound parameters."""


def image_count(ledger: Ledger, *, with_file: bool = False) -> int:
    """Count the ingested images.

    Args:
        ledger: The open ledger.
        with_file: Count only images with a local file.

    Returns:
        The number of images.
    """
    sql = "SELECT COUNT(*) FROM images"
    if with_file:
        sql += " WHERE local_path IS NOT NULL"
    (count,) = ledger.conn.execute(sql).fetchone()
    return int(count)


def image_ids(ledger: Ledger) -> set[int]:
    """Return the ids of every ingested image.

    Args:
        ledger: The open ledger.

    Returns:
        The image ids.
    """
    return {int(r[0]) for r in ledger.conn.execute("SELECT id FROM images")}


def image_ids_by_url(ledger: Ledger) -> dict[str, int]:
    """Map each image's download URL to its id (images without a URL are left out).

    Args:
        ledger: The open ledger.

    Returns:
        ``{download_url: image id}``.
    """
    return {
        str(url): int(image_id)
        for image_id, url in ledger.conn.execute(
            "SELECT id, download_url FROM images WHERE download_url IS NOT NULL"
        )
    }


def local_image_files(ledger: Ledger) -> list[tuple[int, str]]:
    """Return every image that has a local file, in id order.

    Args:
        ledger: The open ledger.

    Returns:
        ``(image id, local path)`` pairs.
    """
    return [
        (int(i), str(p))
        for i, p in ledger.conn.execute(
            "SELECT id, local_path FROM images WHERE local_path IS NOT NULL ORDER BY id"
        )
    ]


def id_chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    """Split image ids into sorted, distinct runs small enough for one ``IN (...)``.

    Args:
        ids: Image ids, in any order, repeats allowed.

    Returns:
        The runs, in id order.
    """
    ordered = sorted({int(i) for i in ids})
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def image_files(ledger: Ledger, ids: Iterable[int]) -> dict[int, str | None]:
    """Look up the local file of each image asked for.

    Args:
        ledger: The open ledger.
        ids: Image ids; unknown ids are left out of the answer.

    Returns:
        ``{image id: local path or None}``.
    """
    found: dict[int, str | None] = {}
    for chunk in id_chunks(ids):
        marks = ",".join("?" * len(chunk))
        for image_id, path in ledger.conn.execute(
            f"SELECT id, local_path FROM images WHERE id IN ({marks})", chunk
        ):
            found[int(image_id)] = None if path is None else str(path)
    return found


def image_buckets(ledger: Ledger, ids: Iterable[int] | None = None) -> dict[int, int]:
    """Map images to their time bucket (images outside every bucket are left out).

    Args:
        ledger: The open ledger.
        ids: Image ids to look up; ``None`` for every image.

    Returns:
        ``{image id: bucket}``.
    """
    sql = "SELECT id, bucket FROM images WHERE bucket IS NOT NULL"
    if ids is None:
        return {int(i): int(b) for i, b in ledger.conn.execute(sql)}
    found: dict[int, int] = {}
    for chunk in id_chunks(ids):
        marks = ",".join("?" * len(chunk))
        for i, b in ledger.conn.execute(f"{sql} AND id IN ({marks})", chunk):
            found[int(i)] = int(b)
    return found


def bucket_ids(ledger: Ledger, *, reserved: bool | None = None) -> list[int]:
    """Return bucket numbers in time order.

    Args:
        ledger: The open ledger.
        reserved: ``False`` for the labeled buckets, ``True`` for the reserved
            (unlabeled) ones, ``None`` for all.

    Returns:
        The bucket ids.
    """
    sql = "SELECT id FROM buckets"
    params: tuple[int, ...] = ()
    if reserved is not None:
        sql += " WHERE reserved = ?"
        params = (int(reserved),)
    return [int(r[0]) for r in ledger.conn.execute(sql + " ORDER BY id", params)]
