"""Compressed metadata files: the parallel bzip2 decoder against the standard library's.

Whatever the decoder, in the calling thread or in a decoder process, a file reads as the
same bytes, and damage raises what a standard-library read raises, after the same line:
truncated, garbage after a valid header, a flipped bit, multi-stream (pbzip2-style),
empty streams, trailing junk. A decoder process ends when reading stops, early or not,
and when the process reading it is killed.
"""

from __future__ import annotations

import bz2
import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval.collection import MetadataFile, Reject, detect_layout
from retrieval.decompress import (
    _DecoderProcess,
    default_decoder_threads,
    open_binary,
    parallel_bz2_available,
)
from retrieval.errors import CollectionError
from tests.test_collection_reader import line25

needs_parallel = pytest.mark.skipif(
    not parallel_bz2_available(), reason="indexed_bzip2 is not installed"
)
THREADS = [0, pytest.param(1, marks=needs_parallel), pytest.param(2, marks=needs_parallel)]
"""Decoder threads under test: 0 is the standard library's decoder."""
READERS = [
    pytest.param((0, False), id="stdlib"),
    pytest.param((0, True), id="stdlib-process"),
    pytest.param((1, False), marks=needs_parallel, id="parallel-1"),
    pytest.param((2, False), marks=needs_parallel, id="parallel-2"),
    pytest.param((1, True), marks=needs_parallel, id="parallel-1-process"),
]
"""``open_binary`` set-ups under test: (decoder threads, decoder process)."""


def text(n: int, start: int = 1) -> bytes:
    """``n`` 25-column lines with distinct photo ids."""
    return "".join(line25(start + i) + "\n" for i in range(n)).encode()


def multi_block(n: int = 3000) -> bytes:
    """A .bz2 of several 100 kB blocks (level 1), so damage can fall after good blocks."""
    return bz2.compress(text(n), compresslevel=1)


def flip_bit(data: bytes, at: int) -> bytes:
    damaged = bytearray(data)
    damaged[at] ^= 0x10
    return bytes(damaged)


CASES: dict[str, Callable[[], bytes]] = {
    "whole": multi_block,
    "multi-stream": lambda: b"".join(
        bz2.compress(text(700, start), compresslevel=1) for start in (1, 701, 1401)
    ),
    "empty-stream": lambda: bz2.compress(b""),
    "empty-streams-around-data": lambda: bz2.compress(b"") + multi_block() + bz2.compress(b""),
    "trailing-junk": lambda: multi_block() + b"not a bzip2 stream",
    "truncated": lambda: multi_block()[: len(multi_block()) * 9 // 10],
    "truncated-end-marker": lambda: multi_block()[:-4],
    "header-only": lambda: b"BZh9",
    "garbage-after-header": lambda: b"BZh9 not really bzip2 data" * 10,
    "flipped-bit-first-block": lambda: flip_bit(multi_block(), 5_000),
    "flipped-bit-middle": lambda: flip_bit(multi_block(), len(multi_block()) // 2),
    "second-stream-truncated": lambda: multi_block() + multi_block()[:5_000],
}


def read_lines(
    path: Path, threads: int, decoder_process: bool = False
) -> tuple[list[bytes], str | None]:
    """Every line the decoder gives, then the error that stopped it (type: message)."""
    lines: list[bytes] = []
    with open_binary(path, decoder_threads=threads, decoder_process=decoder_process) as stream:
        try:
            lines.extend(stream)
        except (EOFError, OSError) as exc:
            return lines, f"{type(exc).__name__}: {exc}"
    return lines, None


@pytest.mark.parametrize("decoder", READERS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_decoder_reads_what_the_stdlib_reads(
    tmp_path: Path, case: str, decoder: tuple[int, bool]
) -> None:
    path = tmp_path / "m.bz2"
    path.write_bytes(CASES[case]())
    expected: list[bytes] = []
    error = None
    with bz2.open(path, "rb") as reference:
        try:
            expected.extend(reference)
        except (EOFError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
    assert read_lines(path, *decoder) == (expected, error)


def test_the_cases_cover_good_and_damaged_files(tmp_path: Path) -> None:
    # The comparison above must not pass by every case failing (or none).
    outcomes = {}
    for case, make in CASES.items():
        path = tmp_path / f"{case}.bz2"
        path.write_bytes(make())
        lines, error = read_lines(path, 0)
        outcomes[case] = (len(lines) > 0, error.split(":")[0] if error else None)
    assert outcomes["whole"] == (True, None)
    assert outcomes["multi-stream"] == (True, None)
    assert outcomes["empty-stream"] == (False, None)
    assert outcomes["trailing-junk"] == (True, None)
    assert outcomes["truncated"] == (True, "EOFError")
    assert outcomes["header-only"] == (False, "EOFError")
    assert outcomes["garbage-after-header"] == (False, "OSError")
    assert outcomes["flipped-bit-middle"] == (True, "OSError")


def read_all(path: Path, threads: int, workers: int = 0) -> tuple[list[int], list[Reject]]:
    ids: list[int] = []
    rejects: list[Reject] = []
    reader = MetadataFile(path, workers=workers, batch_size=250, decoder_threads=threads)
    for batch in reader.batches():
        ids.extend(row[0] for row in batch.full_rows())
        rejects.extend(batch.rejects)
    return ids, rejects


@pytest.mark.parametrize("threads", THREADS)
def test_multi_stream_file_keeps_every_row_and_reject_line_number(
    tmp_path: Path, threads: int
) -> None:
    lines = [line25(i + 1) for i in range(3000)]
    lines[1234] = "bad\tline"
    lines[2999] = line25(3000, marker="7")
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "m.tsv.bz2"
    # As pbzip2 writes it: independent streams, one after the other.
    path.write_bytes(
        b"".join(bz2.compress(data[i : i + 90_000], 1) for i in range(0, len(data), 90_000))
    )
    ids, rejects = read_all(path, threads)
    assert ids == [i + 1 for i in range(3000) if i not in (1234, 2999)]
    assert [r.line for r in rejects] == [1235, 3000]


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("threads", THREADS)
def test_truncated_bz2_names_the_same_line_whatever_the_decoder(
    tmp_path: Path, threads: int, workers: int
) -> None:
    data = multi_block()
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(data[: len(data) * 9 // 10])
    before_damage = len(read_lines(path, 0)[0])  # a direct stdlib read, line by line
    assert before_damage > 2000
    with pytest.raises(CollectionError) as info:
        read_all(path, threads, workers)
    assert f"truncated) after line {before_damage};" in str(info.value)


@pytest.mark.parametrize("threads", THREADS)
def test_garbage_after_a_bzip2_header_is_never_an_empty_file(tmp_path: Path, threads: int) -> None:
    good = tmp_path / "good.tsv.bz2"
    good.write_bytes(multi_block(100))
    reader = MetadataFile(good, decoder_threads=threads)  # the layout sniff passes
    good.write_bytes(b"BZh9" + os.urandom(4000))  # then the file is replaced by junk
    with pytest.raises(CollectionError, match=r"cannot decompress.*before the first line"):
        for _ in reader.batches():
            pass


@pytest.mark.parametrize("threads", THREADS)
def test_bzip2_stream_of_nothing_is_an_empty_file(tmp_path: Path, threads: int) -> None:
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(bz2.compress(b"") + bz2.compress(b""))
    with pytest.raises(CollectionError, match="empty file"):
        MetadataFile(path, decoder_threads=threads)
    assert read_lines(path, threads) == ([], None)


@pytest.mark.parametrize("decoder_process", [False, True], ids=["direct", "process"])
@pytest.mark.parametrize(
    ("content", "error"),
    [
        (gzip.compress(text(50)) + gzip.compress(text(50, 51)), None),
        (gzip.compress(b""), None),
        (gzip.compress(text(2000))[:-100], "EOFError"),
        (b"\x1f\x8b" + b"garbage" * 20, "BadGzipFile"),
    ],
    ids=["multi-member", "empty", "truncated", "garbage"],
)
def test_gzip_damage_is_raised_as_before(
    tmp_path: Path, content: bytes, error: str | None, decoder_process: bool
) -> None:
    path = tmp_path / "m.gz"
    path.write_bytes(content)
    lines, raised = read_lines(path, 2, decoder_process)  # threads do not apply to gzip
    assert (raised.split(":")[0] if raised else None) == error
    if error is None:
        assert b"".join(lines) == gzip.decompress(content)


def decoder_processes() -> list[int]:
    """The running decoder processes this process started (Linux /proc)."""
    found = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:  # ended meanwhile
                continue
            if b"retrieval.decompress" in command:
                found.append(int(pid))
    return found


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")


@needs_proc
@pytest.mark.parametrize("threads", THREADS)
def test_decoder_process_ends_when_reading_stops_early(tmp_path: Path, threads: int) -> None:
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(multi_block(6000))
    assert decoder_processes() == []
    reader = MetadataFile(path, batch_size=100, decoder_threads=threads)
    chunks = reader.chunks()
    next(chunks)
    assert len(decoder_processes()) == 1  # decoding ahead, blocked on a full pipe
    chunks.close()  # the consumer stops: the with block closes the decoder
    assert decoder_processes() == []
    with pytest.raises(KeyboardInterrupt):
        for _ in reader.chunks():
            raise KeyboardInterrupt
    assert decoder_processes() == []
    assert sum(1 for _ in reader.chunks()) == 60  # and a whole read ends it too
    assert decoder_processes() == []


def test_decoder_process_ignores_a_same_named_folder_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(multi_block(300))
    impostor = tmp_path / "cwd" / "retrieval"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(impostor.parent)
    assert read_lines(path, 0, decoder_process=True) == (
        bz2.decompress(path.read_bytes()).splitlines(keepends=True),
        None,
    )


def test_a_file_gone_before_the_decoder_process_opens_it_is_named(tmp_path: Path) -> None:
    # open_binary checks the file before it starts the child; the file may still go
    # before the child opens it: started on a missing file, the child names it.
    stream = _DecoderProcess(tmp_path / "m.tsv.bz2", 0)
    with pytest.raises(CollectionError, match=r"m.tsv.bz2: no such file; check the path$"):
        stream.readinto(bytearray(1 << 16))
    stream.close()


def process_gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status  # ended, not yet reaped by its new parent


@needs_proc
def test_decoder_process_dies_with_a_killed_reader(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(multi_block(6000))
    script = (
        "import sys, time\n"
        "from retrieval.decompress import open_binary\n"
        "stream = open_binary(sys.argv[1], decoder_process=True)\n"
        "stream.readline()\n"
        "print(stream.raw._process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    decoder = int(reader.stdout.readline())
    assert not process_gone(decoder)
    reader.kill()  # as an out-of-memory kill would: no clean-up runs in the reader
    reader.wait()
    reader.stdout.close()
    deadline = time.monotonic() + 10
    while not process_gone(decoder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_gone(decoder)


@needs_proc
def test_a_decoder_process_that_dies_is_an_error_not_an_early_end(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(multi_block(6000))
    reader = MetadataFile(path, batch_size=100, decoder_threads=0)
    chunks = reader.chunks()
    next(chunks)
    (decoder,) = decoder_processes()
    os.kill(decoder, signal.SIGKILL)
    with pytest.raises(
        CollectionError,
        match=r"cannot decompress \(the decoder process was "
        r"killed by signal 9\) after line \d+;",
    ):
        for _ in chunks:
            pass
    assert decoder_processes() == []


def test_decoder_threads_default_and_range(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(multi_block(10))
    if parallel_bz2_available():
        assert default_decoder_threads(2, cpus=2) == 1  # at least 1
        assert default_decoder_threads(2, cpus=16) == 14  # the CPUs the workers leave
        assert MetadataFile(path).decoder_threads == default_decoder_threads(0)
    else:
        assert default_decoder_threads(2, cpus=16) == 0
    assert MetadataFile(path, decoder_threads=0).decoder_threads == 0
    with pytest.raises(CollectionError, match="decoder threads -1"):
        MetadataFile(path, decoder_threads=-1)
    assert detect_layout(path) == "yfcc25"
