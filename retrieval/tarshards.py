"""Reader of webdataset / img2dataset tar shards (``KEY.jpg`` + ``KEY.json`` members).

Members that share a key (the file name up to its first dot) form one sample; writers
put them next to each other, so samples are read in one streaming pass.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.errors import CollectionError

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
"""Member extensions read as the sample's image."""


@dataclass
class TarSample:
    """One sample of a tar shard.

    Attributes:
        tar: The tar file.
        key: The sample key (member name without extension).
        image: Encoded image bytes, or None when the sample has no image member.
        meta: The decoded ``.json`` member, or ``{}``.
    """

    tar: Path
    key: str
    image: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _split(name: str) -> tuple[str, str]:
    folder, base = os.path.split(name)
    stem, _, ext = base.partition(".")
    return (os.path.join(folder, stem) if folder else stem), ext.lower()


def iter_tar_samples(paths: Iterable[str | os.PathLike[str]]) -> Iterator[TarSample]:
    """Read the samples of webdataset / img2dataset tar shards in order.

    Args:
        paths: Tar files (plain or compressed, as ``tarfile`` reads them).

    Yields:
        :class:`TarSample` per key.

    Raises:
        CollectionError: A file is missing or not a readable tar.
    """
    for raw in paths:
        path = Path(raw)
        current: TarSample | None = None
        try:
            with tarfile.open(path, mode="r:*") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    key, ext = _split(member.name)
                    if current is not None and current.key != key:
                        yield current
                        current = None
                    if current is None:
                        current = TarSample(path, key)
                    fh = archive.extractfile(member)
                    if fh is None:
                        continue
                    data = fh.read()
                    if ext in IMAGE_EXTENSIONS:
                        current.image = data
                    elif ext == "json":
                        try:
                            meta = json.loads(data)
                        except ValueError:
                            meta = {}
                        current.meta = meta if isinstance(meta, dict) else {}
                if current is not None:
                    yield current
        except FileNotFoundError as exc:
            raise CollectionError(f"{path}: tar shard not found; check the --tar paths") from exc
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise CollectionError(
                f"{path}: not a readable tar shard ({exc}); re-download it or leave it out"
            ) from exc
