"""``turk embed``: CLIP embeddings of the ledger's images, resumable, shard by shard.

Wires :mod:`retrieval.embed` to the ledger. Shards go to
``<ledger root>/embeddings/<model-slug>/``; each one is registered in
``embedding_shards`` (model, pretrained, count, checksum), together with the images of
its slice that failed (``embedding_failures``), in one transaction once its files are
complete. A rerun embeds only the images that are in no registered shard and have no
recorded failure, so a killed run loses at most the shard in progress.

Two engines run the same per-shard embedding (:func:`retrieval.embed.embed_images`):
``local`` (this process and its decode workers: :func:`plan_embedding`,
:func:`run_embedding`) and ``ray`` (one Ray Data task per shard on a Ray cluster, the
``turk[ray]`` extra: :func:`plan_ray_embedding`, :func:`run_ray_embedding`). Either way
only this process writes the ledger, through :func:`_register_shard`, shard by shard.
Shards go beside the ledger, or to the folder or fsspec URL given as ``out``; the ledger
stores paths inside its folder relative to it, anything else as given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.decode import ImageSource
from retrieval.modelnames import DEFAULT_MODEL, DEFAULT_PRETRAINED, model_slug
from retrieval.shards import (
    ShardLocation,
    as_location,
    files_checksum,
    is_url,
    join_location,
    read_shard,
    shard_exists,
)
from retrieval.tarshards import iter_tar_samples
from turk.collection.tables import image_count, image_ids, image_ids_by_url, local_image_files
from turk.errors import ConfigError, StageError
from turk.ledger import Ledger, utc_now

if TYPE_CHECKING:
    from retrieval.embed import ShardResult
    from retrieval.encoder import ClipEncoder
    from retrieval.rayembed import ShardTask

_ID_KEYS = ("id", "photo_id", "photoid", "image_id", "yfcc_id")

ENGINES = ("local", "ray")
"""Where ``turk embed`` runs: this process (``local``) or a Ray cluster (``ray``)."""

RAY_INSTALL_HINT = "--engine ray needs Ray Data, which is not installed: pip install 'turk[ray]'"
"""The one line printed when the ``ray`` engine is asked for without the extra."""


@dataclass(frozen=True)
class RegisteredShard:
    """A row of ``embedding_shards``, with absolute paths."""

    shard: int
    vectors_path: ShardLocation
    ids_path: ShardLocation
    count: int
    dim: int
    checksum: str


@dataclass
class EmbedPlan:
    """What ``turk embed`` is about to do (model loaded, work listed, nothing written).

    Attributes:
        encoder: The loaded encoder.
        folder: The model's embeddings folder (a path, or an fsspec URL).
        items: ``(image_id, source)`` still to embed (lazy for tar shards).
        total: Number of items when known (local files), else None.
        already_done: Images already in registered shards or recorded as failed.
        next_shard: Number of the first new shard.
        settings: Settings recorded with the run.
    """

    encoder: ClipEncoder
    folder: ShardLocation
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
        RegisteredShard(
            int(r[0]), _resolve(ledger.root, r[1]), _resolve(ledger.root, r[2]), r[3], r[4], r[5]
        )
        for r in rows
    ]


def _resolve(root: Path, stored: str) -> ShardLocation:
    """A stored shard path as a location: URLs as they are, paths from the ledger root."""
    location = as_location(stored)
    return location if is_url(location) else root / location


def _stored(root: Path, location: ShardLocation) -> str:
    """How the ledger stores a shard file: relative inside its folder, else as given."""
    if is_url(location):
        return str(location)
    path = Path(location)
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _embeddings_folder(ledger: Ledger, slug: str, out: str | None) -> ShardLocation:
    """The model's shard folder: beside the ledger, or under ``out`` (a folder or URL)."""
    if out is None:
        return ledger.embeddings_dir / slug
    base = as_location(out)
    if not is_url(base):
        base = Path(os.path.expanduser(str(base))).resolve()
    return join_location(base, slug)


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


def _done_ids(ledger: Ledger, slug: str, *, verify: bool = False) -> tuple[set[int], int]:
    """Images already embedded or failed, and the next shard number.

    ``verify`` also recomputes each registered shard's checksum from its files: the
    ``ray`` engine runs a task at least once, and a repeated task may rewrite a shard
    after it was registered; a shard whose files no longer match is embedded again.
    """
    done: set[int] = set()
    stale: list[int] = []
    max_shard = -1
    for shard in registered_shards(ledger, slug):
        max_shard = max(max_shard, shard.shard)
        if not shard_exists(shard.vectors_path, shard.ids_path) or (
            verify and files_checksum(shard.vectors_path, shard.ids_path) != shard.checksum
        ):
            stale.append(shard.shard)
            continue
        ids, _ = read_shard(shard.vectors_path, shard.ids_path, shard.count)
        done.update(ids.tolist())
    if stale:
        # Files removed or changed by hand: forget them so their images are embedded again.
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
    out: str | None = None,
) -> EmbedPlan:
    """Load the model and list the images still to embed; writes nothing.

    Args:
        ledger: The ledger.
        model: open_clip model name or model config JSON path.
        pretrained: Pretrained tag or weights file path.
        device: ``auto``, ``cpu`` or ``cuda``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16`` (CUDA only).
        tar_paths: webdataset / img2dataset tar shards to read instead of local files.
        out: Folder or fsspec URL for the shards (default: ``embeddings/`` beside the
            ledger); the model's folder is made inside it.

    Returns:
        The :class:`EmbedPlan`.

    Raises:
        StageError: No images are ingested, or none has a local file and no tar is given.
        ModelError: The model, weights or device cannot be used.
    """
    from retrieval.encoder import load_encoder

    _check_images(ledger, tar_paths)
    encoder = load_encoder(model, pretrained, device=device, precision=precision)
    folder = _embeddings_folder(ledger, encoder.slug, out)
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


def _check_images(ledger: Ledger, tar_paths: Sequence[str]) -> None:
    count = image_count(ledger)
    if count == 0:
        raise StageError(f"{ledger.path}: no ingested images; run 'turk ingest METADATA' first")
    if not tar_paths and image_count(ledger, with_file=True) == 0:
        raise StageError(
            f"{ledger.path}: none of the {count} images has a local file; ingest with "
            "an image folder or pass --tar SHARDS"
        )


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

    def register(result: ShardResult) -> None:
        if _register_shard(ledger, encoder.slug, encoder.model_arg, encoder.pretrained, result):
            run.add("shards")
            run.add("images", result.files.count)
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


@dataclass
class RayEmbedPlan:
    """What ``turk embed --engine ray`` is about to do (no model loaded, nothing written).

    Attributes:
        model: open_clip model name or config JSON path (absolute when a file).
        pretrained: Pretrained tag, weights file path, or None.
        slug: The embeddings folder name.
        folder: The model's embeddings folder (path or fsspec URL) the workers write.
        tasks: One :class:`~retrieval.rayembed.ShardTask` per shard still to embed, in
            shard order.
        total: Images in the tasks.
        already_done: Images already in registered shards or recorded as failed.
        settings: Settings recorded with the run.
    """

    model: str
    pretrained: str | None
    slug: str
    folder: ShardLocation
    tasks: list[ShardTask]
    total: int
    already_done: int
    settings: dict[str, Any]


def _absolute(name: str | None) -> str | None:
    """A model or weights file named relative to here, made absolute for the workers."""
    if name is None or is_url(name) or not os.path.exists(name):
        return name
    return str(Path(name).resolve())


def plan_ray_embedding(
    ledger: Ledger,
    *,
    model: str = DEFAULT_MODEL,
    pretrained: str | None = DEFAULT_PRETRAINED,
    shard_size: int | None = None,
    out: str | None = None,
    tar_paths: Sequence[str] = (),
) -> RayEmbedPlan:
    """List the shards still to embed on Ray, in turk's shard order; loads no model.

    The same images as :func:`plan_embedding` would embed, cut into the same shards,
    numbered from the same next shard. Registered shards whose files no longer match
    their checksum are forgotten and embedded again.

    Args:
        ledger: The ledger.
        model: open_clip model name or config JSON path.
        pretrained: Pretrained tag, weights file path, or None.
        shard_size: Images per shard (default :data:`retrieval.embed.DEFAULT_SHARD_SIZE`).
        out: Folder or fsspec URL for the shards, which every worker writes and this
            process reads (default: ``embeddings/`` beside the ledger, fine on one machine).
        tar_paths: Refused: tar shards are read by this process, not by the workers.

    Returns:
        The :class:`RayEmbedPlan`.

    Raises:
        ConfigError: Tar shards given with the Ray engine.
        StageError: No images are ingested, or none has a local file.
        ModelError: The model or its weights cannot be used (checked without loading).
    """
    from retrieval.embed import DEFAULT_SHARD_SIZE
    from retrieval.encoder import check_model
    from retrieval.rayembed import ShardTask

    if tar_paths:
        raise ConfigError(
            "--tar: the ray engine reads the ledger's local image files; embed tar "
            "shards with --engine local, or extract them to a folder every node can read"
        )
    _check_images(ledger, tar_paths)
    model_arg, weights = _absolute(model) or model, _absolute(pretrained)
    check_model(model_arg, weights)  # here, before any worker starts: the same message
    slug = model_slug(model_arg, weights)
    done, next_shard = _done_ids(ledger, slug, verify=True)
    rows = local_image_files(ledger)
    pending = [(i, p) for i, p in rows if i not in done]
    size = shard_size or DEFAULT_SHARD_SIZE
    tasks = [
        ShardTask(
            next_shard + k,
            [i for i, _ in pending[start : start + size]],
            [str(p) for _, p in pending[start : start + size]],
        )
        for k, start in enumerate(range(0, len(pending), size))
    ]
    folder = _embeddings_folder(ledger, slug, out)
    settings = {
        "model": model_arg,
        "pretrained": weights,
        "slug": slug,
        "engine": "ray",
        "out": str(folder),
        "shard_size": size,
    }
    return RayEmbedPlan(
        model_arg, weights, slug, folder, tasks, len(pending), len(rows) - len(pending), settings
    )


def run_ray_embedding(
    ledger: Ledger,
    plan: RayEmbedPlan,
    *,
    address: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 256,
    workers: int = 2,
    actors: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    max_shards: int | None = None,
    ray_options: dict[str, Any] | None = None,
) -> EmbedReport:
    """Embed the planned shards on a Ray cluster, registering each one as it arrives.

    Args:
        ledger: The ledger (written only here, by this process).
        plan: From :func:`plan_ray_embedding`.
        address: The cluster: ``auto``, ``ray://host:10001``, ``host:6379``, or None for
            Ray's default: ``$RAY_ADDRESS``, a cluster started here with ``ray start``,
            else a new local cluster of this machine's CPUs and GPUs.
        device: ``auto`` (CUDA when the cluster has GPUs), ``cpu`` or ``cuda``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16`` (CUDA only).
        batch_size: Images per encoder call.
        workers: File readers per GPU actor (four threads each).
        actors: Actor pool size (default: one per GPU, or one per CPU without GPUs).
        on_progress: Called with the images of each shard that arrives.
        max_shards: Queue only this many shards (for partial runs).
        ray_options: More ``ray.init`` options when this call starts the cluster.

    Returns:
        The :class:`EmbedReport`.

    Raises:
        StageError: Ray is not installed (:data:`RAY_INSTALL_HINT`).
        RetrievalError: A worker failed, or wrote shards this process cannot read.
    """
    import time

    from retrieval.embed import ShardResult
    from retrieval.rayembed import connect, embed_on_ray

    try:
        import ray.data  # noqa: F401  (the extra, checked before the run starts)
    except ImportError as exc:
        raise StageError(RAY_INSTALL_HINT) from exc
    tasks = plan.tasks if max_shards is None else plan.tasks[:max_shards]
    settings = {
        **plan.settings,
        "address": address,
        "device": device,
        "batch_size": batch_size,
        "workers": workers,
        "actors": actors,
    }
    images = failed = shards = 0

    def register(meta: Any) -> None:
        nonlocal images, failed, shards
        result = ShardResult(meta.files, meta.failures)
        if _register_shard(ledger, plan.slug, plan.model, plan.pretrained, result):
            shards += 1
            images += meta.files.count
            failed += len(meta.failures)
            run.add("shards")
            run.add("images", meta.files.count)
            run.add("failed", len(meta.failures))
        if on_progress is not None:
            on_progress(meta.files.count + len(meta.failures))

    with ledger.run("embed", settings) as run:
        started = time.perf_counter()
        with connect(address, **(ray_options or {})):
            used, shape = embed_on_ray(
                tasks,
                model=plan.model,
                pretrained=plan.pretrained,
                out_dir=plan.folder,
                device=device,
                precision=precision,
                batch_size=batch_size,
                workers=workers,
                actors=actors,
                on_shard=register,
            )
        seconds = time.perf_counter() - started
        run.add("already_done", plan.already_done)
        run.add("actors", shape.actors)
    return EmbedReport(
        slug=plan.slug,
        device=used,
        shards=shards,
        images=images,
        failed=failed,
        already_done=plan.already_done,
        tar_unmatched=0,
        seconds=seconds,
        stopped_early=len(tasks) < len(plan.tasks),
    )


def _register_shard(
    ledger: Ledger, slug: str, model: str, pretrained: str | None, result: ShardResult
) -> bool:
    """Register a finished shard and the failures of its slice, in one transaction.

    The one registration rule of both engines. A shard already registered with the
    same checksum is left as it is (a repeated Ray task hands it over again); any other
    replaces its row.

    Returns:
        True when the shard was registered now, False when it already was.
    """
    files = result.files
    row = ledger.conn.execute(
        "SELECT checksum FROM embedding_shards WHERE slug=? AND shard=?", (slug, files.index)
    ).fetchone()
    if row is not None and row[0] == files.checksum:
        return False
    root = ledger.root
    with ledger.conn:
        ledger.conn.execute(
            "INSERT OR REPLACE INTO embedding_shards (slug, shard, model, pretrained, path, "
            "ids_path, count, dim, checksum, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                slug,
                files.index,
                model,
                pretrained,
                _stored(root, files.vectors_path),
                _stored(root, files.ids_path),
                files.count,
                files.dim,
                files.checksum,
                utc_now(),
            ),
        )
        ledger.conn.executemany(
            "INSERT OR REPLACE INTO embedding_failures (image_id, slug, model, shard, reason) "
            "VALUES (?,?,?,?,?)",
            [(image_id, slug, model, files.index, reason) for image_id, reason in result.failures],
        )
    return True


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
