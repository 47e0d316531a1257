"""Curation strategies on one sample: what each certified-quality image costs.

Writes a sample collection (``--n`` photos, 5 concepts x 10 labeled buckets), then runs
``turk run`` on it four times, in four projects that differ only in how they verify:

* (a) CLEAR's single pass: the top ``quota`` candidates of each cell, a fixed 5
  answers each, majority vote;
* (b) a single pass sent deeper: the top ``quota / p`` candidates, ``p`` the precision
  (a) measured (accepted / verified), fixed 5 answers, majority vote;
* (c) turk's rounds without re-ranking: 3 answers, Dawid-Skene, the prompt order;
* (d) turk's rounds with re-ranking (per-concept probe) and adaptive redundancy: 2
  answers, and more (``review.extend``, up to 5) only where the posterior is uncertain.

Every project uses the demo model (a small open_clip trained on the sample scenes, not
CLIP), the same seeds, the sample's gold and its simulated workers on the local sandbox
(honest workers of accuracy 0.85-0.98 as a qualification admits, plus the spammers and
always-yes clickers of the sample's crowd). Measures per method, against the sample's
``truth.csv``: cells at quota, accepted images, their precision, answers and dollars per
accepted image, rounds; and the share of the cells that hold at least a quota of true
images within ``query_depth`` that reached it. Appends to ``benchmarks/RESULTS.md``.

Usage::

    python benchmarks/bench_curation.py [--n 20000] [--quota 30]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import socket
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from common import append_results, machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "benchmarks" / ".work" / "curation"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _set(path: Path, key: str, value: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _project(name: str, args: argparse.Namespace, settings: dict[str, Any]) -> Path:
    from turk.project.scaffold import init_project

    folder = WORK / name
    if folder.exists():
        shutil.rmtree(folder)
    init_project(folder, from_sample=True, n=args.n, seed=args.seed, image_size=(96, 72))
    _set(folder / "turk.yaml", "crowd.endpoint", f"http://127.0.0.1:{_free_port()}")
    _set(folder / "turk.yaml", "budget", 100000)
    _set(folder / "concepts.yaml", "settings.images_per_class", args.quota)
    _set(folder / "concepts.yaml", "settings.query_depth", args.depth)
    for key, value in settings.items():
        target = "concepts.yaml" if key.startswith("settings.") else "turk.yaml"
        _set(folder / target, key, value)
    return folder


def _measure(folder: Path, quota: int) -> dict[str, Any]:
    from turk.collection.sample import load_truth

    truth = load_truth(folder / "sample" / "truth.csv")
    report = json.loads((folder / "report" / "report.json").read_text(encoding="utf-8"))
    db = sqlite3.connect(folder / "turk.db")
    items = {(row["concept"], int(row["image_id"])) for row in _accepted(folder)}
    right = sum(1 for c, i in items if truth.get(i) == c)
    answers = int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    dollars = sum(float(row["dollars"]) for row in report["cells"])
    # Cells that hold at least a quota of true images within query_depth (pool included).
    pool = db.execute("SELECT concept, bucket, image_id FROM candidates WHERE role='positive'")
    true_in_pool: dict[tuple[str, int], int] = {}
    for concept, bucket, image_id in pool:
        if truth.get(int(image_id)) == concept:
            true_in_pool[(concept, bucket)] = true_in_pool.get((concept, bucket), 0) + 1
    fillable = {cell for cell, n in true_in_pool.items() if n >= quota}
    at_quota = {(r["concept"], int(r["bucket"])) for r in report["cells"] if r["accepted"] >= quota}
    rounds = report["rounds"]
    second = next((r for r in rounds if r["round"] == 2), None)
    db.close()
    n = len(items)
    return {
        "cells_at_quota": len(at_quota),
        "cells": len(report["cells"]),
        "fillable": len(fillable),
        "fillable_filled": len(fillable & at_quota),
        "accepted": n,
        "precision": right / n if n else float("nan"),
        "answers": answers,
        "answers_per_accepted": answers / n if n else float("nan"),
        "dollars_per_accepted": dollars / n if n else float("nan"),
        "rounds": report["summary"].get("rounds", 1),
        "round2_yield": (second or {}).get("yield"),
        "heldout": [(r["round"], r["heldout_prompt"], r["heldout_rerank"]) for r in rounds],
    }


def _accepted(folder: Path) -> list[dict[str, str]]:
    import csv

    with (folder / "report" / "items.csv").open(encoding="utf-8", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["accepted"] == "True"]


def _run(folder: Path) -> float:
    from turk.project.config import load_project
    from turk.project.pipeline import run_pipeline

    start = time.perf_counter()
    result = run_pipeline(load_project(folder / "turk.yaml"))
    for outcome in result.outcomes:
        if outcome.name == "rounds":
            for line in outcome.lines:
                print(f"    {line}")
    if result.stopped:
        raise SystemExit(f"{folder.name}: {result.stopped}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--quota", type=int, default=30)
    parser.add_argument("--depth", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    single = {
        "rounds.max_rounds": 1,
        "hit_type.max_assignments": 5,
        "hit_type.max_total_assignments": 5,
        "certification.aggregator": "mv",
        "certification.min_posterior": 0.51,
    }
    figures: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    plans: list[tuple[str, str, dict[str, Any]]] = [
        ("a", "single pass, top quota, 5 answers, MV", {**single}),
    ]
    folder = _project("a", args, {"settings.candidates_per_class": args.quota, **single})
    print("(a) single pass")
    seconds["a"] = _run(folder)
    figures["a"] = _measure(folder, args.quota)
    p = figures["a"]["accepted"] / (figures["a"]["cells"] * args.quota)
    deeper = min(args.depth, math.ceil(args.quota / max(p, 1e-6)))
    rounds = {
        "rounds.max_rounds": 6,
        "hit_type.max_assignments": 3,
        "hit_type.max_total_assignments": 5,
        "settings.candidates_per_class": args.quota,
    }
    plans = [
        ("b", f"single pass, top {deeper} (quota/p, p={p:.2f}), 5 answers, MV",
         {"settings.candidates_per_class": deeper, **single}),
        ("c", "rounds, prompt order, 3 answers, DS", {**rounds, "rounds.rerank": False}),
        ("d", "rounds, re-ranked, 2 answers + adaptive redundancy to 5, DS",
         {**rounds, "rounds.rerank": True, "review.extend": True,
          "hit_type.max_assignments": 2}),
    ]  # fmt: skip
    labels = {"a": "single pass, top quota, 5 answers, MV"}
    for key, label, settings in plans:
        labels[key] = label
        print(f"({key}) {label}")
        folder = _project(key, args, settings)
        seconds[key] = _run(folder)
        figures[key] = _measure(folder, args.quota)
    lines = [
        f"\n## Curation strategies ({datetime.now(UTC):%Y-%m-%d})\n",
        f"- command: `python benchmarks/bench_curation.py --n {args.n} --quota {args.quota} "
        f"--depth {args.depth} --seed {args.seed}`",
        f"- machine: {machine()}",
        "- model: the demo model (tiny open_clip trained on the sample scenes, not CLIP); "
        "workers: the sample's simulated crowd on the local sandbox",
        "",
        "| method | cells at quota | fillable cells filled | accepted | precision (truth) "
        "| answers / accepted | $ / accepted | rounds | round-2 yield | minutes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in "abcd":
        f = figures[key]
        y = f["round2_yield"]
        lines.append(
            f"| ({key}) {labels[key]} | {f['cells_at_quota']}/{f['cells']} "
            f"| {f['fillable_filled']}/{f['fillable']} | {f['accepted']} | {f['precision']:.4f} "
            f"| {f['answers_per_accepted']:.2f} | {f['dollars_per_accepted']:.4f} "
            f"| {f['rounds']} | {'-' if y is None else f'{y:.2f}'} | {seconds[key] / 60:.1f} |"
        )
    d, b, c = figures["d"], figures["b"], figures["c"]
    filled = d["fillable_filled"] / d["fillable"] if d["fillable"] else float("nan")
    ratio = d["answers_per_accepted"] / b["answers_per_accepted"]
    checks = [
        (f"(d) fills {filled:.0%} of the fillable cells (target >= 95%)", filled >= 0.95),
        (f"(d) precision against truth {d['precision']:.4f} (target >= 0.99)",
         d["precision"] >= 0.99),
        (f"(d) answers per accepted image {ratio:.2f}x (b)'s (target <= 0.6x)", ratio <= 0.6),
        (
            f"(d) yield of round 2 {d['round2_yield'] or float('nan'):.2f} against (c) "
            f"{c['round2_yield'] or float('nan'):.2f} (target: higher)",
            (d["round2_yield"] or 0) > (c["round2_yield"] or 0),
        ),
    ]  # fmt: skip
    lines.append("")
    for text, ok in checks:
        lines.append(f"- {text}: {'met' if ok else 'MISSED'}")
    held = [h for h in d["heldout"] if h[1] is not None]
    if held:
        lines.append(
            "- (d) held-back verdicts, precision of the better half by prompt vs re-ranked: "
            + ", ".join(f"round {r}: {a:.2f} vs {b_:.2f}" for r, a, b_ in held)
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
