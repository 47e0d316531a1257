"""The embedding pipeline on Ray Data: one task per shard, run by actors that load the model once.

The driver cuts the work into shards (the caller's numbering and order) and hands them
to :func:`embed_on_ray`; a pool of :class:`ShardEmbedder` actors (Ray Data's
``map_batches`` with an ``ActorPoolStrategy``) loads the open_clip model once per actor
and runs :func:`retrieval.embed.embed_images` on each shard it is given, the very
function the in-process path runs (nvJPEG decode on CUDA, PIL on the CPU). Workers write
the shard files themselves, to a local path or any fsspec URL, and return only
metadata (:class:`ShardMeta`: shard, count, dim, checksum, failures); the driver
registers each one as it arrives, and checks first that it can see the files (a local
path on a cluster without shared storage is the usual mistake).

Ray Data runs a task at least once: a task retried after a lost actor writes its shard
again, to the same names, and the driver may be handed the same shard twice. The caller
makes registration idempotent (a shard whose checksum is already registered is skipped).

Ray is imported only inside the functions here, so importing this module is cheap and
``turk`` starts without Ray; the actor class pickles by reference, so the workers need
this package importable (installed on every node of a cluster).
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.errors import ModelError, RetrievalError
from retrieval.shards import ShardFiles, ShardLocation, as_location, shard_exists

__all__ = [
    "PoolShape",
    "ShardEmbedder",
    "ShardMeta",
    "ShardTask",
    "connect",
    "embed_on_ray",
    "pool_shape",
    "resolve_device",
]


@dataclass(frozen=True)
class ShardTask:
    """One shard to embed: its number and its images, in order.

    Attributes:
        index: Shard number.
        ids: Image ids.
        sources: Image file paths (as the workers can read them), one per id.
    """

    index: int
    ids: list[int]
    sources: list[str]


@dataclass(frozen=True)
class ShardMeta:
    """What a worker returns for a shard it wrote (never the vectors).

    Attributes:
        files: The written shard (paths or URLs, count, dim, checksum).
        failures: ``(image_id, reason)`` of the shard's images that could not be embedded.
        host: The machine that wrote it (named in errors).
    """

    files: ShardFiles
    failures: list[tuple[int, str]]
    host: str


@dataclass(frozen=True)
class PoolShape:
    """The actor pool: how many actors and what each one holds.

    Attributes:
        actors: Most actors at once.
        num_cpus: Logical CPUs each actor holds.
        num_gpus: GPUs each actor holds (1 on CUDA, else 0).
    """

    actors: int
    num_cpus: float
    num_gpus: int


def resolve_device(device: str, cluster_gpus: float) -> str:
    """The device the actors use, from ``auto|cpu|cuda`` and the cluster's GPUs.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``.
        cluster_gpus: GPUs the cluster has (``ray.cluster_resources()["GPU"]``).

    Returns:
        ``cuda`` or ``cpu``.

    Raises:
        ModelError: ``cuda`` asked for on a cluster without GPUs, or an unknown device.
    """
    if device == "auto":
        return "cuda" if cluster_gpus >= 1 else "cpu"
    if device == "cuda" and cluster_gpus < 1:
        raise ModelError(
            "--device cuda: the Ray cluster has no GPUs; start its nodes with GPUs "
            "(ray start --num-gpus N) or use --device cpu"
        )
    if device not in ("cpu", "cuda"):
        raise ModelError(f"--device {device!r}: use auto, cpu or cuda")
    return device


def pool_shape(
    device: str, cluster_cpus: float, cluster_gpus: float, actors: int | None = None
) -> PoolShape:
    """Size the actor pool so that it never holds every CPU slot of the cluster.

    GPU actors take one GPU each (one per GPU by default: an 8-GPU box runs 8). CPU
    actors default to one per CPU. Either way the pool holds at most the cluster's CPUs
    less one (half of them on a one-CPU cluster): the actors still use every core, but
    Ray keeps a slot for the tasks that feed them, which otherwise wait for ever.

    Args:
        device: ``cuda`` or ``cpu`` (from :func:`resolve_device`).
        cluster_cpus: CPUs of the cluster.
        cluster_gpus: GPUs of the cluster.
        actors: Actors asked for, or None for the default.

    Returns:
        The :class:`PoolShape`.

    Raises:
        ModelError: More GPU actors asked for than the cluster has GPUs (they would wait
            for ever), or a cluster without CPUs.
    """
    if cluster_cpus <= 0:
        raise ModelError("the Ray cluster has no CPUs; start its nodes with --num-cpus N")
    spare = cluster_cpus - 1 if cluster_cpus >= 2 else cluster_cpus / 2
    if device == "cuda":
        gpus = int(cluster_gpus)
        size = actors if actors is not None else gpus
        if size > gpus:
            raise ModelError(
                f"--actors {size}: each GPU actor takes one GPU and the Ray cluster has "
                f"{gpus}; use --actors {gpus} or fewer"
            )
        return PoolShape(size, min(1.0, spare / size), 1)
    size = actors if actors is not None else max(1, int(cluster_cpus))
    return PoolShape(size, min(1.0, spare / size), 0)


class ShardEmbedder:
    """The Ray Data UDF: loads the model once per actor, embeds whole shards.

    Args:
        model: open_clip model name or config JSON path.
        pretrained: Pretrained tag, weights file path, or None.
        device: ``cpu`` or ``cuda``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16``.
        out_dir: The model's embeddings folder (path or URL) as the workers see it.
        batch_size: Images per encoder call.
        workers: On CUDA, file readers (four threads each); CPU actors decode in their
            own process (the actors are the parallelism, and a Ray worker should not fork).
    """

    def __init__(
        self,
        model: str,
        pretrained: str | None,
        device: str,
        precision: str,
        out_dir: str,
        batch_size: int,
        workers: int,
    ) -> None:
        from retrieval.encoder import load_encoder

        self.encoder = load_encoder(model, pretrained, device=device, precision=precision)
        self.out_dir = as_location(out_dir)
        self.batch_size = batch_size
        self.workers = workers if self.encoder.device.startswith("cuda") else 0
        self.host = socket.gethostname()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """Embed every shard of a batch of tasks; returns one metadata row per shard."""
        from retrieval.embed import embed_images

        out: dict[str, list[Any]] = {"meta": []}
        for index, ids, sources in zip(batch["shard"], batch["ids"], batch["sources"], strict=True):
            items = list(zip(np.asarray(ids).tolist(), np.asarray(sources).tolist(), strict=True))
            summary = embed_images(
                items,
                self.encoder,
                self.out_dir,
                first_shard=int(index),
                shard_size=len(items),
                batch_size=self.batch_size,
                workers=self.workers,
            )
            (result,) = summary.shards
            files = result.files
            out["meta"].append(
                json.dumps(
                    {
                        "index": files.index,
                        "vectors": str(files.vectors_path),
                        "ids": str(files.ids_path),
                        "count": files.count,
                        "dim": files.dim,
                        "checksum": files.checksum,
                        "failures": result.failures,
                        "host": self.host,
                    }
                )
            )
        return out


def _meta(text: str) -> ShardMeta:
    raw = json.loads(text)
    files = ShardFiles(
        int(raw["index"]),
        as_location(raw["vectors"]),
        as_location(raw["ids"]),
        int(raw["count"]),
        int(raw["dim"]),
        str(raw["checksum"]),
    )
    failures = [(int(i), str(reason)) for i, reason in raw["failures"]]
    return ShardMeta(files, failures, str(raw["host"]))


@contextmanager
def connect(address: str | None = None, **init_options: Any) -> Iterator[Any]:
    """Connect to a Ray cluster for the block (a new local one when none is running).

    A process already connected (``ray.init`` done by the caller) keeps its
    connection, and it stays open after the block.

    Args:
        address: ``auto`` (the running cluster), ``ray://host:10001``, ``host:6379``,
            ``local`` (a new local cluster), or None (``$RAY_ADDRESS``, a cluster
            started on this machine with ``ray start``, else a new local cluster).
        **init_options: More ``ray.init`` options (``num_cpus``, ``_temp_dir``...).

    Yields:
        The ``ray`` module.

    Raises:
        ImportError: Ray is not installed.
        RetrievalError: No cluster answers at ``address``.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    options.update(init_options)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise RetrievalError(
            f"--address {address}: cannot reach a Ray cluster ({first}); start one with "
            "'ray start --head', or leave --address out for a local one"
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()


_OUR_ERROR = re.compile(r"^retrieval\.errors\.\w+: (.+)$", re.MULTILINE)


def _cause(exc: BaseException) -> BaseException:
    """The error a Ray task raised, out of the wrappers Ray puts around it.

    Ray's wrapper classes may subclass the task's error type too, so the innermost
    error of the chain is the one to report, not the first that matches; an actor that
    died in its constructor leaves only the text of its traceback, where this library's
    own error is looked up by name.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    innermost = exc
    ours: list[str] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        innermost = current
        ours += _OUR_ERROR.findall(str(current))
        nested = getattr(current, "cause", None)
        current = nested if isinstance(nested, BaseException) else current.__cause__
    if ours and not isinstance(innermost, RetrievalError):
        return RetrievalError(ours[-1].strip())
    return innermost


def embed_on_ray(
    tasks: Sequence[ShardTask],
    *,
    model: str,
    pretrained: str | None,
    out_dir: ShardLocation,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 256,
    workers: int = 2,
    actors: int | None = None,
    on_shard: Callable[[ShardMeta], None] | None = None,
) -> tuple[str, PoolShape]:
    """Embed shards on the connected Ray cluster, handing each one to ``on_shard`` as it ends.

    Call inside :func:`connect`. Tasks are queued in the order given, one per shard;
    results arrive as they finish (not necessarily in order).

    Args:
        tasks: The shards to embed.
        model: open_clip model name or config JSON path (as every worker can read it).
        pretrained: Pretrained tag, weights file path, or None.
        out_dir: The model's embeddings folder, as path or fsspec URL that the workers
            can write and the driver can read.
        device: ``auto``, ``cpu`` or ``cuda``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16``.
        batch_size: Images per encoder call.
        workers: File readers per GPU actor (four threads each).
        actors: Actor pool size (default: one per GPU on CUDA, one per CPU otherwise).
        on_shard: Called on the driver with each shard's :class:`ShardMeta` once the
            driver sees its files; an exception from it stops the run.

    Returns:
        The device the actors used, and the pool's shape.

    Raises:
        RetrievalError: A worker failed (its error, e.g. :class:`ModelError`), or wrote
            files the driver cannot see.
    """
    import ray
    import ray.data

    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    resolved = resolve_device(device, gpus)
    shape = pool_shape(resolved, float(resources.get("CPU", 0)), gpus, actors)
    if not tasks:
        return resolved, shape
    if shape.actors > len(tasks):  # an actor without a shard only loads the model
        shape = PoolShape(len(tasks), shape.num_cpus, shape.num_gpus)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # turk draws its own progress and reports errors in one line; Ray Data's logs of
    # the run stay in the session's log folder.
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("ray.data")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    items = [{"shard": t.index, "ids": t.ids, "sources": t.sources} for t in tasks]
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        ShardEmbedder,
        fn_constructor_kwargs={
            "model": model,
            "pretrained": pretrained,
            "device": resolved,
            "precision": precision,
            "out_dir": str(out_dir),
            "batch_size": batch_size,
            "workers": workers,
        },
        batch_size=1,
        num_cpus=shape.num_cpus,
        num_gpus=shape.num_gpus,
        compute=ray.data.ActorPoolStrategy(size=shape.actors),
    )
    rows = iter(dataset.iter_rows())
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except Exception as exc:
            cause = _cause(exc)
            if isinstance(cause, RetrievalError):
                raise cause from None
            first = " ".join(str(cause).split())[:300]
            raise RetrievalError(
                f"embedding on Ray failed: {type(cause).__name__}: {first}"
            ) from exc
        meta = _meta(row["meta"])
        files = meta.files
        if not shard_exists(files.vectors_path, files.ids_path):
            raise RetrievalError(
                f"{files.vectors_path}: shard {files.index} was written by a worker on "
                f"{meta.host} but cannot be read here ({socket.gethostname()}); on a "
                "cluster, write shards to storage every node shares (a shared folder, or "
                "a URL such as s3://bucket/embeddings)"
            )
        if on_shard is not None:
            on_shard(meta)
    return resolved, shape
