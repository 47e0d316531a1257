"""Embedding shards on disk: ``shard-NNNNN.npy`` (float16 vectors) + ``shard-NNNNN.ids.npy``.

A shard is written to temporary names and renamed into place only when both files are
complete, so a reader never sees half a shard; the caller registers it (in the ledger)
only after :func:`write_shard` returns.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import RetrievalError


@dataclass(frozen=True)
class ShardFiles:
    """A written shard.

    Attributes:
        index: Shard number (``NNNNN`` in the names).
        vectors_path: The ``.npy`` of ``float16`` vectors ``(count, dim)``.
        ids_path: The ``.ids.npy`` of ``int64`` image ids, in vector order.
        count: Number of vectors.
        dim: Vector length.
        checksum: SHA-256 of the vectors file bytes followed by the ids file bytes.
    """

    index: int
    vectors_path: Path
    ids_path: Path
    count: int
    dim: int
    checksum: str


def shard_paths(folder: Path, index: int) -> tuple[Path, Path]:
    """Return the vectors and ids paths of shard ``index`` in ``folder``.

    Args:
        folder: The model's embeddings folder.
        index: Shard number.

    Returns:
        ``(vectors_path, ids_path)``.
    """
    return folder / f"shard-{index:05d}.npy", folder / f"shard-{index:05d}.ids.npy"


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_shard(folder: Path, index: int, ids: np.ndarray, vectors: np.ndarray) -> ShardFiles:
    """Write one shard atomically (temporary files, then rename).

    Args:
        folder: The model's embeddings folder (created when missing).
        index: Shard number.
        ids: ``int64`` image ids.
        vectors: ``float16`` vectors, one row per id.

    Returns:
        The :class:`ShardFiles` with its checksum.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float16)
    if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
        raise ValueError(f"shard {index}: {ids.shape[0]} ids but vectors {vectors.shape}")
    vectors_path, ids_path = shard_paths(folder, index)
    vector_bytes, id_bytes = _npy_bytes(vectors), _npy_bytes(ids)
    checksum = hashlib.sha256(vector_bytes + id_bytes).hexdigest()
    _write_atomic(ids_path, id_bytes)
    _write_atomic(vectors_path, vector_bytes)
    return ShardFiles(
        index, vectors_path, ids_path, int(ids.shape[0]), int(vectors.shape[1]), checksum
    )


def read_shard(
    vectors_path: Path, ids_path: Path, count: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Open a shard (vectors memory-mapped) and check it is whole.

    Args:
        vectors_path: The vectors file.
        ids_path: The ids file.
        count: Expected number of vectors (from the registry), or None.

    Returns:
        ``(ids, vectors)``; vectors are a read-only memory map.

    Raises:
        RetrievalError: A file is missing, unreadable or does not match the count.
    """
    try:
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
