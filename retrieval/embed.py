"""The embedding pipeline: images in, L2-normalised float16 vectors out, in shards.

Two decode paths feed the same encoder loop:

- CPU: worker processes decode with PIL (:mod:`retrieval.decode`) a run of images at a
  time; a bounded window of runs is in flight, so memory stays flat whatever the size of
  the collection, and the main process encodes while the workers decode.
- CUDA: reader threads load the encoded bytes; JPEGs are decoded in batches by nvJPEG
  (``torchvision.io.decode_jpeg(device='cuda')``), centre-cropped, resized and
  normalised on the GPU; only the compressed bytes cross PCIe. What nvJPEG cannot read
  (PNG, CMYK, odd JPEGs) falls back to PIL, image by image.

Images are grouped into shards of ``shard_size`` in input order; each finished shard is
written atomically and handed to ``on_shard`` (which registers it), so an interrupted
run loses at most the shard in progress. Images that cannot be read are reported with a
reason in their shard's result and never stop the run.
"""

from __future__ import annotations

import collections
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.decode import DecodedBatch, ImageSource, decode_task, decode_to_square
from retrieval.decode import failure_reason as _failure_reason
from retrieval.shards import ShardFiles, write_shard

if TYPE_CHECKING:
    from retrieval.encoder import ClipEncoder

DEFAULT_SHARD_SIZE = 10_000
"""Images per shard (the most an interrupted run can lose)."""


@dataclass
class ShardResult:
    """A finished shard: its files and the images of its slice that failed.

    Attributes:
        files: The written shard.
        failures: ``(image_id, reason)`` of images that could not be embedded.
    """

    files: ShardFiles
    failures: list[tuple[int, str]]


@dataclass
class EmbedSummary:
    """What :func:`embed_images` did.

    Attributes:
        shards: Results of the shards written, in order.
        images: Images embedded.
        failed: Images recorded as failures.
        seconds: Wall time.
        stopped_early: True when ``max_shards`` stopped the run before the input ended.
    """

    shards: list[ShardResult] = field(default_factory=list)
    images: int = 0
    failed: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def images_per_second(self) -> float:
        """Images (embedded + failed) per second of wall time."""
        return (self.images + self.failed) / self.seconds if self.seconds > 0 else 0.0


Task = tuple[int, list[tuple[int, ImageSource]]]
"""``(shard sequence number, run of (image_id, source))``."""


def _tasks(
    items: Iterable[tuple[int, ImageSource]], shard_size: int, task_size: int
) -> Iterator[Task]:
    iterator = iter(items)
    seq = 0
    while True:
        left = shard_size
        emitted = False
        while left > 0:
            run = list(islice(iterator, min(task_size, left)))
            if not run:
                break
            emitted = True
            left -= len(run)
            yield seq, run
        if not emitted or left > 0:
            return
        seq += 1


Decoded = tuple[np.ndarray, Any, list[tuple[int, str]], int]
"""``(ids, pixels, failures, images in the run)`` of one decoded run."""


def _unpack(batch: DecodedBatch) -> Decoded:
    return batch.ids, batch.pixels, batch.failures, batch.count


def _cpu_stream(tasks: Iterator[Task], size: int, workers: int) -> Iterator[tuple[int, Decoded]]:
    if workers <= 0:
        for seq, run in tasks:
            yield seq, _unpack(decode_task(run, size))
        return
    context = multiprocessing.get_context("fork")
    window = max(4, 3 * workers)
    with context.Pool(workers) as pool:
        pending: collections.deque[tuple[int, Any]] = collections.deque()
        for seq, run in tasks:
            pending.append((seq, pool.apply_async(decode_task, (run, size))))
            if len(pending) >= window:
                done_seq, result = pending.popleft()
                yield done_seq, _unpack(result.get())
        while pending:
            done_seq, result = pending.popleft()
            yield done_seq, _unpack(result.get())


def _read_source(source: ImageSource) -> bytes | BaseException:
    if isinstance(source, bytes):
        return source
    try:
        with open(source, "rb") as fh:
            return fh.read()
    except OSError as exc:
        return exc


_JPEG_MAGIC = b"\xff\xd8\xff"


def _gpu_decode_run(
    run: list[tuple[int, ImageSource]],
    datas: list[bytes | BaseException],
    size: int,
    device: str,
) -> tuple[np.ndarray, Any, list[tuple[int, str]]]:
    """Decode a run on the GPU; returns ids, uint8 (n,3,S,S) CUDA tensor, failures."""
    import torch
    import torch.nn.functional as F
    from torchvision.io import ImageReadMode, decode_jpeg

    failures: list[tuple[int, str]] = []
    decoded: dict[int, Any] = {}
    jpeg_positions: list[int] = []
    cpu_positions: list[int] = []
    for pos, ((image_id, source), data) in enumerate(zip(run, datas, strict=True)):
        if isinstance(data, BaseException):
            failures.append((int(image_id), _failure_reason(source, data)))
        elif data[:3] == _JPEG_MAGIC:
            jpeg_positions.append(pos)
        else:
            cpu_positions.append(pos)
    if jpeg_positions:
        tensors = [
            torch.frombuffer(bytearray(datas[p]), dtype=torch.uint8)  # type: ignore[arg-type]
            for p in jpeg_positions
        ]
        try:
            images = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device)
            decoded.update(zip(jpeg_positions, images, strict=True))
        except RuntimeError:
            # One bad image fails the batch: retry one by one, PIL for what nvJPEG refuses.
            for p, tensor in zip(jpeg_positions, tensors, strict=True):
                try:
                    decoded[p] = decode_jpeg(tensor, mode=ImageReadMode.RGB, device=device)
                except RuntimeError:
                    cpu_positions.append(p)
    squares: dict[int, Any] = {}
    for p in sorted(cpu_positions):
        image_id, source = run[p]
        data = datas[p]
        try:
            array = decode_to_square(data if isinstance(data, bytes) else source, size)
        except (OSError, ValueError, SyntaxError) as exc:
            failures.append((int(image_id), _failure_reason(source, exc)))
            continue
        squares[p] = torch.from_numpy(array.copy()).to(device).permute(2, 0, 1)
    # Centre square of each image, resized in groups of equal shape (one kernel per group).
    by_shape: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for p, image in decoded.items():
        height, width = int(image.shape[1]), int(image.shape[2])
        side = min(height, width)
        if side < 1:
            failures.append((int(run[p][0]), "corrupt image: empty picture"))
            continue
        by_shape[(height, width)].append(p)
    for (height, width), positions in by_shape.items():
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        batch = torch.stack([decoded[p] for p in positions])[
            :, :, top : top + side, left : left + side
        ]
        if side != size:
            batch = F.interpolate(batch.float(), size=(size, size), mode="bicubic", antialias=True)
            batch = batch.round_().clamp_(0, 255).to(torch.uint8)
        for p, square in zip(positions, batch, strict=True):
            squares[p] = square
    order = sorted(squares)
    ids = np.asarray([run[p][0] for p in order], dtype=np.int64)
    if order:
        pixels = torch.stack([squares[p] for p in order])
    else:
        pixels = torch.zeros((0, 3, size, size), dtype=torch.uint8, device=device)
    failures.sort(key=lambda f: f[0])
    return ids, pixels, failures


def _gpu_stream(
    tasks: Iterator[Task], size: int, device: str, readers: int
) -> Iterator[tuple[int, Decoded]]:
    import torch

    # Reader threads load bytes; one decode thread runs nvJPEG and the resizes on its own
    # CUDA stream, so decoding batch i+1 overlaps encoding batch i on the main stream.
    decode_stream = torch.cuda.Stream(device=device)

    def read(run: list[tuple[int, ImageSource]]) -> list[bytes | BaseException]:
        return [_read_source(source) for _, source in run]

    def decode(
        run: list[tuple[int, ImageSource]], data: Future[list[bytes | BaseException]]
    ) -> tuple[Decoded, Any]:
        with torch.cuda.stream(decode_stream):
            ids, pixels, failures = _gpu_decode_run(run, data.result(), size, device)
            done = torch.cuda.Event()
            done.record(decode_stream)
        return (ids, pixels, failures, len(run)), done

    with (
        ThreadPoolExecutor(max(1, readers)) as read_pool,
        ThreadPoolExecutor(1) as decode_pool,
    ):
        pending: collections.deque[tuple[int, Future[tuple[Decoded, Any]]]] = collections.deque()

        def drain_one() -> tuple[int, Decoded]:
            seq, future = pending.popleft()
            decoded, done = future.result()
            consumer = torch.cuda.current_stream(device)
            consumer.wait_event(done)
            decoded[1].record_stream(consumer)
            return seq, decoded

        for seq, run in tasks:
            data = read_pool.submit(read, run)
            pending.append((seq, decode_pool.submit(decode, run, data)))
            if len(pending) >= 3:
                yield drain_one()
        while pending:
            yield drain_one()


def embed_images(
    items: Iterable[tuple[int, ImageSource]],
    encoder: ClipEncoder,
    out_dir: Path,
    *,
    first_shard: int = 0,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = 256,
    workers: int = 2,
    on_shard: Callable[[ShardResult], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    max_shards: int | None = None,
) -> EmbedSummary:
    """Embed images into shards of L2-normalised float16 vectors.

    Args:
        items: ``(image_id, source)`` in the order to embed; a source is a file path or
            the encoded bytes. Read lazily.
        encoder: The loaded :class:`~retrieval.encoder.ClipEncoder`; its device picks
            the decode path (nvJPEG on CUDA, PIL worker processes on CPU).
        out_dir: The model's embeddings folder.
        first_shard: Number of the first shard written.
        shard_size: Images per shard (embedded + failed).
        batch_size: Images per encoder call.
        workers: CPU decode processes (0 decodes in this process); on CUDA, the number
            of file-reading threads.
        on_shard: Called with each shard once its files are complete (register it
            there); an exception from it stops the run after that shard.
        on_progress: Called with the number of images just processed.
        max_shards: Stop after this many shards (for partial runs).

    Returns:
        The :class:`EmbedSummary`.
    """
    import torch

    started = time.perf_counter()
    summary = EmbedSummary()
    size = encoder.image_size
    on_gpu = encoder.device.startswith("cuda")
    task_size = batch_size if on_gpu else max(8, min(64, batch_size // max(1, workers)))
    tasks = _tasks(items, shard_size, task_size)

    shard_ids: list[np.ndarray] = []
    shard_vectors: list[np.ndarray] = []
    shard_failures: list[tuple[int, str]] = []
    batch_ids: list[np.ndarray] = []
    batch_pixels: list[Any] = []
    batch_count = 0
    current_seq = 0

    def encode_pending() -> None:
        nonlocal batch_count
        if not batch_ids:
            return
        if on_gpu:
            pixels = torch.cat(batch_pixels)
        else:
            array = np.concatenate(batch_pixels) if len(batch_pixels) > 1 else batch_pixels[0]
            pixels = torch.from_numpy(array).permute(0, 3, 1, 2)
        shard_vectors.append(encoder.encode_images(pixels))
        shard_ids.append(np.concatenate(batch_ids))
        batch_ids.clear()
        batch_pixels.clear()
        batch_count = 0

    def finish_shard(seq: int) -> None:
        encode_pending()
        ids = np.concatenate(shard_ids) if shard_ids else np.zeros(0, dtype=np.int64)
        vectors = (
            np.concatenate(shard_vectors)
            if shard_vectors
            else np.zeros((0, encoder.embed_dim), dtype=np.float16)
        )
        files = write_shard(out_dir, first_shard + seq, ids, vectors)
        result = ShardResult(files, sorted(shard_failures))
        summary.shards.append(result)
        summary.images += files.count
        summary.failed += len(shard_failures)
        shard_ids.clear()
        shard_vectors.clear()
        shard_failures.clear()
        if on_shard is not None:
            on_shard(result)

    stream: Iterator[tuple[int, Decoded]]
    if on_gpu:
        stream = _gpu_stream(tasks, size, encoder.device, readers=max(4, workers))
    else:
        stream = _cpu_stream(tasks, size, workers)
    seen_any = False
    try:
        for seq, decoded in stream:
            if seq != current_seq:
                finish_shard(current_seq)
                current_seq = seq
                if max_shards is not None and len(summary.shards) >= max_shards:
                    summary.stopped_early = True
                    break
            seen_any = True
            ids, pixels, failures, count = decoded
            shard_failures.extend(failures)
            if len(ids):
                batch_ids.append(ids)
                batch_pixels.append(pixels)
                batch_count += len(ids)
                if batch_count >= batch_size:
                    encode_pending()
            if on_progress is not None:
                on_progress(count)
        else:
            if seen_any:
                finish_shard(current_seq)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    summary.seconds = time.perf_counter() - started
    return summary


def decode_only(
    items: Iterable[tuple[int, ImageSource]], size: int, *, workers: int, task_size: int = 32
) -> int:
    """Decode images through the CPU path without encoding (the decode ceiling).

    Args:
        items: ``(image_id, source)`` pairs.
        size: Output square side.
        workers: Decode processes.
        task_size: Images per worker task.

    Returns:
        Number of images decoded.
    """
    done = 0
    for _, (ids, _pixels, _failures, _count) in _cpu_stream(
        _tasks(items, 1 << 62, task_size), size, workers
    ):
        done += len(ids)
    return done


__all__ = [
    "DEFAULT_SHARD_SIZE",
    "EmbedSummary",
    "ShardResult",
    "decode_only",
    "embed_images",
]
