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

Usage::

    .venv/bin/python benchmarks/bench_ingest.py [--rows 1000000] [--big-rows 4000000]
        [--repeats 3] [--workdir DIR] [--no-append]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import RESULTS, machine

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, resource, sqlite3, sys, time
from common import RESULTS, machine
kind, metadata, db = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
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
        rows = ingest_collection(ledger, [metadata]).total("inserted")
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# Workers are children: count the largest one on top (a bound for the sum).
worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb + worker_mb,
                  "main_mb": peak_mb, "worker_mb": worker_mb}))
"""


def measure(kind: str, metadata: Path, workdir: Path) -> dict[str, float]:
    """Run one ingest in a fresh subprocess and return rows, seconds and peak MB."""
    db_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir))
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, kind, str(metadata), str(db_dir / "bench.db")],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)
    result["rows_per_s"] = result["rows"] / result["seconds"]
    return result


def make_metadata(rows: int, workdir: Path) -> Path:
    """Write ``turk sample --metadata-only --n ROWS`` and return its metadata.tsv."""
    from turk.collection.sample import write_sample

    out = workdir / f"sample-{rows}"
    started = time.perf_counter()
    write_sample(out, n=rows, seed=0, metadata_only=True)
    print(f"sample --metadata-only --n {rows:,}: {time.perf_counter() - started:.1f} s")
    return out / "metadata.tsv"


def main() -> None:
    """Run the benchmark and append its figures to benchmarks/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=4_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
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
