"""The embedding pipeline: images in, L2-normalised float16 vectors out, in shards.

Two decode paths feed the same encoder loop:

- CPU: worker processes decode with PIL (:mod:`retrieval.decode`) a run of images at a
  time; a bounded window of runs is in flight, so memory stays flat whatever the size of
  the collection, and the main process encodes while the workers decode.
- CUDA: reader threads load the encoded bytes of the next runs; one decode thread
  decodes each run as one batch with nvJPEG (``torchvision.io.decode_jpeg(device=
  'cuda')``, the hardware JPEG engines where the GPU has them), then centre-crops and
  resizes every group of equal squares with two matrix products, all on a CUDA stream
  of its own; only the compressed bytes cross PCIe. The main thread queues each batch
  on the encoder without waiting for it (a few batches in flight) and copies the
  vectors off the GPU once per shard, so reading, decoding and encoding overlap. What
  nvJPEG cannot read (PNG, CMYK, odd JPEGs) falls back to PIL, image by image.

Images are grouped into shards of ``shard_size`` in input order; each finished shard is
written atomically and handed to ``on_shard`` (which registers it), so an interrupted
run loses at most the shard in progress. Images that cannot be read are reported with a
reason in their shard's result and never stop the run.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.decode import DecodedBatch, ImageSource, decode_task, decode_to_square
from retrieval.decode import failure_reason as _failure_reason
from retrieval.processes import available_cpus, ignore_interrupts
from retrieval.shards import ShardFiles, ShardLocation, write_shard

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


@dataclass
class StageTimes:
    """Busy seconds of each stage of an :func:`embed_images` run.

    Stages overlap, so the figures add up to more than the wall time; the largest one
    is the stage that bounds the throughput.

    Attributes:
        read: Reading files, summed over the reader threads (batched path).
        decode: Decoding: the decode thread's time in nvJPEG and PIL fallbacks
            (batched path), or PIL in this process (CPU path without workers).
        preprocess: Crop and resize: GPU seconds (CUDA events) on CUDA, wall seconds
            on the batched path on the CPU.
        encode: The encoder: GPU seconds (CUDA events) on CUDA, wall seconds on CPU.
        write: Copying the vectors off the device and writing the shards.
        wait: The encoding loop waiting for decoded batches.
    """

    read: float = 0.0
    decode: float = 0.0
    preprocess: float = 0.0
    encode: float = 0.0
    write: float = 0.0
    wait: float = 0.0


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


def _cpu_stream(
    tasks: Iterator[Task], size: int, workers: int, timings: StageTimes | None = None
) -> Iterator[tuple[int, Decoded]]:
    if workers <= 0:
        for seq, run in tasks:
            started = time.perf_counter()
            decoded = _unpack(decode_task(run, size))
            if timings is not None:
                timings.decode += time.perf_counter() - started
            yield seq, decoded
        return
    context = multiprocessing.get_context("fork")
    window = max(4, 3 * workers)

    def get(result: Any) -> Decoded:
        started = time.perf_counter()
        decoded = _unpack(result.get())
        if timings is not None:
            timings.wait += time.perf_counter() - started
        return decoded

    with context.Pool(workers, initializer=ignore_interrupts) as pool:
        pending: collections.deque[tuple[int, Any]] = collections.deque()
        for seq, run in tasks:
            pending.append((seq, pool.apply_async(decode_task, (run, size))))
            if len(pending) >= window:
                done_seq, result = pending.popleft()
                yield done_seq, get(result)
        while pending:
            done_seq, result = pending.popleft()
            yield done_seq, get(result)


_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_READ_CHUNK = 32
"""Files one reader-thread task loads: a run is read by several threads at once."""
_READ_FIRST = 1 << 17
"""Bytes of the first read of a file (most JPEGs fit; larger files take more reads)."""
_READERS_PER_WORKER = 4
"""Reader threads per ``workers`` on the batched path: they mostly wait on the disk."""
_RESIZE_ELEMENTS = 1 << 28
"""Most pixel values resized in one matrix product (bounds the device memory it takes)."""
_PREFETCH_RUNS = 6
"""Runs read and decoded ahead of the encoder."""
_ENCODES_IN_FLIGHT = 2
"""Encoder batches queued on the GPU before the loop waits for the oldest."""


def _read_buffer(source: ImageSource) -> bytearray | BaseException:
    """The encoded bytes of an image in a writable buffer (torch wraps it without a copy).

    Three system calls a file (open, read, close): on network and virtual file systems
    each one is a round trip, and they, not the bytes, bound the reading rate.
    """
    if isinstance(source, bytes | bytearray):
        return bytearray(source)
    try:
        fd = os.open(source, os.O_RDONLY)
    except OSError as exc:
        return exc
    try:
        buffer = bytearray(_READ_FIRST)
        total = got = os.readv(fd, [buffer])
        while got and total == len(buffer):
            buffer.extend(bytes(len(buffer)))
            with memoryview(buffer) as view:
                got = os.readv(fd, [view[total:]])
            total += got
        del buffer[total:]
        return buffer
    except OSError as exc:
        return exc
    finally:
        os.close(fd)


def _read_chunk(
    chunk: list[tuple[int, ImageSource]],
) -> tuple[list[bytearray | BaseException], float]:
    started = time.perf_counter()
    return [_read_buffer(source) for _, source in chunk], time.perf_counter() - started


def resize_weights(side: int, size: int) -> Any:
    """Matrix of the antialiased bicubic resize of ``side`` samples to ``size`` samples.

    ``W @ X @ W.T`` of a ``side`` x ``side`` picture ``X`` equals
    ``F.interpolate(X, (size, size), mode="bicubic", antialias=True)``: the weights are
    read off that very function (applied to unit vectors), so the two agree, and a
    batch of equal squares resizes as two matrix products on the tensor cores instead
    of a kernel that walks every output pixel through every picture of the batch.

    Args:
        side: Input length.
        size: Output length.

    Returns:
        ``float64`` CPU tensor ``(size, side)``.
    """
    import torch
    import torch.nn.functional as F

    blocks = []
    for start in range(0, side, 512):
        count = min(512, side - start)
        basis = torch.zeros((count, 1, 2, side), dtype=torch.float64)
        rows = torch.arange(count)
        basis[rows, 0, :, start + rows] = 1.0
        out = F.interpolate(
            basis, size=(2, size), mode="bicubic", antialias=True, align_corners=False
        )
        blocks.append(out[:, 0, 0, :])
    return torch.cat(blocks).T.contiguous()


def resize_squares(squares: Any, weights: Any) -> Any:
    """Resize a batch of equal uint8 squares with a :func:`resize_weights` matrix.

    Args:
        squares: ``uint8`` tensor ``(n, 3, side, side)``.
        weights: ``(size, side)`` tensor in the compute dtype, on the squares' device.

    Returns:
        ``uint8`` tensor ``(n, 3, size, size)``.
    """
    import torch

    if weights.shape[0] == weights.shape[1]:
        return squares
    x = squares.to(weights.dtype)
    x = torch.matmul(x, weights.T)
    x = torch.matmul(weights, x)
    return x.round_().clamp_(0, 255).to(torch.uint8)


class _BatchedDecoder:
    """Decodes runs with torchvision's batched ``decode_jpeg`` and squares them.

    On CUDA this is nvJPEG (the hardware JPEG engines where the GPU has them) on a
    stream of its own; on the CPU, libjpeg through the same calls, which lets the path
    be checked on machines without a GPU. What ``decode_jpeg`` refuses goes to PIL.
    """

    def __init__(self, size: int, device: str, timings: StageTimes | None) -> None:
        import torch

        self.size = size
        self.device = device
        self.on_cuda = device.startswith("cuda")
        self.stream = torch.cuda.Stream(device=device) if self.on_cuda else None
        # uint8 values are exact in float16; the weights' rounding moves a pixel by at
        # most one level, far below what PIL vs nvJPEG decoding already differs by.
        self.dtype = torch.float16 if self.on_cuda else torch.float32
        self.weights: dict[int, Any] = {}
        self.timings = timings
        self.preprocess_events: list[tuple[Any, Any]] = []

    def _weights(self, side: int) -> Any:
        if side not in self.weights:
            matrix = resize_weights(side, self.size)
            self.weights[side] = matrix.to(device=self.device, dtype=self.dtype)
        return self.weights[side]

    def _decode_jpegs(
        self, positions: list[int], tensors: list[Any], out: dict[int, Any]
    ) -> list[int]:
        """Decode into ``out``; returns the positions decode_jpeg refused."""
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            images = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            # One bad image fails the whole call: halve until it is alone.
            if len(tensors) == 1:
                return positions
            half = len(tensors) // 2
            return self._decode_jpegs(positions[:half], tensors[:half], out) + self._decode_jpegs(
                positions[half:], tensors[half:], out
            )
        out.update(zip(positions, images, strict=True))
        return []

    def decode(
        self, run: list[tuple[int, ImageSource]], chunks: list[Future[Any]]
    ) -> tuple[Decoded, Any]:
        """Decode one run; returns its :data:`Decoded` and the event that marks it ready."""
        import contextlib

        import torch

        datas: list[bytearray | BaseException] = []
        read_seconds = 0.0
        for chunk in chunks:
            part, seconds = chunk.result()
            datas.extend(part)
            read_seconds += seconds
        context = (
            torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()
        )
        with context:
            started = time.perf_counter()
            failures: list[tuple[int, str]] = []
            jpeg_positions: list[int] = []
            other_positions: list[int] = []
            for pos, ((image_id, source), data) in enumerate(zip(run, datas, strict=True)):
                if isinstance(data, BaseException):
                    failures.append((int(image_id), _failure_reason(source, data)))
                elif data[:3] == _JPEG_MAGIC and data[-2:] == _JPEG_END:
                    # A JPEG without its end marker was cut short: nvJPEG may decode
                    # it silently with a grey tail, so PIL decides, as on the CPU.
                    jpeg_positions.append(pos)
                else:
                    other_positions.append(pos)
            decoded: dict[int, Any] = {}
            if jpeg_positions:
                tensors = [torch.frombuffer(datas[p], dtype=torch.uint8) for p in jpeg_positions]
                other_positions += self._decode_jpegs(jpeg_positions, tensors, decoded)
            squares: dict[int, Any] = {}
            for p in sorted(other_positions):
                image_id, source = run[p]
                data = datas[p]
                try:
                    array = decode_to_square(
                        bytes(data) if isinstance(data, bytearray) else source, self.size
                    )
                except (OSError, ValueError, SyntaxError) as exc:
                    failures.append((int(image_id), _failure_reason(source, exc)))
                    continue
                squares[p] = torch.from_numpy(array.copy()).permute(2, 0, 1)
            decoded_at = time.perf_counter()
            pixels, ok = self._squares(run, decoded, squares, failures)
            done = None
            if self.stream is not None:
                done = torch.cuda.Event()
                done.record(self.stream)
        if self.timings is not None:
            self.timings.read += read_seconds
            self.timings.decode += decoded_at - started
            if self.stream is None:
                self.timings.preprocess += time.perf_counter() - decoded_at
        ids = np.asarray([run[p][0] for p in ok], dtype=np.int64)
        failures.sort(key=lambda f: f[0])
        return (ids, pixels, failures, len(run)), done

    def _squares(
        self,
        run: list[tuple[int, ImageSource]],
        decoded: dict[int, Any],
        squares: dict[int, Any],
        failures: list[tuple[int, str]],
    ) -> tuple[Any, list[int]]:
        """Centre squares at the encoder's size, in run order; returns them and their positions."""
        import torch

        timing = self.timings is not None and self.stream is not None
        if timing:
            begin = torch.cuda.Event(enable_timing=True)
            begin.record(self.stream)
        by_side: dict[int, list[int]] = collections.defaultdict(list)
        for p, image in decoded.items():
            side = min(int(image.shape[1]), int(image.shape[2]))
            if side < 1:
                failures.append((int(run[p][0]), "corrupt image: empty picture"))
                continue
            by_side[side].append(p)
        ok = sorted([p for group in by_side.values() for p in group] + list(squares))
        row_of = {p: row for row, p in enumerate(ok)}
        pixels = torch.empty(
            (len(ok), 3, self.size, self.size), dtype=torch.uint8, device=self.device
        )
        for side, positions in by_side.items():
            positions.sort()
            weights = self._weights(side)
            step = max(1, _RESIZE_ELEMENTS // (3 * side * side))
            for first in range(0, len(positions), step):
                chunk = positions[first : first + step]
                crops = []
                for p in chunk:
                    image = decoded[p]
                    height, width = int(image.shape[1]), int(image.shape[2])
                    top, left = (height - side) // 2, (width - side) // 2
                    crops.append(image[:, top : top + side, left : left + side])
                self._place(
                    pixels, [row_of[p] for p in chunk], resize_squares(torch.stack(crops), weights)
                )
        if squares:
            rows = [row_of[p] for p in sorted(squares)]
            stacked = torch.stack([squares[p] for p in sorted(squares)]).to(self.device)
            self._place(pixels, rows, stacked)
        if timing:
            end = torch.cuda.Event(enable_timing=True)
            end.record(self.stream)
            self.preprocess_events.append((begin, end))
        return pixels, ok

    def _place(self, pixels: Any, rows: list[int], values: Any) -> None:
        import torch

        if rows == list(range(rows[0], rows[0] + len(rows))):
            pixels[rows[0] : rows[0] + len(rows)].copy_(values)
        else:
            pixels.index_copy_(0, torch.tensor(rows, device=self.device), values)


def _batched_stream(
    tasks: Iterator[Task],
    size: int,
    device: str,
    readers: int,
    timings: StageTimes | None,
) -> Iterator[tuple[int, Decoded]]:
    import torch

    # Reader threads load the bytes of the next runs (a run split among them); one
    # decode thread runs nvJPEG and the resizes on its own CUDA stream, so reading and
    # decoding the runs ahead overlap the encoding of this one on the main stream.
    decoder = _BatchedDecoder(size, device, timings)
    try:
        with (
            ThreadPoolExecutor(max(1, readers)) as read_pool,
            ThreadPoolExecutor(1) as decode_pool,
        ):
            pending: collections.deque[tuple[int, Future[tuple[Decoded, Any]]]] = (
                collections.deque()
            )

            def drain_one() -> tuple[int, Decoded]:
                seq, future = pending.popleft()
                waited = time.perf_counter()
                decoded, done = future.result()
                if timings is not None:
                    timings.wait += time.perf_counter() - waited
                if done is not None:
                    consumer = torch.cuda.current_stream(device)
                    consumer.wait_event(done)
                    decoded[1].record_stream(consumer)
                return seq, decoded

            try:
                for seq, run in tasks:
                    chunks = [
                        read_pool.submit(_read_chunk, run[i : i + _READ_CHUNK])
                        for i in range(0, len(run), _READ_CHUNK)
                    ]
                    pending.append((seq, decode_pool.submit(decoder.decode, run, chunks)))
                    if len(pending) >= _PREFETCH_RUNS:
                        yield drain_one()
                while pending:
                    yield drain_one()
            finally:
                for _, future in pending:
                    future.cancel()
    finally:
        if timings is not None and decoder.preprocess_events:
            torch.cuda.synchronize(device)
            events = decoder.preprocess_events
            timings.preprocess += sum(b.elapsed_time(e) for b, e in events) / 1e3


class _EncoderThreads:
    """Shares the CPU between the encoder's threads and the decode processes.

    When decoding is the bound (the loop waits for decoded batches longer than it spends
    encoding), an encoder spread over every core only makes the decode processes take
    turns with it: it then keeps to the cores they leave free. When encoding is the
    bound (a large model on the CPU), it uses every core. Measured on 2 cores with 2
    decode processes: tiny model 0.70x -> 0.84x of the decode-only rate; ViT-B-32 keeps
    its full encoder speed.
    """

    def __init__(self, *, active: bool, decoders: int) -> None:
        import torch

        self.active = active
        self.full = torch.get_num_threads()
        # The CPUs this process may use, not the machine's: under a CPU set (a container,
        # a batch job) the machine's count would oversubscribe the cores it has.
        self.spare = max(1, min(self.full, available_cpus() - decoders))
        self.encoding = 0.0
        self.waiting = 0.0
        self.current = self.full

    def rebalance(self) -> None:
        """Pick the thread count for the next batch from the time split so far."""
        if not self.active:
            return
        wanted = self.spare if self.waiting > self.encoding else self.full
        if wanted != self.current:
            import torch

            torch.set_num_threads(wanted)
            self.current = wanted

    def restore(self) -> None:
        """Give torch back the thread count it had before."""
        if self.current != self.full:
            import torch

            torch.set_num_threads(self.full)
            self.current = self.full


def embed_images(
    items: Iterable[tuple[int, ImageSource]],
    encoder: ClipEncoder,
    out_dir: ShardLocation,
    *,
    first_shard: int = 0,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = 256,
    workers: int = 2,
    on_shard: Callable[[ShardResult], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    max_shards: int | None = None,
    batched_decode: bool | None = None,
    timings: StageTimes | None = None,
) -> EmbedSummary:
    """Embed images into shards of L2-normalised float16 vectors.

    Args:
        items: ``(image_id, source)`` in the order to embed; a source is a file path or
            the encoded bytes. Read lazily.
        encoder: The loaded :class:`~retrieval.encoder.ClipEncoder`; its device picks
            the decode path (nvJPEG on CUDA, PIL worker processes on CPU).
        out_dir: The model's embeddings folder: a path, or an fsspec URL.
        first_shard: Number of the first shard written.
        shard_size: Images per shard (embedded + failed).
        batch_size: Images per encoder call.
        workers: CPU decode processes (0 decodes in this process); on the batched
            (CUDA) path, four file-reading threads per worker.
        on_shard: Called with each shard once its files are complete (register it
            there); an exception from it stops the run after that shard.
        on_progress: Called with the number of images just processed.
        max_shards: Stop after this many shards (for partial runs).
        batched_decode: Decode with torchvision's batched ``decode_jpeg`` and resize
            with matrix products; None (the default) does so on CUDA only. On the CPU
            it runs the GPU path's logic on libjpeg, to check it without a GPU.
        timings: Filled with the busy seconds of each stage, when given.

    Returns:
        The :class:`EmbedSummary`.
    """
    import torch

    started = time.perf_counter()
    summary = EmbedSummary()
    size = encoder.image_size
    on_gpu = encoder.device.startswith("cuda")
    batched = on_gpu if batched_decode is None else batched_decode
    task_size = batch_size if batched else max(8, min(64, batch_size // max(1, workers)))
    tasks = _tasks(items, shard_size, task_size)

    shard_ids: list[np.ndarray] = []
    shard_vectors: list[Any] = []
    shard_failures: list[tuple[int, str]] = []
    batch_ids: list[np.ndarray] = []
    batch_pixels: list[Any] = []
    batch_count = 0
    current_seq = 0
    in_flight: collections.deque[Any] = collections.deque()
    encode_events: list[tuple[Any, Any]] = []

    cpu_share = _EncoderThreads(active=not on_gpu and workers > 0, decoders=workers)

    def encode_pending() -> None:
        nonlocal batch_count
        if not batch_ids:
            return
        if batched:
            pixels = torch.cat(batch_pixels) if len(batch_pixels) > 1 else batch_pixels[0]
        else:
            array = np.concatenate(batch_pixels) if len(batch_pixels) > 1 else batch_pixels[0]
            pixels = torch.from_numpy(array).permute(0, 3, 1, 2)
        if on_gpu:
            # Bounded queue of batches on the GPU: enough to keep it busy, without
            # letting the loop run ahead of it by more than a few batches of memory.
            while len(in_flight) >= _ENCODES_IN_FLIGHT:
                in_flight.popleft().synchronize()
            begin = torch.cuda.Event(enable_timing=timings is not None)
            begin.record()
            shard_vectors.append(encoder.encode_images_tensor(pixels))
            end = torch.cuda.Event(enable_timing=timings is not None)
            end.record()
            in_flight.append(end)
            if timings is not None:
                encode_events.append((begin, end))
        else:
            begin_wall = time.perf_counter()
            shard_vectors.append(encoder.encode_images_tensor(pixels))
            spent = time.perf_counter() - begin_wall
            cpu_share.encoding += spent
            if timings is not None:
                timings.encode += spent
            cpu_share.rebalance()
        shard_ids.append(np.concatenate(batch_ids))
        batch_ids.clear()
        batch_pixels.clear()
        batch_count = 0

    def finish_shard(seq: int) -> None:
        encode_pending()
        begin_wall = time.perf_counter()
        ids = np.concatenate(shard_ids) if shard_ids else np.zeros(0, dtype=np.int64)
        if shard_vectors:
            # One copy off the device per shard, not one wait per batch.
            vectors = torch.cat(shard_vectors).cpu().numpy()
        else:
            vectors = np.zeros((0, encoder.embed_dim), dtype=np.float16)
        files = write_shard(out_dir, first_shard + seq, ids, vectors)
        if timings is not None:
            timings.write += time.perf_counter() - begin_wall
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
    if batched:
        readers = max(4, _READERS_PER_WORKER * workers)
        stream = _batched_stream(tasks, size, encoder.device, readers, timings)
    else:
        stream = _cpu_stream(tasks, size, workers, timings)
    seen_any = False
    try:
        waited_from = time.perf_counter()
        for seq, decoded in stream:
            cpu_share.waiting += time.perf_counter() - waited_from
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
                # A batched run is already a batch: encode it now rather than merge.
                if batched or batch_count >= batch_size:
                    encode_pending()
            if on_progress is not None:
                on_progress(count)
            waited_from = time.perf_counter()
        else:
            if seen_any:
                finish_shard(current_seq)
    finally:
        cpu_share.restore()
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    if timings is not None and encode_events:
        torch.cuda.synchronize(encoder.device)
        timings.encode += sum(begin.elapsed_time(end) for begin, end in encode_events) / 1e3
    summary.seconds = time.perf_counter() - started
    return summary


def decode_only(
    items: Iterable[tuple[int, ImageSource]],
    size: int,
    *,
    workers: int,
    task_size: int = 32,
    device: str = "cpu",
) -> int:
    """Read and decode images to encoder-ready squares without encoding (the decode ceiling).

    Args:
        items: ``(image_id, source)`` pairs.
        size: Output square side.
        workers: Decode processes (CPU); on CUDA, four file-reading threads each.
        task_size: Images per worker task (CPU) or per nvJPEG batch (CUDA).
        device: ``cpu`` for the PIL worker path; a CUDA device for the batched path.

    Returns:
        Number of images decoded.
    """
    import torch

    tasks = _tasks(items, 1 << 62, task_size)
    stream: Iterator[tuple[int, Decoded]]
    if device.startswith("cuda"):
        stream = _batched_stream(tasks, size, device, max(4, _READERS_PER_WORKER * workers), None)
    else:
        stream = _cpu_stream(tasks, size, workers)
    done = 0
    for _, (ids, _pixels, _failures, _count) in stream:
        done += len(ids)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return done


__all__ = [
    "DEFAULT_SHARD_SIZE",
    "EmbedSummary",
    "ShardResult",
    "StageTimes",
    "decode_only",
    "embed_images",
    "resize_squares",
    "resize_weights",
]
