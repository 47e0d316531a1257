"""Benchmark: our Dawid-Skene, GLAD and MACE against crowd-kit's on 1,000,000 answers.

Data: 200,000 binary tasks x 5 answers from 2,000 workers (accuracy ~ Beta(8, 2)
for most, uniform spammers for 10%). Every method runs in its own subprocess that
loads the same arrays, times ``fit_predict`` and reports its peak RSS (ru_maxrss)
and accuracy; the parent reports medians and ratios.

crowd-kit's GLAD and MACE take minutes on the full data (about 570 s and 250 s),
so by default they run on a seeded subsample of tasks (``--sub-tasks``, all their
answers kept) next to ours on the same subsample, and the speed ratio is that of
the subsample. ``--full-baselines`` runs them on the full data instead.

    .venv/bin/python benchmarks/bench_aggregation.py [--repeats 3] [--append]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import append_results, machine

ROOT = Path(__file__).resolve().parents[1]


def make_data(path: Path, tasks: int = 200_000, per_task: int = 5, workers: int = 2_000) -> None:
    rng = np.random.default_rng(2024)
    skill = rng.beta(8, 2, workers)
    spammer = rng.random(workers) < 0.10
    truth = (rng.random(tasks) < 0.4).astype(np.int64)
    task = np.repeat(np.arange(tasks), per_task)
    # Distinct workers per task: a random start and stride modulo the population.
    start = rng.integers(0, workers, tasks)
    stride = rng.integers(1, workers // per_task, tasks)
    worker = ((start[:, None] + stride[:, None] * np.arange(per_task)) % workers).ravel()
    right = rng.random(len(task)) < skill[worker]
    label = np.where(right, truth[task], 1 - truth[task])
    label = np.where(spammer[worker], rng.integers(0, 2, len(task)), label)
    np.savez(path, task=task, worker=worker, label=label, truth=truth)


def run_one(method: str, data_path: str, sub_tasks: int) -> None:
    """Child process: fit one method and print a JSON line."""
    import pandas as pd

    arrays = np.load(data_path)
    frame = pd.DataFrame(
        {"task": arrays["task"], "worker": arrays["worker"], "label": arrays["label"]}
    )
    truth = pd.Series(arrays["truth"])
    if sub_tasks:
        keep = np.random.default_rng(0).permutation(len(truth))[:sub_tasks]
        frame = frame[frame["task"].isin(keep)].reset_index(drop=True)
        truth = truth.loc[np.sort(keep)]
    name, _, model = method.partition(":")
    if name == "ours":
        import analysis

        factory = {
            "ds": analysis.DawidSkene,
            "glad": analysis.GLAD,
            "mace": analysis.MACE,
        }[model]
    else:
        import crowdkit.aggregation as ck

        factory = {"ds": ck.DawidSkene, "glad": ck.GLAD, "mace": ck.MACE}[model]
    start = time.perf_counter()
    labels = factory().fit_predict(frame)
    seconds = time.perf_counter() - start
    accuracy = float((labels.reindex(truth.index).to_numpy() == truth.to_numpy()).mean())
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"seconds": seconds, "rss_mib": rss_mib, "accuracy": accuracy, "answers": len(frame)}
        )
    )


def measure(method: str, data_path: Path, sub_tasks: int, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                method,
                "--data",
                str(data_path),
                "--sub",
                str(sub_tasks),
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={"PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "rss_mib": statistics.median(r["rss_mib"] for r in runs),
        "accuracy": runs[0]["accuracy"],
        "answers": runs[0]["answers"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child")
    parser.add_argument("--data")
    parser.add_argument("--sub", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sub-tasks", type=int, default=10_000)
    parser.add_argument("--full-baselines", action="store_true")
    parser.add_argument("--append", action="store_true", help="append figures to RESULTS.md")
    args = parser.parse_args()
    if args.child:
        run_one(args.child, args.data, args.sub)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "answers.npz"
        make_data(data_path)
        rows = []
        pairs = [("ds", 0, args.repeats)]
        slow_sub = 0 if args.full_baselines else args.sub_tasks
        pairs += [("glad", slow_sub, 1), ("mace", slow_sub, 1)]
        for model, sub, repeats in pairs:
            ours = measure(f"ours:{model}", data_path, sub, repeats)
            theirs = measure(f"crowdkit:{model}", data_path, sub, repeats)
            rows.append((model, sub, repeats, ours, theirs))
            print(model, sub, ours, theirs, flush=True)
        if slow_sub:
            full = {m: measure(f"ours:{m}", data_path, 0, 1) for m in ("glad", "mace")}
        else:
            full = {}
    lines = [
        "",
        f"## Aggregation: ours vs crowd-kit ({dt.date.today().isoformat()})",
        "",
        "Command: `.venv/bin/python benchmarks/bench_aggregation.py"
        + (" --full-baselines" if args.full_baselines else "")
        + f" --repeats {args.repeats}`  ",
        f"Machine: {machine()}; Python {platform.python_version()}; "
        "shared with other work, so noisy.  ",
        "Data: 200,000 binary tasks x 5 answers = 1,000,000 answers, 2,000 workers "
        "(accuracy ~ Beta(8,2), 10% random spammers). Each run in its own subprocess; "
        "time = fit_predict only, memory = peak RSS of the process (ru_maxrss).",
        "",
        "| method | answers | runs (median) | ours s | crowd-kit s | speed-up "
        "| ours MiB | crowd-kit MiB | ours acc | crowd-kit acc |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model, _sub, repeats, ours, theirs in rows:
        lines.append(
            f"| {model} | {ours['answers']:,} | {repeats} | {ours['seconds']:.2f} "
            f"| {theirs['seconds']:.2f} | {theirs['seconds'] / ours['seconds']:.1f}x "
            f"| {ours['rss_mib']:.0f} | {theirs['rss_mib']:.0f} "
            f"| {ours['accuracy']:.4f} | {theirs['accuracy']:.4f} |"
        )
    for model, result in full.items():
        lines.append(
            f"| {model} (ours only, full data) | {result['answers']:,} | 1 "
            f"| {result['seconds']:.2f} | not run "
            f"| - | {result['rss_mib']:.0f} | - | {result['accuracy']:.4f} | - |"
        )
    if full:
        lines.append("")
        lines.append(
            f"GLAD and MACE speed-ups are measured on a seeded subsample of {args.sub_tasks:,} "
            "tasks "
            "(all their answers), both libraries on the same rows; crowd-kit on the full data was "
            "not run here (`--full-baselines` does it; about 570 s for GLAD and 250 s for MACE)."
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        append_results(text)


if __name__ == "__main__":
    main()
