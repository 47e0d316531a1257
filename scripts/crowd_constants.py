"""Derive the simulated workers' constants from real crowds (``turk/sandbox/workers.py``).

Reads, in place, the duck and dog answers of ``../shared/datasets/crowd`` (MTurk workers
with the true label of every item; see its README) and prints:

* the 10th, 50th and 90th percentile of honest workers' accuracy (workers with at least
  20 answers and better than chance), pooled over both tasks: the range the simulated
  honest workers' accuracies are drawn from;
* the error rate on the hardest fifth of items (by the crowd's own error rate)
  divided by the error rate on the other items: how much more often a worker errs on
  a hard item (the sample's hard negatives, typographic traps, small objects) than on
  a plain one; and the smaller of the two tasks' error rates on that hardest fifth,
  the cap of an honest worker's error on such an item.

Usage::

    python scripts/crowd_constants.py [--crowd ../shared/datasets/crowd]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crowd", type=Path, default=ROOT.parent.parent / "shared/datasets/crowd")
    args = parser.parse_args()
    accuracies: list[float] = []
    ratios: list[float] = []
    hard_errors: list[float] = []
    for task, chance in (("duck", 0.5), ("dog", 0.25)):
        folder = args.crowd / task
        with (folder / "truth.csv").open(newline="") as fh:
            truth = {r["question"]: r["truth"] for r in csv.DictReader(fh)}
        by_worker: dict[str, list[bool]] = defaultdict(list)
        by_item: dict[str, list[bool]] = defaultdict(list)
        with (folder / "answers.csv").open(newline="") as fh:
            for r in csv.DictReader(fh):
                if r["question"] in truth:
                    right = r["answer"] == truth[r["question"]]
                    by_worker[r["worker"]].append(right)
                    by_item[r["question"]].append(right)
        honest = [float(np.mean(v)) for v in by_worker.values() if len(v) >= 20]
        honest = [a for a in honest if a > chance + 0.1]
        accuracies.extend(honest)
        errors = np.array([1 - np.mean(v) for v in by_item.values()])
        cut = np.quantile(errors, 0.8)
        hard, plain = errors[errors >= cut].mean(), errors[errors < cut].mean()
        ratios.append(float(hard / plain))
        hard_errors.append(float(hard))
        print(
            f"{task}: {len(honest)} honest workers, accuracy p10/p50/p90 "
            f"{np.percentile(honest, 10):.3f}/{np.median(honest):.3f}/"
            f"{np.percentile(honest, 90):.3f}; error on the hardest fifth of items "
            f"{hard:.3f} vs {plain:.3f} on the rest (x{hard / plain:.1f})"
        )
    p10, p50, p90 = np.percentile(accuracies, [10, 50, 90])
    print(
        f"pooled: CROWD_ACCURACY = ({p10:.2f}, {p90:.2f}) (median {p50:.2f}); "
        f"HARD_ERROR_FACTOR = {min(ratios):.1f} (duck, dog: "
        f"{', '.join(f'{r:.1f}' for r in ratios)}); HARD_ERROR_CAP = {min(hard_errors):.2f}"
    )


if __name__ == "__main__":
    main()
