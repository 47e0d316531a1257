"""Benchmark: ``turk ingest`` against a straightforward pandas baseline, and its memory.

Writes ``turk sample --metadata-only`` metadata (1,000,000 rows by default, and a
4,000,000-row file for the memory check), then in the same run, each measurement in its
own subprocess (peak memory from ``resource.getrusage`` ``ru_maxrss``):

* baseline: ``pandas.read_csv(path, sep='\\t', header=None)`` + ``DataFrame.to_sql`` into
  a fresh SQLite file;
* turk: :func:`turk.collection.ingest.ingest_collection` into a fresh ledger (full validation,
  rejects file, ``INSERT OR IGNORE``, compact rows, default workers, which parse and
  insert). Peak memory is the ingest process's plus its largest worker's.

Runs alternate (baseline, turk, baseline, turk, ...) so that load from other work on the
machine falls on both; reports medians of rows/s, their ratio (target >= 2x) and peak
memory at 1M and 4M rows (target < 500 MB and flat). Appends the figures to
``benchmarks/RESULTS.md``.

With ``--compression`` it measures compressed input instead: the same metadata as
``.bz2`` (``bzip2 -9``, or Python's ``bz2`` at level 9 without the command) and ``.gz``
(level 6), ingested (default workers) as plain, ``.bz2`` with the default decoder
(``indexed_bzip2`` where installed), ``.bz2`` with the standard library's decoder
(``decoder_threads=0``), and ``.gz``, each decoded in a process of its own as ingest
does, alternating, with medians, CPU seconds (ingest process, workers and decoder) and
ratios to plain (target: ``.bz2`` within 1.6x); then raw decompression alone (every line
read through ``open_binary`` in one process) at 0 (standard library), 1, 2 and all
decoder threads, and ``gzip`` against ``rapidgzip`` where it is installed (measured
only; ingest does not use it); and the floors that CPU time sets: plain CPU plus the
cheapest decode, over the CPUs; and the same with the plain ingest's serial tail (after
its last chunk committed) on one core, since no decoding can move into it.

Usage::

    .venv/bin/python benchmarks/bench_ingest.py [--rows 1000000] [--big-rows 4000000]
        [--repeats 3] [--workdir DIR] [--no-append]
    .venv/bin/python benchmarks/bench_ingest.py --compression [--rows 1000000]
        [--repeats 3] [--workdir DIR] [--no-append]
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import RESULTS, append_results, machine

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, resource, sqlite3, sys, time
kind, metadata, db = sys.argv[1], sys.argv[2], sys.argv[3]
threads = None if len(sys.argv) < 5 or sys.argv[4] == "default" else int(sys.argv[4])
start = time.perf_counter()
marks = []  # seconds from the start at which each chunk was committed
if kind == "pandas":
    import pandas as pd
    frame = pd.read_csv(metadata, sep="\t", header=None)
    conn = sqlite3.connect(db)
    frame.to_sql("images", conn, index=False)
    conn.commit()
    conn.close()
    rows = len(frame)
else:
    from turk.collection.ingest import ingest_collection
    from turk.ledger import Ledger
    with Ledger(db) as ledger:
        rows = ingest_collection(
            ledger, [metadata], decoder_threads=threads,
            on_progress=lambda _: marks.append(time.perf_counter() - start),
        ).total("inserted")
seconds = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF)
children = resource.getrusage(resource.RUSAGE_CHILDREN)
peak_mb = own.ru_maxrss / 1024
# Workers are children: count the largest one on top (a bound for the sum).
worker_mb = children.ru_maxrss / 1024
cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb + worker_mb,
                  "main_mb": peak_mb, "worker_mb": worker_mb, "cpu": cpu, "marks": marks}))
"""


def measure(kind: str, metadata: Path, workdir: Path, threads: str = "default") -> dict[str, Any]:
    """Run one ingest in a fresh subprocess: rows, seconds, CPU, peak MB, chunk times."""
    db_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir))
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                kind,
                str(metadata),
                str(db_dir / "bench.db"),
                threads,
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)
    result["rows_per_s"] = result["rows"] / result["seconds"]
    return result


def commit_times(run: dict[str, Any]) -> tuple[float, float]:
    """When an ingest committed its first chunk, and how long it ran after its last.

    After the last commit only the ingest process works (it builds the deferred indexes
    and writes the journal back) while the other cores wait, whatever the input.

    Returns:
        ``(seconds to the first commit, seconds after the last commit)``.
    """
    marks: list[float] = run["marks"]
    return marks[0], run["seconds"] - marks[-1]


def make_metadata(rows: int, workdir: Path) -> Path:
    """Write ``turk sample --metadata-only --n ROWS`` and return its metadata.tsv."""
    from turk.collection.sample import write_sample

    out = workdir / f"sample-{rows}"
    started = time.perf_counter()
    write_sample(out, n=rows, seed=0, metadata_only=True)
    print(f"sample --metadata-only --n {rows:,}: {time.perf_counter() - started:.1f} s")
    return out / "metadata.tsv"


_RAW = r"""
import json, resource, sys, time
from retrieval.decompress import open_binary
kind, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
lines = 0
if kind == "rapidgzip":
    import io, rapidgzip
    # Its raw reader iterates lines ~1000x slower: read it through a buffered reader.
    with io.BufferedReader(rapidgzip.open(path, parallelization=threads), 1 << 20) as fh:
        for _ in fh:
            lines += 1
else:
    with open_binary(path, decoder_threads=threads) as fh:
        for _ in fh:
            lines += 1
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"lines": lines, "seconds": time.perf_counter() - start,
                  "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}))
"""


def measure_raw(kind: str, path: Path, threads: int) -> dict[str, float]:
    """Read every line of a compressed file in a fresh subprocess: seconds, CPU, peak MB."""
    out = subprocess.run(
        [sys.executable, "-c", _RAW, kind, str(path), str(threads)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def compress(plain: Path) -> tuple[Path, Path, str]:
    """Write ``plain``.bz2 and ``plain``.gz beside it; return them and how bz2 was made."""
    bz2_path, gz_path = plain.with_suffix(".tsv.bz2"), plain.with_suffix(".tsv.gz")
    started = time.perf_counter()
    if shutil.which("bzip2"):
        with open(bz2_path, "wb") as out:
            subprocess.run(["bzip2", "-9", "-c", str(plain)], stdout=out, check=True)
        how = "bzip2 -9"
    else:
        with open(plain, "rb") as src, bz2.open(bz2_path, "wb", compresslevel=9) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        how = "Python bz2, level 9"
    with open(plain, "rb") as src, gzip.open(gz_path, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    print(f"compressed in {time.perf_counter() - started:.1f} s ({how}; gzip -6)")
    return bz2_path, gz_path, how


def run_compression(args: argparse.Namespace, workdir: Path) -> str:
    """Ingest plain, .bz2 (parallel and stdlib decoder) and .gz; return the summary."""
    from retrieval.collection import default_workers
    from retrieval.decompress import default_decoder_threads
    from retrieval.processes import available_cpus

    plain = make_metadata(args.rows, workdir)
    bz2_path, gz_path, how = compress(plain)
    mb = {p: p.stat().st_size / 1e6 for p in (plain, bz2_path, gz_path)}
    workers = default_workers(plain)
    threads = default_decoder_threads(workers)
    default = (
        f"bz2, default: indexed_bzip2 ({threads} thread{'s' if threads > 1 else ''})"
        if threads
        else "bz2, default: stdlib decoder"
    )
    variants = {"plain": (plain, "default"), default: (bz2_path, "default")}
    if threads:
        variants["bz2, stdlib decoder"] = (bz2_path, "0")
    variants["gz (stdlib gzip)"] = (gz_path, "default")
    runs: dict[str, list[float]] = {name: [] for name in variants}
    ingest_cpu: dict[str, list[float]] = {name: [] for name in variants}
    peaks: dict[str, list[float]] = {name: [] for name in variants}
    commits: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    load = os.getloadavg()[0]
    for i in range(args.repeats):
        for name, (path, decoder) in variants.items():
            r = measure("turk", path, workdir, decoder)
            runs[name].append(r["seconds"])
            ingest_cpu[name].append(r["cpu"])
            peaks[name].append(r["peak_mb"])
            commits[name].append(commit_times(r))
            print(
                f"[{i + 1}/{args.repeats}] {name}: {r['seconds']:.1f} s, {r['cpu']:.1f} CPU-s, "
                f"peak {r['peak_mb']:.0f} MB"
            )
    base = runs["plain"]
    ratio = {
        name: statistics.median(s / b for s, b in zip(v, base, strict=True))
        for name, v in runs.items()
    }
    first = {name: statistics.median(c[0] for c in v) for name, v in commits.items()}
    tail = {name: statistics.median(c[1] for c in v) for name, v in commits.items()}
    lines = [
        f"- ingest {name}: median {statistics.median(v):.1f} s (runs "
        f"{', '.join(f'{s:.1f}' for s in v)}), {statistics.median(ingest_cpu[name]):.1f} CPU-s, "
        f"peak {statistics.median(peaks[name]):.0f} MB, first chunk committed at "
        f"{first[name]:.2f} s, {tail[name]:.2f} s after the last; "
        f"vs plain in the same round: median {ratio[name]:.2f}x"
        for name, v in runs.items()
    ]
    lines.append(
        f"- target .bz2 ingest within 1.6x of plain: "
        f"{'met' if ratio[default] <= 1.6 else 'MISSED'} ({ratio[default]:.2f}x, default decoder)"
    )
    raw_lines = []
    raw_cpu: dict[tuple[str, int], float] = {}
    cpus = available_cpus()
    for kind, path, options in (
        ("bz2", bz2_path, sorted({0, 1, 2, cpus})),
        ("gzip", gz_path, [0]),
        ("rapidgzip", gz_path, sorted({1, 2, cpus})),
    ):
        if kind == "rapidgzip":
            try:
                import rapidgzip  # noqa: F401
            except ImportError:
                continue
        for n in options:
            times = [measure_raw(kind, path, n) for _ in range(args.repeats)]
            sec = statistics.median(t["seconds"] for t in times)
            cpu = statistics.median(t["cpu"] for t in times)
            peak = max(t["peak_mb"] for t in times)
            raw_cpu[kind, n] = cpu
            if kind == "gzip":
                label = "gzip (stdlib)"
            elif kind == "bz2" and n == 0:
                label = "bz2 stdlib"
            else:
                label = f"{'bz2 indexed_bzip2' if kind == 'bz2' else kind} {n} threads"
            raw_lines.append(
                f"  - {label}: median {sec:.2f} s wall, {cpu:.2f} s CPU, "
                f"{mb[plain] / sec:.0f} MB/s decompressed, peak {peak:.0f} MB"
            )
            print(raw_lines[-1])
    # However well decoding overlaps parsing, the cores must do both: the plain ingest's
    # CPU time plus the cheapest decoder's, spread over every core, bounds the wall time.
    decode_cpu = min(v for (kind, _), v in raw_cpu.items() if kind == "bz2")
    plain_cpu = statistics.median(ingest_cpu["plain"])
    floor = (plain_cpu + decode_cpu) / cpus
    plain_median = statistics.median(base)
    lines.append(
        f"- floor on {cpus} CPUs: (plain ingest {plain_cpu:.1f} CPU-s + "
        f"cheapest .bz2 decode {decode_cpu:.1f} CPU-s) / {cpus} = {floor:.1f} s = "
        f"{floor / plain_median:.2f}x the plain median, with perfect overlap"
    )
    # After the last commit one core works and the rest wait, and no decoding can move
    # there (it needs every row): only the CPU time before it spreads over every core.
    serial = tail["plain"]
    serial_floor = serial + (plain_cpu - serial + decode_cpu) / cpus
    lines.append(
        f"- floor with the plain ingest's serial tail ({serial:.2f} s on one core): "
        f"{serial:.2f} + ({plain_cpu:.1f} - {serial:.2f} + {decode_cpu:.1f}) / {cpus} = "
        f"{serial_floor:.1f} s = {serial_floor / plain_median:.2f}x the plain median"
    )
    return (
        f"\n## ingest of compressed metadata: plain vs .bz2 vs .gz "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n\n"
        f"- command: `.venv/bin/python benchmarks/bench_ingest.py --compression "
        f"--rows {args.rows} --repeats {args.repeats}`\n"
        f"- machine: {machine()}; {cpus} CPUs in the affinity mask; Python "
        f"{platform.python_version()}; load average {load:.1f} at the start\n"
        f"- input: `turk sample --metadata-only --n {args.rows}`: {mb[plain]:.0f} MB plain, "
        f"{mb[bz2_path]:.0f} MB .bz2 ({how}), {mb[gz_path]:.0f} MB .gz (gzip -6)\n"
        f"- default workers {workers}, default decoder threads {threads}; "
        f"runs alternate {', '.join(variants)}\n"
        + "\n".join(lines)
        + f"\n- raw decompression (every line read, one process, medians of {args.repeats}):\n"
        + "\n".join(raw_lines)
        + "\n"
    )


def main() -> None:
    """Run the benchmark and append its figures to benchmarks/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=4_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument(
        "--compression", action="store_true", help="measure .bz2 and .gz input against plain"
    )
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.compression:
        try:
            summary = run_compression(args, workdir)
            print(summary)
            if not args.no_append:
                append_results(summary)
        finally:
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
        return
    try:
        small = make_metadata(args.rows, workdir)
        runs: dict[str, list[dict[str, float]]] = {"pandas": [], "turk": []}
        for i in range(args.repeats):
            for kind in ("pandas", "turk"):
                r = measure(kind, small, workdir)
                runs[kind].append(r)
                print(
                    f"[{i + 1}/{args.repeats}] {kind:6s} {r['rows']:,.0f} rows "
                    f"{r['seconds']:.1f} s {r['rows_per_s']:,.0f} rows/s peak {r['peak_mb']:.0f} MB"
                )
        med = {k: statistics.median(r["rows_per_s"] for r in v) for k, v in runs.items()}
        mem = {k: statistics.median(r["peak_mb"] for r in v) for k, v in runs.items()}
        ratios = [
            t["rows_per_s"] / p["rows_per_s"]
            for p, t in zip(runs["pandas"], runs["turk"], strict=True)
        ]
        big_line = ""
        print(f"ratios so far: {', '.join(f'{x:.2f}' for x in ratios)}")
        if args.big_rows:
            shutil.rmtree(small.parent, ignore_errors=True)  # keep disk use to one file
            big = make_metadata(args.big_rows, workdir)
            rb = measure("turk", big, workdir)
            print(
                f"turk {rb['rows']:,.0f} rows {rb['seconds']:.1f} s "
                f"{rb['rows_per_s']:,.0f} rows/s peak {rb['peak_mb']:.0f} MB"
            )
            big_line = (
                f"- turk at {args.big_rows:,} rows: {rb['rows_per_s']:,.0f} rows/s, "
                f"peak {rb['peak_mb']:.0f} MB (ingest {rb['main_mb']:.0f} + largest worker "
                f"{rb['worker_mb']:.0f}; one run)\n"
            )
        summary = (
            f"\n## ingest vs pandas read_csv + to_sql ({datetime.now(UTC):%Y-%m-%d})\n\n"
            f"- command: `.venv/bin/python benchmarks/bench_ingest.py --rows {args.rows} "
            f"--big-rows {args.big_rows} --repeats {args.repeats}`\n"
            f"- machine: {machine()}; Python {platform.python_version()}\n"
            f"- input: `turk sample --metadata-only --n {args.rows}` (25 columns, "
            "~0.25% malformed lines, 1% videos)\n"
            f"- pandas baseline at {args.rows:,} rows: median {med['pandas']:,.0f} rows/s, "
            f"peak {mem['pandas']:.0f} MB\n"
            f"- turk ingest at {args.rows:,} rows: median {med['turk']:,.0f} rows/s, "
            f"peak {mem['turk']:.0f} MB (ingest process + largest worker)\n"
            f"- ratio turk / pandas: median {statistics.median(ratios):.2f}x "
            f"(runs: {', '.join(f'{x:.2f}' for x in ratios)}; target >= 2x)\n"
            f"{big_line}"
        )
        print(summary)
        if not args.no_append:
            if not RESULTS.exists():
                RESULTS.write_text(
                    "# Benchmark results\n\nAppended by the scripts in `benchmarks/`: "
                    "command, machine, date and figures (medians, ratios).\n"
                )
            with RESULTS.open("a", encoding="utf-8") as fh:
                fh.write(summary)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
