"""Ranking: 128 prompts over 1,000,000 float16 embeddings (512-d) to depth 16,000.

Ours is :func:`retrieval.rank.rank_buckets` over memory-mapped shards (fused matrix
product per chunk + streaming exact top-k). The baseline is faiss-cpu ``IndexFlatIP``
at the same k: load the shards, convert to float32 (faiss needs it), ``add``, ``search``.
Each side runs in its own subprocess, alternating, so that peak RSS
(``ru_maxrss``) is measured per side; the same run checks that both return the same
top-k sets.

Usage::

    .venv/bin/python benchmarks/bench_rank.py [--n 1000000] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import append_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "benchmarks" / ".work" / "rank"
DIM, QUERIES, SHARD = 512, 128, 100_000


def make_shards(n: int) -> Path:
    folder = WORK / f"n{n}"
    done = folder / "done"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index, start in enumerate(range(0, n, SHARD)):
        rows = min(SHARD, n - start)
        x = rng.standard_normal((rows, DIM), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        np.save(folder / f"shard-{index:05d}.npy", x.astype(np.float16))
        np.save(
            folder / f"shard-{index:05d}.ids.npy", np.arange(start, start + rows, dtype=np.int64)
        )
    q = rng.standard_normal((QUERIES, DIM), dtype=np.float32)
    np.save(folder / "queries.npy", q / np.linalg.norm(q, axis=1, keepdims=True))
    done.touch()
    return folder


def shard_files(folder: Path) -> list[tuple[Path, Path]]:
    return [
        (p, p.with_name(p.name.replace(".npy", ".ids.npy")))
        for p in sorted(folder.glob("shard-?????.npy"))
    ]


def child_ours(folder: Path, depth: int, device: str) -> dict:
    import torch  # imported before the clock starts: a fixed cost, not ranking work

    from retrieval.rank import BucketIndex, rank_buckets
    from retrieval.shards import read_shard

    queries = np.load(folder / "queries.npy")
    files = shard_files(folder)
    ids_all = np.concatenate([np.load(i) for _, i in files])
    start = time.perf_counter()
    rankings = rank_buckets(
        (read_shard(v, i) for v, i in files),
        queries,
        BucketIndex(ids_all, np.zeros_like(ids_all)),
        [0],
        depth,
        device=device,
    )
    seconds = time.perf_counter() - start
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    top = [rankings[0][c].ids[:depth].tolist() for c in (0, 1)]
    return {"seconds": seconds, "top": top}


def child_faiss(folder: Path, depth: int) -> dict:
    import faiss

    queries = np.load(folder / "queries.npy")
    files = shard_files(folder)
    start = time.perf_counter()
    index = faiss.IndexFlatIP(DIM)
    for v, _ in files:
        index.add(np.load(v).astype(np.float32))
    added = time.perf_counter()
    _, found = index.search(queries, depth)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "search_seconds": seconds - (added - start),
        "top": [found[c].tolist() for c in (0, 1)],
    }


def child(kind: str, folder: Path, depth: int, device: str) -> None:
    out = child_ours(folder, depth, device) if kind == "ours" else child_faiss(folder, depth)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def run_child(kind: str, folder: Path, depth: int, device: str) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--folder",
            str(folder),
            "--depth",
            str(depth),
            "--device",
            device,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def _runs(results: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.2f}" for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--depth", type=int, default=16_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--child", choices=["ours", "faiss"])
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder, args.depth, args.device)
        return
    folder = make_shards(args.n)
    ours, faiss_runs = [], []
    for _ in range(args.repeats):
        ours.append(run_child("ours", folder, args.depth, args.device))
        if not args.no_faiss:
            faiss_runs.append(run_child("faiss", folder, args.depth, "cpu"))
    if args.device != "cpu":
        cpu = run_child("ours", folder, args.depth, "cpu")
        same_as_cpu = all(
            set(a) == set(b) for r in ours for a, b in zip(r["top"], cpu["top"], strict=True)
        )
    med = statistics.median(r["seconds"] for r in ours)
    peak = max(r["peak_mb"] for r in ours)
    line = (
        f"- ours ({args.device}): median {med:.2f} s (runs {_runs(ours)}), peak RSS {peak:,.0f} MB"
    )
    if args.device != "cpu":
        line += (
            f"\n- same top-k sets as ours on the CPU (fp32 products): {same_as_cpu}; "
            f"CPU run {cpu['seconds']:.2f} s"
        )
    if faiss_runs:
        fmed = statistics.median(r["seconds"] for r in faiss_runs)
        fsearch = statistics.median(r["search_seconds"] for r in faiss_runs)
        fpeak = max(r["peak_mb"] for r in faiss_runs)
        same = all(
            set(a) == set(b)
            for r, f in zip(ours, faiss_runs, strict=True)
            for a, b in zip(r["top"], f["top"], strict=True)
        )
        overlap = min(
            len(set(a) & set(b)) / len(a)
            for r, f in zip(ours, faiss_runs, strict=True)
            for a, b in zip(r["top"], f["top"], strict=True)
        )
        line += (
            f"\n- faiss-cpu IndexFlatIP (load + float32 + add + search): median {fmed:.2f} s "
            f"(runs {_runs(faiss_runs)}; search alone "
            f"{fsearch:.2f} s), peak RSS {fpeak:,.0f} MB\n- speed ratio faiss / ours: "
            f"{fmed / med:.2f}x (vs faiss search alone {fsearch / med:.2f}x); same top-k sets: "
            f"{same} (min overlap {overlap:.4f}; float16 inputs, ties broken differently)"
        )
    print(line)
    if not args.no_append:
        model = ""
        for cpu_line in Path("/proc/cpuinfo").read_text().splitlines():
            if cpu_line.startswith("model name"):
                model = cpu_line.split(":", 1)[1].strip()
                break
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = (
            f"\n## Ranking: {QUERIES} prompts x {args.n:,} embeddings ({DIM}-d float16), depth "
            f"{args.depth:,} ({stamp})\n\n- command: `python benchmarks/bench_rank.py "
            f"{' '.join(sys.argv[1:])}`\n- machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"{model}\n{line}\n"
        )
        append_results(text)


if __name__ == "__main__":
    main()
