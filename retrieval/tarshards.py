"""Reader of webdataset / img2dataset tar shards (``KEY.jpg`` + ``KEY.json`` members).

Members that share a key (the file name up to its first dot) form one sample; writers
put them next to each other, so samples are read in one streaming pass.
"""

from __future__ import annotations

import glob
import json
import os
import re
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


_BRACE = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def _brace_items(body: str) -> list[str] | None:
    """The alternatives of one ``{...}`` group, or None when it is not a pattern."""
    span = _RANGE.match(body)
    if span:
        first, last = span.group(1), span.group(2)
        low, high = int(first), int(last)
        step = 1 if high >= low else -1
        # {00000..00099} keeps its zero padding, as bash and webdataset do.
        width = len(first) if first.lstrip("-").startswith("0") and len(first) > 1 else 0
        return [str(n).zfill(width) for n in range(low, high + step, step)]
    if "," in body:
        return body.split(",")
    return None


def expand_shard_pattern(pattern: str) -> list[str]:
    """Expand a shard pattern into file names, as webdataset and bash do.

    ``{00000..00099}`` is a zero-padded range, ``{a,b}`` a list, and several groups
    multiply; what remains is matched as a glob when it holds ``*``, ``?`` or ``[``.
    A name without a pattern is returned as it is (a missing file is reported when read).

    Args:
        pattern: A path such as ``shards/{00000..00099}.tar`` or ``shards/*.tar``.

    Returns:
        The file names, in pattern order (glob matches sorted).

    Raises:
        CollectionError: A glob matches no file.
    """
    names = [pattern]
    while True:
        expanded: list[str] = []
        changed = False
        for name in names:
            group = next(
                (m for m in _BRACE.finditer(name) if _brace_items(m.group(1)) is not None), None
            )
            if group is None:
                expanded.append(name)
                continue
            changed = True
            head, tail = name[: group.start()], name[group.end() :]
            expanded.extend(head + item + tail for item in _brace_items(group.group(1)) or [])
        names = expanded
        if not changed:
            break
    found: list[str] = []
    for name in names:
        if glob.has_magic(name):
            matches = sorted(glob.glob(name))
            if not matches:
                raise CollectionError(f"{name}: no file matches this pattern; check the path")
            found.extend(matches)
        else:
            found.append(name)
    return found


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
