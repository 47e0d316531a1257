"""``turk embed``: CLIP embeddings of the ledger's images, resumable, shard by shard.

Wires :mod:`retrieval.embed` to the ledger. Shards go to
``<ledger root>/embeddings/<model-slug>/``; each one is registered in
``embedding_shards`` (model, pretrained, count, checksum), together with the images of
its slice that failed (``embedding_failures``), in one transaction once its files are
complete. A rerun embeds only the images that are in no registered shard and have no
recorded failure, so a killed run loses at most the shard in progress.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.decode import ImageSource
from retrieval.modelnames import DEFAULT_MODEL, DEFAULT_PRETRAINED
from retrieval.shards import read_shard
from retrieval.tarshards import iter_tar_samples
from turk.collection.tables import image_count, image_ids, image_ids_by_url, local_image_files
from turk.errors import StageError
from turk.ledger import Ledger, utc_now

if TYPE_CHECKING:
    from retrieval.embed import ShardResult
    from retrieval.encoder import ClipEncoder

_ID_KEYS = ("id", "photo_id", "photoid", "image_id", "yfcc_id")


@dataclass(frozen=True)
class RegisteredShard:
    """A row of ``embedding_shards``, with absolute paths."""

    shard: int
    vectors_path: Path
    ids_path: Path
    count: int
    dim: int
    checksum: str


@dataclass
class EmbedPlan:
    """What ``turk embed`` is about to do (model loaded, work listed, nothing written).

    Attributes:
        encoder: The loaded encoder.
        folder: The model's embeddings folder.
        items: ``(image_id, source)`` still to embed (lazy for tar shards).
        total: Number of items when known (local files), else None.
        already_done: Images already in registered shards or recorded as failed.
        next_shard: Number of the first new shard.
        settings: Settings recorded with the run.
    """

    encoder: ClipEncoder
    folder: Path
    items: Iterator[tuple[int, ImageSource]]
    total: int | None
    already_done: int
    next_shard: int
    settings: dict[str, Any]
    tar_stats: dict[str, int] = field(default_factory=dict)


@dataclass
class EmbedReport:
    """What ``turk embed`` did.

    Attributes:
        slug: The embeddings folder name.
        device: Device used.
        shards: New shards registered.
        images: Images embedded.
        failed: Images recorded as failed in this run.
        already_done: Images skipped because an earlier run did them.
        tar_unmatched: Tar samples whose id is not in the ledger.
        seconds: Wall time of the embedding loop.
        stopped_early: True when ``max_shards`` stopped the run.
    """

    slug: str
    device: str
    shards: int
    images: int
    failed: int
    already_done: int
    tar_unmatched: int
    seconds: float
    stopped_early: bool

    @property
    def images_per_second(self) -> float:
        """Images (embedded + failed) per second."""
        return (self.images + self.failed) / self.seconds if self.seconds > 0 else 0.0


def registered_shards(ledger: Ledger, slug: str) -> list[RegisteredShard]:
    """Return the registered shards of a model, in shard order.

    Args:
        ledger: The ledger.
        slug: Model slug (see :func:`retrieval.encoder.model_slug`).

    Returns:
        The shards.
    """
    rows = ledger.conn.execute(
        "SELECT shard, path, ids_path, count, dim, checksum FROM embedding_shards "
        "WHERE slug=? ORDER BY shard",
        (slug,),
    ).fetchall()
    return [
        RegisteredShard(int(r[0]), ledger.root / r[1], ledger.root / r[2], r[3], r[4], r[5])
        for r in rows
    ]


def embedded_models(ledger: Ledger) -> list[tuple[str, str | None]]:
    """Return the (model, pretrained) pairs the ledger holds embeddings of.

    Args:
        ledger: The ledger.

    Returns:
        The pairs as given to ``turk embed``, in the order they were first embedded.
    """
    rows = ledger.conn.execute(
        "SELECT model, pretrained FROM embedding_shards GROUP BY slug ORDER BY MIN(id)"
    ).fetchall()
    return [
        (str(model), None if pretrained is None else str(pretrained)) for model, pretrained in rows
    ]


def _done_ids(ledger: Ledger, slug: str) -> tuple[set[int], int]:
    done: set[int] = set()
    stale: list[int] = []
    max_shard = -1
    for shard in registered_shards(ledger, slug):
        max_shard = max(max_shard, shard.shard)
        if not (shard.vectors_path.is_file() and shard.ids_path.is_file()):
            stale.append(shard.shard)
            continue
        ids, _ = read_shard(shard.vectors_path, shard.ids_path, shard.count)
        done.update(ids.tolist())
    if stale:
        # Files removed by hand: forget them so their images are embedded again.
        with ledger.conn:
            ledger.conn.executemany(
                "DELETE FROM embedding_shards WHERE slug=? AND shard=?",
                [(slug, s) for s in stale],
            )
            ledger.conn.executemany(
                "DELETE FROM embedding_failures WHERE slug=? AND shard=?",
                [(slug, s) for s in stale],
            )
    for (image_id,) in ledger.conn.execute(
        "SELECT image_id FROM embedding_failures WHERE slug=?", (slug,)
    ):
        done.add(int(image_id))
    return done, max_shard + 1


def _tar_items(
    ledger: Ledger, tar_paths: Sequence[str], done: set[int], stats: dict[str, int]
) -> Iterator[tuple[int, ImageSource]]:
    known = image_ids(ledger)
    by_url: dict[str, int] | None = None
    seen: set[int] = set()
    for sample in iter_tar_samples(tar_paths):
        image_id: int | None = None
        for key in _ID_KEYS:
            value = sample.meta.get(key)
            if isinstance(value, int | str) and str(value).strip().isdigit():
                image_id = int(value)
                break
        if image_id is None and isinstance(sample.meta.get("url"), str):
            if by_url is None:
                by_url = image_ids_by_url(ledger)
            image_id = by_url.get(sample.meta["url"])
        if image_id is None:
            stem = os.path.basename(sample.key)
            image_id = int(stem) if stem.isdigit() else None
        if image_id is None or image_id not in known:
            stats["unmatched"] = stats.get("unmatched", 0) + 1
            continue
        if image_id in done or image_id in seen:
            stats["already_done"] = stats.get("already_done", 0) + 1
            continue
        seen.add(image_id)
        yield image_id, sample.image or b""


def plan_embedding(
    ledger: Ledger,
    *,
    model: str = DEFAULT_MODEL,
    pretrained: str | None = DEFAULT_PRETRAINED,
    device: str = "auto",
    precision: str = "auto",
    tar_paths: Sequence[str] = (),
) -> EmbedPlan:
    """Load the model and list the images still to embed; writes nothing.

    Args:
        ledger: The ledger.
        model: open_clip model name or model config JSON path.
        pretrained: Pretrained tag or weights file path.
        device: ``auto``, ``cpu`` or ``cuda``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16`` (CUDA only).
        tar_paths: webdataset / img2dataset tar shards to read instead of local files.

    Returns:
        The :class:`EmbedPlan`.

    Raises:
        StageError: No images are ingested, or none has a local file and no tar is given.
        ModelError: The model, weights or device cannot be used.
    """
    from retrieval.encoder import load_encoder

    count = image_count(ledger)
    if count == 0:
        raise StageError(f"{ledger.path}: no ingested images; run 'turk ingest METADATA' first")
    if not tar_paths and image_count(ledger, with_file=True) == 0:
        raise StageError(
            f"{ledger.path}: none of the {count} images has a local file; ingest with "
            "an image folder or pass --tar SHARDS"
        )
    encoder = load_encoder(model, pretrained, device=device, precision=precision)
    folder = ledger.embeddings_dir / encoder.slug
    done, next_shard = _done_ids(ledger, encoder.slug)
    stats: dict[str, int] = {}
    total: int | None
    if tar_paths:
        items: Iterator[tuple[int, ImageSource]] = _tar_items(ledger, tar_paths, done, stats)
        total = None
        already = 0
    else:
        rows = local_image_files(ledger)
        pending = [(i, p) for i, p in rows if i not in done]
        already = len(rows) - len(pending)
        total = len(pending)
        items = iter(pending)
    settings = {
        "model": model,
        "pretrained": pretrained,
        "slug": encoder.slug,
        "device": encoder.device,
        "tar": list(tar_paths),
    }
    return EmbedPlan(encoder, folder, items, total, already, next_shard, settings, stats)


def run_embedding(
    ledger: Ledger,
    plan: EmbedPlan,
    *,
    batch_size: int = 256,
    workers: int = 2,
    shard_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    max_shards: int | None = None,
) -> EmbedReport:
    """Embed the planned images, registering each shard as soon as it is complete.

    Args:
        ledger: The ledger.
        plan: From :func:`plan_embedding`.
        batch_size: Images per encoder call.
        workers: CPU decode processes (on CUDA: file reading, four threads each).
        shard_size: Images per shard (default :data:`retrieval.embed.DEFAULT_SHARD_SIZE`).
        on_progress: Called with the number of images just processed.
        max_shards: Stop after this many new shards.

    Returns:
        The :class:`EmbedReport`.
    """
    from retrieval.embed import DEFAULT_SHARD_SIZE, embed_images

    encoder = plan.encoder
    root = ledger.root

    def register(result: ShardResult) -> None:
        files = result.files
        with ledger.conn:
            ledger.conn.execute(
                "INSERT OR REPLACE INTO embedding_shards (slug, shard, model, pretrained, path, "
                "ids_path, count, dim, checksum, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    encoder.slug,
                    files.index,
                    encoder.model_arg,
                    encoder.pretrained,
                    str(files.vectors_path.relative_to(root)),
                    str(files.ids_path.relative_to(root)),
                    files.count,
                    files.dim,
                    files.checksum,
                    utc_now(),
                ),
            )
            ledger.conn.executemany(
                "INSERT OR REPLACE INTO embedding_failures (image_id, slug, model, shard, reason) "
                "VALUES (?,?,?,?,?)",
                [
                    (image_id, encoder.slug, encoder.model_arg, files.index, reason)
                    for image_id, reason in result.failures
                ],
            )
        run.add("shards")
        run.add("images", files.count)
        run.add("failed", len(result.failures))

    settings = {**plan.settings, "batch_size": batch_size, "workers": workers}
    with ledger.run("embed", settings) as run:
        summary = embed_images(
            plan.items,
            encoder,
            plan.folder,
            first_shard=plan.next_shard,
            shard_size=shard_size or DEFAULT_SHARD_SIZE,
            batch_size=batch_size,
            workers=workers,
            on_shard=register,
            on_progress=on_progress,
            max_shards=max_shards,
        )
        already = plan.already_done + plan.tar_stats.get("already_done", 0)
        run.add("already_done", already)
    return EmbedReport(
        slug=encoder.slug,
        device=encoder.device,
        shards=len(summary.shards),
        images=summary.images,
        failed=summary.failed,
        already_done=already,
        tar_unmatched=plan.tar_stats.get("unmatched", 0),
        seconds=summary.seconds,
        stopped_early=summary.stopped_early,
    )


def load_embeddings(ledger: Ledger, slug: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(ids, vectors)`` of every registered shard of a model (vectors mmapped).

    Args:
        ledger: The ledger.
        slug: Model slug.

    Yields:
        One pair per shard, in shard order.
    """
    for shard in registered_shards(ledger, slug):
        yield read_shard(shard.vectors_path, shard.ids_path, shard.count)
