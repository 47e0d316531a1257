"""Opening collection files whatever their compression: plain, ``.bz2`` or ``.gz``.

Compression is recognised from a file's first bytes, not its name (:func:`compression_of`).
:func:`open_binary` returns a stream of the decompressed bytes, decoded one of two ways:

* **in the calling thread** (the default): for short reads such as sniffing a layout;
* **in a decoder process** (``decoder_process=True``), for ingest: a child Python
  process (this module run as ``python -m retrieval.decompress``) decodes the file and
  writes the bytes into a pipe, which the caller reads as it would a plain file. Decoding
  then competes with cutting lines and feeding the parsing workers for a core only, not
  for the calling process's GIL: in a thread of the caller, the two took turns on it
  (Python's decoders release the GIL per call and wait to get it back each time, and
  ``indexed_bzip2`` on one thread does not release it at all). Measured on 2 cores, a
  1M-row ``.bz2`` ingest went from about 2.1x to 1.6-1.8x the plain file's time.

``.bz2`` is decoded by ``indexed_bzip2`` (the optional ``bz2`` extra) on ``decoder_threads``
threads, block-parallel when there are several, or by the standard library
(``decoder_threads=0``, or the extra not installed). :func:`default_decoder_threads` gives
the decoder the CPUs the parsing workers leave, and at least one: on one thread
``indexed_bzip2`` takes less CPU than the standard library's decoder, and a second
thread on a machine the workers already fill costs more CPU than it saves time. ``.gz``
is decoded by the standard library (``rapidgzip`` was measured, and gains little on two
cores at many times the memory).

Damage reads the same whichever way a file is decoded. The parallel decoder checks each
block's CRC but reports damage unlike the standard library (or, for garbage after a
valid header, not at all), so any failure of it, or a stream that ends before the file
does, hands over to the standard library's decoder, which skips what was already read
and raises at the very byte a standard-library read would (:class:`_ParallelBz2`). The
decoder process hands over every byte it decoded before an error, then the error (its
type and message), which the reader raises where those bytes end. So a damaged file
raises the same exception after the same line as a direct standard-library read; the
errors are those of :data:`STREAM_ERRORS`. Only a damaged file (or one with trailing
junk) pays for a second decode.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any, BinaryIO, cast

from retrieval.errors import CollectionError
from retrieval.processes import available_cpus, die_with_parent, ignore_interrupts

__all__ = [
    "STREAM_ERRORS",
    "compression_of",
    "default_decoder_threads",
    "file_error",
    "open_binary",
    "parallel_bz2_available",
]

STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    zlib.error,
    gzip.BadGzipFile,
)
"""What reading a damaged compressed stream raises (a truncated one: ``EOFError``)."""

_RAISED_BY_NAME: dict[str, type[BaseException]] = {
    f"{kind.__module__}.{kind.__qualname__}": kind for kind in (*STREAM_ERRORS, CollectionError)
}
"""The errors a decoder process may report, by qualified name, to raise them again (any
other is raised as ``OSError`` naming it)."""

_HAND_OVER_BYTES = 1 << 20
"""Bytes the decoder process collects before writing them into its pipe."""

_PIPE_BUFFER = 1 << 20
"""Buffer of the reader over the decoder process's pipe."""

_END_MARKER_BITS = 80
"""A bzip2 stream's end: 48 bits of magic, then the stream's 32-bit CRC."""

_MODULE = "retrieval.decompress"
"""This module, as the decoder process runs it (``python -m``)."""


def file_error(path: Path, exc: BaseException) -> CollectionError:
    """The error for a collection file that cannot be opened or read.

    Args:
        path: The file.
        exc: What opening or reading it raised.

    Returns:
        A :class:`CollectionError` naming the file and the fix.
    """
    if isinstance(exc, FileNotFoundError):
        return CollectionError(f"{path}: no such file; check the path")
    if isinstance(exc, PermissionError):
        return CollectionError(f"{path}: cannot read the file (permission denied); fix its mode")
    if isinstance(exc, IsADirectoryError):
        return CollectionError(f"{path}: is a folder, not a metadata file")
    return CollectionError(f"{path}: cannot read the file ({exc}); pass a YFCC100M metadata file")


def compression_of(path: str | os.PathLike[str]) -> str:
    """Tell how a file is compressed from its first bytes.

    Args:
        path: The file.

    Returns:
        ``"bz2"``, ``"gz"`` or ``"plain"``.

    Raises:
        CollectionError: The file is missing or unreadable.
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(3)
    except OSError as exc:
        raise file_error(Path(path), exc) from exc
    if magic == b"BZh":
        return "bz2"
    if magic[:2] == b"\x1f\x8b":
        return "gz"
    return "plain"


def parallel_bz2_available() -> bool:
    """Whether the block-parallel bzip2 decoder (``indexed_bzip2``) is installed.

    Returns:
        True when ``import indexed_bzip2`` works.
    """
    try:
        import indexed_bzip2  # noqa: F401
    except ImportError:
        return False
    return True


def default_decoder_threads(workers: int, cpus: int | None = None) -> int:
    """How many threads decompress a ``.bz2`` metadata file by default.

    Args:
        workers: The parsing processes that share the CPUs with the decoder.
        cpus: The CPUs this process may use; None: :func:`available_cpus`.

    Returns:
        0 (the standard library's decoder) when ``indexed_bzip2`` is not installed;
        otherwise the CPUs left over by the parsing workers, and at least 1: on one
        thread ``indexed_bzip2`` is the cheapest decoder in CPU time, and where the
        workers already keep every core busy, more threads add CPU time, not speed.
    """
    if not parallel_bz2_available():
        return 0
    return max(1, (available_cpus() if cpus is None else cpus) - workers)


class _ParallelBz2(io.RawIOBase):
    """A ``.bz2`` file decoded by ``indexed_bzip2``, checked by the stdlib on any doubt.

    The parallel decoder checks every block's CRC, so the bytes it returns are right; but
    it reports damage as ``RuntimeError`` (a truncated file) or not at all (garbage after
    a valid header reads as an empty file). So a read that fails, or an end of stream
    that is not the end of the file, switches to :class:`bz2.BZ2File`: it skips the bytes
    already returned and goes on from there, raising exactly what a stdlib read of the
    whole file raises, at the same byte (so rejects and errors keep their line numbers).
    A good file never touches the stdlib decoder.
    """

    def __init__(self, path: Path, threads: int) -> None:
        import indexed_bzip2

        super().__init__()
        self._path = path
        self._bits = os.path.getsize(path) * 8
        self._slow: bz2.BZ2File | None = None
        self._returned = 0
        self._fast: Any = None
        try:
            self._fast = indexed_bzip2.open(str(path), parallelization=threads)
        except OSError:
            raise
        except Exception:  # noqa: BLE001 (a header it refuses: the stdlib says why)
            self._fast = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._slow is None:
            if self._fast is not None:
                try:
                    n: int = self._fast.readinto(buffer)
                except Exception:  # noqa: BLE001 (any failure: the stdlib decoder names it)
                    n = -1
                if n > 0 or (n == 0 and self._ends_at_file_end()):
                    self._returned += n
                    return n
            self._switch_to_stdlib()
        assert self._slow is not None
        # In pieces of the size BZ2File reads by itself: at damage the stdlib decoder
        # then stops at the byte where a stdlib read of the whole file stops.
        data = self._slow.read1(min(len(buffer), io.DEFAULT_BUFFER_SIZE))
        buffer[: len(data)] = data
        return len(data)

    def _ends_at_file_end(self) -> bool:
        # The decoder's last block offset marks its last stream's end: on several threads
        # the bit after the end marker (padded to a byte), on one thread the marker's
        # first bit (48 bits of magic and a 32-bit CRC follow, then the padding). Short
        # of the file's size, something was not decoded.
        if not self._fast.block_offsets_complete():
            return False
        last = max(self._fast.block_offsets(), default=-1)
        return self._bits in (last, (last + _END_MARKER_BITS + 7) // 8 * 8)

    def _switch_to_stdlib(self) -> None:
        self._close_fast()
        self._slow = bz2.BZ2File(self._path, "rb")
        left = self._returned
        while left:
            skipped = len(self._slow.read(min(left, 1 << 20)))
            if not skipped:
                raise OSError("the stdlib decoder ends before the parallel one did")
            left -= skipped

    def _close_fast(self) -> None:
        fast, self._fast = self._fast, None
        if fast is not None:
            # A failed decoder may raise its failure again on closing; it is closed.
            with contextlib.suppress(Exception):
                fast.close()

    def close(self) -> None:
        try:
            self._close_fast()
            if self._slow is not None:
                self._slow.close()
        finally:
            super().close()


def _open_here(path: Path, kind: str, decoder_threads: int) -> io.BufferedIOBase:
    """Open a compressed file decoded in the calling thread."""
    if kind == "bz2" and decoder_threads > 0 and parallel_bz2_available():
        return io.BufferedReader(_ParallelBz2(path, decoder_threads), 1 << 20)
    if kind == "bz2":
        return bz2.BZ2File(path, "rb")
    return gzip.GzipFile(path, "rb")


class _DecoderProcess(io.RawIOBase):
    """The decompressed bytes of a file, decoded by a child process into a pipe.

    Reading returns what the child wrote; at the end of the pipe the child's outcome is
    checked: an error it reported is raised again (same type, same message), after every
    byte it decoded before that error; a child that died otherwise raises ``OSError``.
    Closing kills a child still running (the reader stopped early) and waits for it.

    Args:
        path: A ``.bz2`` or ``.gz`` file.
        decoder_threads: As for :func:`open_binary`.
    """

    def __init__(self, path: Path, decoder_threads: int) -> None:
        super().__init__()
        report_read, report_write = os.pipe()
        # -P: a folder named like this package in the working directory must not be
        # imported instead of it.
        command = [sys.executable, "-P", "-m", _MODULE, str(path), str(decoder_threads)]
        try:
            self._process = subprocess.Popen(
                [*command, str(report_write)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                bufsize=0,
                pass_fds=(report_write,),
                env=_child_environment(),
            )
        except BaseException:
            os.close(report_read)
            raise
        finally:
            os.close(report_write)
        self._report = os.fdopen(report_read, "rb")
        assert self._process.stdout is not None
        self._pipe: Any = self._process.stdout
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._ended:
            return 0
        n: int = self._pipe.readinto(buffer)
        if n:
            return n
        self._ended = True
        self._raise_failure()
        return 0

    def _raise_failure(self) -> None:
        report = self._report.read()
        status = self._process.wait()
        if report:
            failure = json.loads(report)
            kind = _RAISED_BY_NAME.get(failure["type"])
            if kind is None:
                name = failure["type"].removeprefix("builtins.")
                raise OSError(f"{name}: {failure['message']}")
            raise kind(failure["message"])
        if status < 0:
            raise OSError(f"the decoder process was killed by signal {-status}")
        if status:
            raise OSError(f"the decoder process ended with exit status {status}")

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
        finally:
            self._pipe.close()
            self._report.close()
            super().close()


def _child_environment() -> dict[str, str]:
    """The decoder process's environment: this one, with this package importable."""
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def open_binary(
    path: str | os.PathLike[str], *, decoder_threads: int = 0, decoder_process: bool = False
) -> BinaryIO:
    """Open a plain, ``.bz2`` or ``.gz`` file as a stream of decompressed bytes.

    Args:
        path: The file; compression is recognised from its first bytes.
        decoder_threads: For ``.bz2``: 0 decodes with the standard library; N > 0 with
            ``indexed_bzip2`` on N threads (the standard library when it is not
            installed). Ignored for other files.
        decoder_process: Decode a compressed file in a child process of its own
            (:class:`_DecoderProcess`), for long sequential reads; False decodes in the
            calling thread. Ignored for plain files.

    Returns:
        A binary stream (iterating it yields lines ending in ``\\n``); close it (a
        ``with`` block) to stop the decoder's threads or process.

    Raises:
        CollectionError: The file is missing or unreadable.
    """
    path = Path(path)
    kind = compression_of(path)
    try:
        if kind == "plain":
            return open(path, "rb", buffering=1 << 20)
        if decoder_process:
            piped = io.BufferedReader(_DecoderProcess(path, decoder_threads), _PIPE_BUFFER)
            return cast(BinaryIO, piped)
        return cast(BinaryIO, _open_here(path, kind, decoder_threads))
    except OSError as exc:
        raise file_error(path, exc) from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _decode_into_pipe(path: Path, decoder_threads: int, report_fd: int) -> int:
    """Decode ``path`` onto standard output; report an error on ``report_fd``.

    The stream is read in the pieces its own line reader takes
    (``read1(io.DEFAULT_BUFFER_SIZE)``), and every byte got before an error is written
    out before the error is reported, so the reader sees what a direct read would.

    Returns:
        The exit status: 0 after the whole file (or when the reader closed the pipe
        early), 1 after reporting an error.
    """
    pieces: list[bytes] = []
    size = 0
    failure: BaseException | None = None
    try:
        with _open_here(path, compression_of(path), decoder_threads) as stream:
            while True:
                try:
                    piece = stream.read1(io.DEFAULT_BUFFER_SIZE)
                except Exception as exc:  # noqa: BLE001 (reported to the reader, raised there)
                    failure = exc
                    break
                if not piece:
                    break
                pieces.append(piece)
                size += len(piece)
                if size >= _HAND_OVER_BYTES:
                    _write_all(1, b"".join(pieces))
                    pieces, size = [], 0
        if pieces:
            _write_all(1, b"".join(pieces))
    except BrokenPipeError:
        return 0  # the reader stopped early and closed its end
    except Exception as exc:  # noqa: BLE001 (opening failed: reported, raised there)
        failure = exc
    if failure is None:
        return 0
    kind = type(failure)
    report = {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(failure)}
    _write_all(report_fd, json.dumps(report).encode())
    return 1


def _main(argv: list[str]) -> int:
    """The decoder process: ``python -m retrieval.decompress PATH THREADS REPORT_FD``."""
    ignore_interrupts()
    die_with_parent()
    path, threads, report_fd = argv
    return _decode_into_pipe(Path(path), int(threads), int(report_fd))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
