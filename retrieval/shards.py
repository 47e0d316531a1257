"""Embedding shards: ``shard-NNNNN.npy`` (float16 vectors) + ``shard-NNNNN.ids.npy``.

A shard is written to temporary names and renamed into place only when both files are
complete, so a reader never sees half a shard; the caller registers it (in the ledger)
only after :func:`write_shard` returns.

A shard folder is a local path or an fsspec URL (``s3://bucket/embeddings/...``,
``gs://...``, ``file:///shared/...``): workers on a cluster write where every machine
can read, and ranking reads the same files wherever they are. Local files are
memory-mapped; a URL's files are read whole. fsspec is imported only for URLs.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.errors import RetrievalError

ShardLocation = Path | str
"""A shard folder or file: a local path, or an fsspec URL (a string with ``://``)."""


def is_url(location: ShardLocation) -> bool:
    """Whether a location is an fsspec URL rather than a local path.

    Args:
        location: A path or URL.

    Returns:
        True for strings such as ``s3://bucket/x`` or ``file:///shared/x``.
    """
    return isinstance(location, str) and "://" in location


def as_location(text: str) -> ShardLocation:
    """A location from its text: URLs stay strings, anything else becomes a Path.

    Args:
        text: A path or URL.

    Returns:
        The :data:`ShardLocation`.
    """
    return text if is_url(text) else Path(text)


def join_location(folder: ShardLocation, name: str) -> ShardLocation:
    """``folder / name`` for a path or a URL.

    Args:
        folder: A folder path or URL.
        name: A file or folder name inside it.

    Returns:
        The joined location, of the folder's kind.
    """
    if is_url(folder):
        return f"{str(folder).rstrip('/')}/{name}"
    return Path(folder) / name


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:
        raise RetrievalError(
            f"{url}: shard URLs need fsspec (and its driver for the scheme, e.g. s3fs); "
            "install it with: pip install 'turk[ray]'"
        ) from exc
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise RetrievalError(f"{url}: cannot open this URL with fsspec ({exc})") from exc


@dataclass(frozen=True)
class ShardFiles:
    """A written shard.

    Attributes:
        index: Shard number (``NNNNN`` in the names).
        vectors_path: The ``.npy`` of ``float16`` vectors ``(count, dim)`` (path or URL).
        ids_path: The ``.ids.npy`` of ``int64`` image ids, in vector order (path or URL).
        count: Number of vectors.
        dim: Vector length.
        checksum: SHA-256 of the vectors file bytes followed by the ids file bytes.
    """

    index: int
    vectors_path: ShardLocation
    ids_path: ShardLocation
    count: int
    dim: int
    checksum: str


def shard_paths(folder: ShardLocation, index: int) -> tuple[Any, Any]:
    """Return the vectors and ids paths of shard ``index`` in ``folder``.

    Args:
        folder: The model's embeddings folder (a path, or a URL).

    Returns:
        ``(vectors_path, ids_path)``, Paths for a path folder, URL strings for a URL.
    """
    return (
        join_location(folder, f"shard-{index:05d}.npy"),
        join_location(folder, f"shard-{index:05d}.ids.npy"),
    )


def shard_checksum(parts: Iterator[bytes]) -> str:
    """The checksum of a shard: SHA-256 of its vectors file's bytes then its ids file's.

    Args:
        parts: The bytes, in that order, in any number of pieces.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _open(location: ShardLocation) -> Any:
    if is_url(location):
        fs, path = _fs(str(location))
        return fs.open(path, "rb")
    return Path(location).open("rb")


def _file_chunks(location: ShardLocation) -> Iterator[bytes]:
    with _open(location) as fh:
        while chunk := fh.read(1 << 22):
            yield chunk


def files_checksum(vectors_path: ShardLocation, ids_path: ShardLocation) -> str | None:
    """The checksum of a shard as its files hold it now (see :func:`shard_checksum`).

    Args:
        vectors_path: The vectors file.
        ids_path: The ids file.

    Returns:
        The hex digest, or None when a file is missing or unreadable.
    """

    def chunks() -> Iterator[bytes]:
        yield from _file_chunks(vectors_path)
        yield from _file_chunks(ids_path)

    try:
        return shard_checksum(chunks())
    except OSError:
        return None


def shard_exists(vectors_path: ShardLocation, ids_path: ShardLocation) -> bool:
    """Whether both files of a shard exist (here, or at their URL).

    Args:
        vectors_path: The vectors file.
        ids_path: The ids file.

    Returns:
        True when both are there.
    """
    for location in (vectors_path, ids_path):
        if is_url(location):
            fs, path = _fs(str(location))
            if not fs.isfile(path):
                return False
        elif not Path(location).is_file():
            return False
    return True


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_atomic(path: ShardLocation, data: bytes) -> None:
    if is_url(path):
        # Object stores publish an object whole when its upload ends; the temporary
        # name keeps file systems behind fsspec (NFS, local) just as safe.
        fs, target = _fs(str(path))
        fs.pipe_file(target + ".tmp", data)
        fs.mv(target + ".tmp", target)
        return
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_shard(
    folder: ShardLocation, index: int, ids: np.ndarray, vectors: np.ndarray
) -> ShardFiles:
    """Write one shard atomically (temporary files, then rename).

    Args:
        folder: The model's embeddings folder, a path or an fsspec URL (created when
            missing).
        index: Shard number.
        ids: ``int64`` image ids.
        vectors: ``float16`` vectors, one row per id.

    Returns:
        The :class:`ShardFiles` with its checksum.
    """
    if is_url(folder):
        fs, root = _fs(str(folder))
        fs.makedirs(root, exist_ok=True)
    else:
        Path(folder).mkdir(parents=True, exist_ok=True)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float16)
    if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
        raise ValueError(f"shard {index}: {ids.shape[0]} ids but vectors {vectors.shape}")
    vectors_path, ids_path = shard_paths(folder, index)
    vector_bytes, id_bytes = _npy_bytes(vectors), _npy_bytes(ids)
    checksum = shard_checksum(iter((vector_bytes, id_bytes)))
    _write_atomic(ids_path, id_bytes)
    _write_atomic(vectors_path, vector_bytes)
    return ShardFiles(
        index, vectors_path, ids_path, int(ids.shape[0]), int(vectors.shape[1]), checksum
    )


def _load_url(url: str) -> np.ndarray:
    with _open(url) as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


def read_shard(
    vectors_path: ShardLocation, ids_path: ShardLocation, count: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Open a shard (local vectors memory-mapped, a URL's read whole) and check it is whole.

    Args:
        vectors_path: The vectors file (path or URL).
        ids_path: The ids file (path or URL).
        count: Expected number of vectors (from the registry), or None.

    Returns:
        ``(ids, vectors)``; local vectors are a read-only memory map.

    Raises:
        RetrievalError: A file is missing, unreadable or does not match the count.
    """
    try:
        if is_url(vectors_path):
            ids = _load_url(str(ids_path))
            vectors = _load_url(str(vectors_path))
        else:
            ids = np.load(ids_path, allow_pickle=False)
            vectors = np.load(vectors_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RetrievalError(
            f"{vectors_path}: embedding shard missing or unreadable ({exc}); "
            "rerun 'turk embed' to rebuild it"
        ) from exc
    if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
        raise RetrievalError(
            f"{vectors_path}: {vectors.shape[0]} vectors for {ids.shape[0]} ids; "
            "rerun 'turk embed' to rebuild it"
        )
    if count is not None and ids.shape[0] != count:
        raise RetrievalError(
            f"{vectors_path}: holds {ids.shape[0]} vectors, registered with {count}; "
            "rerun 'turk embed' to rebuild it"
        )
    return ids, vectors
