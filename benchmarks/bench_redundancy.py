"""Benchmark: adaptive redundancy against a fixed 5 answers per item.

1. Simulation: 2,000 workers (60% good ~ Beta(18,2), 25% mediocre ~ Beta(7,3),
   10% random spammers, 5% one-label clickers), each measured on 20 gold items;
   20,000 binary items (70% positive, as for top-ranked candidates). Fixed 5
   random workers per item (aggregated by majority vote and by the skill-weighted
   posterior) against the adaptive policy (min 2, max 5 answers, skipping workers
   below 0.6 estimated skill).
2. Replay of the real ``duck`` and ``dog`` answers: 30% of items serve as gold to
   estimate worker skill; on the other items each item's answers are revealed one
   at a time in a seeded random order until the policy stops. The fixed-5
   baseline takes the first 5 answers in the same order. Medians over 5 orders.

    .venv/bin/python benchmarks/bench_redundancy.py [--append]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import append_results, machine

from analysis import (
    MajorityVote,
    RedundancyPolicy,
    gold_skill_estimates,
    load_crowd_dataset,
    replay,
    simulate_adaptive,
    simulate_fixed,
    simulate_population,
)

ROOT = Path(__file__).resolve().parents[1]
CROWD = ROOT.parent / "shared" / "datasets" / "crowd"


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return float((labels.reindex(truth.index) == truth).mean())


def simulation(lines: list[str]) -> None:
    rng = np.random.default_rng(11)
    population = simulate_population(2_000, seed=12)
    gold = pd.Series(rng.choice(["no", "yes"], 400), index=[f"g{i}" for i in range(400)])
    gold_answers = simulate_fixed(gold, population, per_item=100, seed=13)  # 20 per worker
    skills = gold_skill_estimates(gold_answers, gold)
    n = 20_000
    truth = pd.Series(
        rng.choice(["no", "yes"], n, p=[0.3, 0.7]), index=[f"t{i:05d}" for i in range(n)]
    )
    fixed = simulate_fixed(truth, population, per_item=5, seed=14)
    weighted = RedundancyPolicy(min_skill=0.0, max_answers=5)
    base_mv = accuracy(MajorityVote().fit_predict(fixed), truth)
    base_weighted = accuracy(weighted.decide(fixed, skills)["label"], truth)
    lines += [
        "### Simulation (20,000 binary items, 2,000 workers, gold-estimated skills)",
        "",
        "| collection | answers per item | saving vs fixed 5 | accuracy |",
        "| --- | --- | --- | --- |",
        f"| fixed 5, majority vote | 5.00 | - | {base_mv:.4f} |",
        f"| fixed 5, skill-weighted posterior | 5.00 | - | {base_weighted:.4f} |",
    ]
    for threshold in (0.95, 0.98, 0.99):
        policy = RedundancyPolicy(threshold=threshold, min_answers=2, max_answers=5)
        start = time.perf_counter()
        result = simulate_adaptive(truth, population, policy, skills, seed=15)
        seconds = time.perf_counter() - start
        per_item = len(result.answers) / n
        lines.append(
            f"| adaptive, threshold {threshold} (min 2, max 5, skip skill < 0.6; "
            f"{seconds:.1f} s) | {per_item:.2f} | {1 - per_item / 5:.1%} | {result.accuracy:.4f} |"
        )
    lines.append("")


def replay_dataset(name: str, lines: list[str]) -> None:
    folder = CROWD / name
    if not folder.is_dir():
        lines += [f"({folder} absent: replay of {name} skipped)", ""]
        return
    data = load_crowd_dataset(folder)
    tasks = data.truth.index.to_numpy()
    gold_tasks = tasks[np.random.default_rng(0).random(len(tasks)) < 0.3]
    skills = gold_skill_estimates(data.answers, data.truth.loc[gold_tasks])
    answers = data.answers[~data.answers.task.isin(gold_tasks)].reset_index(drop=True)
    truth = data.truth.drop(gold_tasks)
    per_item_available = len(answers) / len(truth)
    rows: dict[str, list[tuple[float, float]]] = {}
    for seed in range(5):
        order = answers.iloc[np.random.default_rng(seed).permutation(len(answers))]
        first5 = order.groupby("task", sort=False).head(5)
        rows.setdefault("fixed 5 (first five), majority vote", []).append(
            (5.0, accuracy(MajorityVote().fit_predict(first5), truth))
        )
        weighted = RedundancyPolicy(min_skill=0.0, max_answers=5).decide(first5, skills)
        rows.setdefault("fixed 5 (first five), skill-weighted", []).append(
            (5.0, accuracy(weighted["label"], truth))
        )
        for threshold, cap in ((0.95, 5), (0.99, 5), (0.99, 10)):
            policy = RedundancyPolicy(threshold=threshold, min_answers=2, max_answers=cap)
            result = replay(order, policy, skills)
            rows.setdefault(f"adaptive, threshold {threshold}, max {cap}", []).append(
                (
                    result.answers_used / len(truth),
                    accuracy(result.decisions["label"], truth),
                )
            )
    lines += [
        f"### Replay: {name} ({len(truth)} items after holding out 30% as gold; "
        f"{per_item_available:.1f} answers per item available)",
        "",
        "| collection | answers per item (median of 5 orders) | saving vs fixed 5 "
        "| accuracy (median) |",
        "| --- | --- | --- | --- |",
    ]
    for label, values in rows.items():
        per_item = statistics.median(v[0] for v in values)
        acc = statistics.median(v[1] for v in values)
        lines.append(f"| {label} | {per_item:.2f} | {1 - per_item / 5:.1%} | {acc:.4f} |")
    lines.append("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--append", action="store_true", help="append figures to RESULTS.md")
    args = parser.parse_args()
    lines = [
        "",
        f"## Adaptive redundancy vs fixed 5 per item ({dt.date.today().isoformat()})",
        "",
        "Command: `.venv/bin/python benchmarks/bench_redundancy.py`  ",
        f"Machine: {machine()}; Python {platform.python_version()}.",
        "",
    ]
    simulation(lines)
    replay_dataset("duck", lines)
    replay_dataset("dog", lines)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        append_results(text)


if __name__ == "__main__":
    main()
