"""Worker quality measured on gold tasks.

For every worker: how many answers, how many on gold, accuracy with a Beta
posterior (mean and equal-tailed credible interval), for binary tasks sensitivity
and specificity with their own Beta posteriors, the entropy of the worker's answer
distribution, and two flags:

- ``spammer``: near-random on gold. With at least ``min_gold`` gold answers, the
  posterior probability that the worker's accuracy is at most chance plus
  ``chance_margin`` is at least ``spam_probability``; or, for binary tasks,
  sensitivity + specificity is within ``youden_margin`` of 1 (answers carry no
  information about the truth, whatever the label mix).
- ``clicker``: with at least ``min_answers`` answers, the normalised entropy of
  the worker's labels is at most ``clicker_entropy`` (nearly always the same label).

Workers with too little evidence are never flagged (a worker with one answer has a
wide interval and no flag); workers who answered no gold task have NaN gold
columns. Chance is ``1 / K`` for K labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta as beta_dist

from analysis.answers import EncodedAnswers, FloatArray, encode_answers
from analysis.errors import AnalysisError

__all__ = ["WorkerFlags", "worker_confusion", "worker_table"]


@dataclass(frozen=True)
class WorkerFlags:
    """Thresholds of the spammer and clicker flags (see the module docstring)."""

    min_gold: int = 10
    chance_margin: float = 0.1
    spam_probability: float = 0.9
    youden_margin: float = 0.15
    min_answers: int = 10
    clicker_entropy: float = 0.1


def _beta_summary(
    successes: FloatArray, trials: FloatArray, prior: tuple[float, float], credible: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Posterior mean and credible interval of a Beta-binomial rate (NaN where no trials)."""
    a = successes + prior[0]
    b = trials - successes + prior[1]
    tail = (1 - credible) / 2
    mean = a / (a + b)
    low = beta_dist.ppf(tail, a, b)
    high = beta_dist.ppf(1 - tail, a, b)
    none = trials == 0
    for arr in (mean, low, high):
        arr[none] = np.nan
    return mean, low, high


def _gold_codes(enc: EncodedAnswers) -> tuple[np.ndarray, np.ndarray]:
    gold_of_task = np.full(enc.n_tasks, -1, dtype=np.int64)
    gold_of_task[enc.gold_tasks] = enc.gold_labels
    truth = gold_of_task[enc.task]
    return truth, truth >= 0


def worker_confusion(answers: pd.DataFrame, gold: pd.Series) -> pd.DataFrame:
    """Per-worker confusion counts on gold tasks.

    Args:
        answers: answers with columns ``task, worker, label``.
        gold: known labels indexed by task.

    Returns:
        A DataFrame indexed by (worker, true_label), one column per answered label,
        holding counts; only workers with at least one gold answer appear.

    Raises:
        AnalysisError: invalid answers or gold, or no gold task was answered.
    """
    enc = encode_answers(answers, gold)
    truth, on_gold = _gold_codes(enc)
    if not on_gold.any():
        raise AnalysisError("gold: no gold task has an answer; cannot measure workers")
    k = enc.n_labels
    flat = (enc.worker[on_gold] * k + truth[on_gold]) * k + enc.label[on_gold]
    counts = np.bincount(flat, minlength=enc.n_workers * k * k).reshape(enc.n_workers * k, k)
    index = pd.MultiIndex.from_product([enc.workers, enc.labels], names=["worker", "true_label"])
    frame = pd.DataFrame(counts, index=index, columns=enc.labels.rename("label"))
    seen = np.bincount(enc.worker[on_gold], minlength=enc.n_workers) > 0
    return frame[np.repeat(seen, k)]


def worker_table(
    answers: pd.DataFrame,
    gold: pd.Series | None,
    *,
    positive_label: Any = None,
    prior: tuple[float, float] = (1.0, 1.0),
    credible: float = 0.95,
    flags: WorkerFlags | None = None,
) -> pd.DataFrame:
    """A tidy table of workers: volume, gold accuracy, posteriors and flags.

    Args:
        answers: answers with columns ``task, worker, label``.
        gold: known labels indexed by task (None: only volume and entropy columns,
            gold columns NaN, no spammer flags).
        positive_label: for binary tasks, the label counted as positive for
            sensitivity and specificity (default: the larger of the two labels).
        prior: Beta prior pseudo-counts (successes, failures) for every rate.
        credible: mass of the equal-tailed credible intervals.
        flags: flag thresholds.

    Returns:
        A DataFrame indexed by worker with columns ``answers, gold_answers,
        gold_correct, accuracy`` (raw share correct on gold), ``accuracy_mean,
        accuracy_low, accuracy_high`` (Beta posterior), ``p_near_chance``,
        ``sensitivity_mean/low/high, specificity_mean/low/high`` (binary tasks
        only), ``top_label, top_label_share, label_entropy`` (normalised to
        [0, 1]), ``spammer, clicker`` (bool). Sorted by worker.

    Raises:
        AnalysisError: invalid answers or gold, or an unknown positive label.
    """
    flags = flags or WorkerFlags()
    enc = encode_answers(answers, gold)
    k, n_w = enc.n_labels, enc.n_workers
    chance = 1.0 / max(k, 2)
    per_label = np.bincount(enc.worker * k + enc.label, minlength=n_w * k).reshape(n_w, k)
    totals = per_label.sum(axis=1).astype(np.float64)
    shares = per_label / np.maximum(totals, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(shares > 0, shares * np.log(shares), 0.0), axis=1)
    entropy = entropy / np.log(k) if k > 1 else np.zeros(n_w)
    table = pd.DataFrame(index=enc.workers.rename("worker"))
    table["answers"] = totals.astype(np.int64)

    truth, on_gold = _gold_codes(enc)
    seen = np.bincount(enc.worker[on_gold], minlength=n_w).astype(np.float64)
    correct = np.bincount(
        enc.worker[on_gold],
        weights=(enc.label[on_gold] == truth[on_gold]).astype(np.float64),
        minlength=n_w,
    ).astype(np.float64)
    table["gold_answers"] = seen.astype(np.int64)
    table["gold_correct"] = correct.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["accuracy"] = np.where(seen > 0, correct / np.maximum(seen, 1), np.nan)
    mean, low, high = _beta_summary(correct, seen, prior, credible)
    table["accuracy_mean"], table["accuracy_low"], table["accuracy_high"] = mean, low, high
    near_chance = beta_dist.cdf(  # P(accuracy <= chance + margin) under the posterior
        chance + flags.chance_margin, correct + prior[0], seen - correct + prior[1]
    )
    near_chance[seen == 0] = np.nan
    table["p_near_chance"] = near_chance
    enough_gold = seen >= flags.min_gold
    spammer = enough_gold & (np.nan_to_num(near_chance) >= flags.spam_probability)

    if k == 2:
        positive = enc.labels[1] if positive_label is None else positive_label
        if positive not in enc.labels:
            raise AnalysisError(
                f"worker_table: positive_label {positive!r} is not one of the labels "
                f"{list(enc.labels)}"
            )
        pos = int(enc.labels.get_indexer(pd.Index([positive]))[0])
        rates = {}
        for name, is_class in (("sensitivity", pos), ("specificity", 1 - pos)):
            mask = on_gold & (truth == is_class)
            n = np.bincount(enc.worker[mask], minlength=n_w).astype(np.float64)
            hit = np.bincount(
                enc.worker[mask],
                weights=(enc.label[mask] == is_class).astype(np.float64),
                minlength=n_w,
            ).astype(np.float64)
            m, lo, hi = _beta_summary(hit, n, prior, credible)
            table[f"{name}_mean"], table[f"{name}_low"], table[f"{name}_high"] = m, lo, hi
            rates[name] = (m, n)
        youden = rates["sensitivity"][0] + rates["specificity"][0] - 1.0
        both_seen = (rates["sensitivity"][1] >= flags.min_gold / 2) & (
            rates["specificity"][1] >= flags.min_gold / 2
        )
        spammer |= (
            enough_gold
            & both_seen
            & (np.abs(np.nan_to_num(youden, nan=1.0)) <= flags.youden_margin)
        )

    top = np.argmax(per_label, axis=1)
    table["top_label"] = enc.labels[top]
    table["top_label_share"] = shares[np.arange(n_w), top]
    table["label_entropy"] = entropy
    table["spammer"] = spammer
    table["clicker"] = (totals >= flags.min_answers) & (entropy <= flags.clicker_entropy)
    return table
