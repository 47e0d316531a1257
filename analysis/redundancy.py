"""Adaptive redundancy: ask for another answer only where it can change the outcome.

:class:`RedundancyPolicy` looks at the answers an item has so far, weighs each by
its worker's estimated skill (one-coin model: a worker of skill ``s`` gives the true
label with probability ``s`` and each other label with ``(1 - s) / (K - 1)``), and
decides per item:

- ``accept``: the posterior of the most probable label reached ``threshold``
  (with ``positive_label`` set: that label is the positive one);
- ``reject``: with ``positive_label`` set, the item is confidently not positive;
  or the item reached ``max_answers`` without reaching the threshold and
  ``at_cap="reject"``;
- ``more``: fewer than ``min_answers`` answers, or not confident yet.

At ``max_answers`` with ``at_cap="map"`` the most probable label is taken
whatever its posterior (flagged ``capped``). Answers by workers whose skill is
below ``min_skill`` or who are in ``skip_workers`` are ignored, and those workers
are not asked (:meth:`RedundancyPolicy.eligible`).

The module also holds a simulator of a realistic worker population
(:func:`simulate_population`, :func:`simulate_fixed`, :func:`simulate_adaptive`)
and :func:`replay`, which reveals real answers one at a time per item in a fixed
order and stops where the policy stops.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import logsumexp

from analysis.answers import FloatArray, IntArray, encode_answers, validate_answers
from analysis.errors import AnalysisError

__all__ = [
    "RedundancyPolicy",
    "ReplayResult",
    "SimulationResult",
    "gold_skill_estimates",
    "replay",
    "simulate_adaptive",
    "simulate_fixed",
    "simulate_population",
]

DECISIONS = ("accept", "reject", "more")


@dataclass(frozen=True)
class RedundancyPolicy:
    """Per-item accept / reject / ask-for-more rule (see the module docstring).

    Attributes:
        threshold: posterior needed to decide.
        min_answers: answers every item gets before any decision.
        max_answers: answers after which no more are asked.
        positive_label: the label that means "accept" (binary verification);
            None: any confident label is accepted.
        default_skill: skill of workers without an estimate.
        min_skill: workers estimated below this are skipped.
        skip_workers: workers never asked and whose answers are ignored.
        at_cap: ``"map"`` (take the most probable label at the cap) or
            ``"reject"`` (do not accept an item that never reached the threshold).
        skill_bounds: estimated skills are clipped to this range, so no single
            answer is ever treated as certain.
    """

    threshold: float = 0.99
    min_answers: int = 2
    max_answers: int = 5
    positive_label: Any = None
    default_skill: float = 0.7
    min_skill: float = 0.6
    skip_workers: frozenset[Any] = field(default_factory=frozenset)
    at_cap: str = "map"
    skill_bounds: tuple[float, float] = (0.05, 0.98)

    def __post_init__(self) -> None:
        if not 0.5 <= self.threshold < 1:
            raise AnalysisError(f"policy: threshold must be in [0.5, 1), got {self.threshold}")
        if not 1 <= self.min_answers <= self.max_answers:
            raise AnalysisError(
                f"policy: need 1 <= min_answers <= max_answers, got "
                f"{self.min_answers} and {self.max_answers}"
            )
        if self.at_cap not in ("map", "reject"):
            raise AnalysisError(f"policy: at_cap must be 'map' or 'reject', got {self.at_cap!r}")

    def skill_of(self, workers: Iterable[Any], skills: pd.Series | None) -> FloatArray:
        """Estimated skill of each worker (default for unknown ones), clipped.

        Args:
            workers: worker ids.
            skills: estimated accuracy indexed by worker (None: all default).

        Returns:
            One skill per worker.
        """
        index = pd.Index(list(workers))
        if skills is None:
            values = np.full(len(index), self.default_skill)
        else:
            values = skills.reindex(index).to_numpy(dtype=np.float64, na_value=np.nan)
            values = np.where(np.isnan(values), self.default_skill, values)
        return np.clip(values, *self.skill_bounds)

    def eligible(self, workers: Iterable[Any], skills: pd.Series | None) -> npt.NDArray[np.bool_]:
        """Whether each worker may be asked (skill high enough, not skipped).

        Args:
            workers: worker ids.
            skills: estimated accuracy indexed by worker.

        Returns:
            A boolean array, one entry per worker.
        """
        index = pd.Index(list(workers))
        raw = (
            np.full(len(index), self.default_skill)
            if skills is None
            else skills.reindex(index).to_numpy(dtype=np.float64, na_value=np.nan)
        )
        raw = np.where(np.isnan(raw), self.default_skill, raw)
        skipped = index.isin(list(self.skip_workers))
        return np.asarray((raw >= self.min_skill) & ~skipped, dtype=bool)

    def decide(
        self,
        answers: pd.DataFrame,
        skills: pd.Series | None = None,
        *,
        labels: Iterable[Any] | None = None,
        tasks: Iterable[Any] | None = None,
    ) -> pd.DataFrame:
        """Decide every item from the answers it has so far.

        Args:
            answers: answers with columns ``task, worker, label``.
            skills: estimated worker accuracy indexed by worker (e.g. the
                ``accuracy_mean`` column of :func:`analysis.workers.worker_table`).
            labels: the label set (needed when a class may not occur yet).
            tasks: the task universe; tasks without answers get ``more``.

        Returns:
            A DataFrame indexed by task: ``answers`` (counted answers),
            ``label`` (most probable), ``confidence`` (its posterior),
            ``decision`` (accept / reject / more), ``capped`` (decided at the cap
            without reaching the threshold).

        Raises:
            AnalysisError: invalid answers, or ``positive_label`` not a label.
        """
        frame = validate_answers(answers, tasks=tasks, labels=labels)
        if tasks is None:
            # Items answered only by skipped workers stay in the table (as "more").
            tasks = list(pd.unique(frame["task"]))
        if labels is None:
            labels = list(pd.unique(frame["label"]))
        frame = frame[self.eligible(frame["worker"], skills)]
        enc = encode_answers(frame, tasks=tasks, labels=labels)
        k = enc.n_labels
        skill = self.skill_of(enc.workers, skills)[enc.worker]
        right = np.log(skill)
        wrong = np.log((1 - skill) / max(k - 1, 1))
        joint = np.zeros((enc.n_tasks, k))
        for c in range(k):
            joint[:, c] = np.bincount(
                enc.task, weights=np.where(enc.label == c, right, wrong), minlength=enc.n_tasks
            )
        probas = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
        best = np.argmax(probas, axis=1)
        confidence = probas[np.arange(enc.n_tasks), best]
        counts = enc.answers_per_task()
        confident = (confidence >= self.threshold) & (counts >= self.min_answers)
        at_cap = counts >= self.max_answers
        decision = np.full(enc.n_tasks, "more", dtype=object)
        if self.positive_label is None:
            decision[confident] = "accept"
            capped = at_cap & ~confident
            decision[capped] = "accept" if self.at_cap == "map" else "reject"
        else:
            if self.positive_label not in enc.labels:
                raise AnalysisError(
                    f"policy: positive_label {self.positive_label!r} is not one of the labels "
                    f"{list(enc.labels)}"
                )
            positive = int(enc.labels.get_indexer(pd.Index([self.positive_label]))[0])
            is_positive = best == positive
            decision[confident & is_positive] = "accept"
            decision[confident & ~is_positive] = "reject"
            capped = at_cap & ~confident
            cap_accept = capped & is_positive & (self.at_cap == "map")
            decision[capped] = "reject"
            decision[cap_accept] = "accept"
        return pd.DataFrame(
            {
                "answers": counts,
                "label": enc.labels[best],
                "confidence": confidence,
                "decision": decision,
                "capped": capped,
            },
            index=enc.tasks.rename("task"),
        )


def gold_skill_estimates(
    answers: pd.DataFrame, gold: pd.Series, prior: tuple[float, float] = (1.0, 1.0)
) -> pd.Series:
    """Posterior mean accuracy of each worker on gold (Beta prior), for the policy.

    Args:
        answers: answers with columns ``task, worker, label``.
        gold: known labels indexed by task.
        prior: Beta prior pseudo-counts (correct, wrong).

    Returns:
        A Series indexed by worker; workers without gold answers are left out
        (the policy gives them ``default_skill``).
    """
    frame = validate_answers(answers)
    truth = frame["task"].map(gold)
    on_gold = truth.notna().to_numpy()
    part = frame[on_gold]
    correct = (part["label"].to_numpy() == truth.to_numpy()[on_gold]).astype(float)
    grouped = pd.DataFrame({"worker": part["worker"].to_numpy(), "correct": correct}).groupby(
        "worker"
    )["correct"]
    estimate = (grouped.sum() + prior[0]) / (grouped.count() + prior[0] + prior[1])
    return estimate.rename("skill")


@dataclass(frozen=True)
class ReplayResult:
    """Outcome of replaying real answers under a policy.

    Attributes:
        decisions: one row per task (see :meth:`RedundancyPolicy.decide`), plus
            ``exhausted`` (the item ran out of answers before a decision).
        answers_used: answers revealed before every item stopped.
        answers_available: eligible answers in the data.
    """

    decisions: pd.DataFrame
    answers_used: int
    answers_available: int


def replay(
    answers: pd.DataFrame,
    policy: RedundancyPolicy,
    skills: pd.Series | None = None,
    *,
    order_seed: int | None = None,
    labels: Iterable[Any] | None = None,
) -> ReplayResult:
    """Replay real answers: reveal each item's answers one at a time until the policy stops.

    Answers of ineligible workers are never revealed (the policy would not have
    asked them). Items are revealed in their row order, or in a seeded random
    order per item when ``order_seed`` is given.

    Args:
        answers: answers with columns ``task, worker, label``.
        policy: the policy.
        skills: estimated worker accuracy indexed by worker.
        order_seed: seed of the reveal order (None: row order).
        labels: the label set (default: those in the answers).

    Returns:
        The decisions, answers used and answers available.

    Raises:
        AnalysisError: invalid answers.
    """
    frame = validate_answers(answers).reset_index(drop=True)
    if labels is None:
        labels = list(pd.unique(frame["label"]))
    all_tasks = list(pd.unique(frame["task"]))
    frame = frame[policy.eligible(frame["worker"], skills)]
    if order_seed is not None:
        frame = frame.iloc[np.random.default_rng(order_seed).permutation(len(frame))]
    position = frame.groupby("task", sort=False).cumcount().to_numpy()
    available = frame.groupby("task", sort=False).size().reindex(all_tasks, fill_value=0)
    final: list[pd.DataFrame] = []
    open_tasks = pd.Index(all_tasks)
    for k in range(policy.min_answers, policy.max_answers + 1):
        shown = frame[(position < k) & frame["task"].isin(open_tasks).to_numpy()]
        decided = policy.decide(shown, skills, labels=labels, tasks=open_tasks)
        exhausted = available.reindex(decided.index).to_numpy() <= k
        decided["exhausted"] = exhausted & (decided["decision"] == "more").to_numpy()
        stop = (decided["decision"] != "more").to_numpy() | exhausted
        final.append(decided[stop])
        open_tasks = decided.index[~stop]
        if not len(open_tasks):
            break
    decisions = pd.concat(final)
    ran_out = decisions["decision"] == "more"
    if ran_out.any():
        # Out of answers before the threshold: the cap rule applies to what was seen.
        fallback = "accept" if policy.at_cap == "map" else "reject"
        if policy.positive_label is not None and policy.at_cap == "map":
            fallback_values = np.where(
                decisions.loc[ran_out, "label"] == policy.positive_label, "accept", "reject"
            )
            decisions.loc[ran_out, "decision"] = fallback_values
        else:
            decisions.loc[ran_out, "decision"] = fallback
        decisions.loc[ran_out, "capped"] = True
    return ReplayResult(
        decisions=decisions.sort_index(),
        answers_used=int(decisions["answers"].sum()),
        answers_available=len(frame),
    )


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of a simulated collection.

    Attributes:
        answers: every answer bought (task, worker, label).
        decisions: final label per task (and, for the adaptive run, the policy's
            decision table).
        accuracy: share of tasks whose final label is the truth.
    """

    answers: pd.DataFrame
    decisions: pd.DataFrame
    accuracy: float


def simulate_population(
    n_workers: int,
    *,
    seed: int = 0,
    good_share: float = 0.6,
    mediocre_share: float = 0.25,
    spammer_share: float = 0.1,
) -> pd.DataFrame:
    """A realistic worker population.

    Good workers have accuracy ~ Beta(18, 2) (mean 0.9), mediocre ones
    ~ Beta(7, 3) (mean 0.7), spammers answer uniformly at random, and the rest
    are clickers who always give the same label (the first one).

    Args:
        n_workers: population size.
        seed: random seed.
        good_share: share of good workers.
        mediocre_share: share of mediocre workers.
        spammer_share: share of random spammers (clickers take the remainder).

    Returns:
        A DataFrame indexed by worker id (``w00000``...) with ``kind`` and
        ``accuracy`` (NaN for spammers and clickers, whose accuracy depends on
        the label mix).

    Raises:
        AnalysisError: shares outside [0, 1] or summing above 1.
    """
    shares = (good_share, mediocre_share, spammer_share)
    if min(shares) < 0 or sum(shares) > 1 + 1e-9:
        raise AnalysisError(f"population: shares must be >= 0 and sum to <= 1, got {shares}")
    rng = np.random.default_rng(seed)
    kinds = rng.choice(
        np.array(["good", "mediocre", "spammer", "clicker"]),
        size=n_workers,
        p=[*shares, max(0.0, 1 - sum(shares))],
    )
    accuracy = np.where(
        kinds == "good",
        rng.beta(18, 2, n_workers),
        np.where(kinds == "mediocre", rng.beta(7, 3, n_workers), np.nan),
    )
    index = pd.Index([f"w{i:05d}" for i in range(n_workers)], name="worker")
    return pd.DataFrame({"kind": kinds, "accuracy": accuracy}, index=index)


def _answer(
    truth: IntArray, workers: IntArray, population: pd.DataFrame, k: int, rng: np.random.Generator
) -> IntArray:
    """Simulated labels for (truth, worker) pairs."""
    kinds = population["kind"].to_numpy()[workers]
    accuracy = population["accuracy"].to_numpy()[workers]
    right = rng.random(len(truth)) < np.nan_to_num(accuracy)
    other = (truth + rng.integers(1, k, len(truth))) % k if k > 1 else truth
    labels = np.where(right, truth, other)
    labels = np.where(kinds == "spammer", rng.integers(0, k, len(truth)), labels)
    labels = np.where(kinds == "clicker", 0, labels)
    return np.asarray(labels, dtype=np.int64)


def _draw_workers(
    n: int,
    pool: IntArray,
    used: IntArray,
    tasks: IntArray,
    n_workers: int,
    rng: np.random.Generator,
) -> IntArray:
    """One worker per task from ``pool``, never one who already answered that task.

    ``used`` holds the (task * n_workers + worker) codes of the answers so far.
    """
    chosen = pool[rng.integers(0, len(pool), n)]
    for _ in range(100):
        clash = np.isin(tasks * n_workers + chosen, used)
        if not clash.any():
            break
        chosen[clash] = pool[rng.integers(0, len(pool), int(clash.sum()))]
    return chosen


def _frame(
    tasks: IntArray,
    workers: IntArray,
    labels: IntArray,
    task_ids: pd.Index,
    population: pd.DataFrame,
    label_values: pd.Index,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task": task_ids[tasks],
            "worker": population.index[workers],
            "label": label_values[labels],
        }
    )


def simulate_fixed(
    truth: pd.Series,
    population: pd.DataFrame,
    per_item: int = 5,
    *,
    seed: int = 0,
    labels: Collection[Any] | None = None,
) -> pd.DataFrame:
    """Fixed redundancy: every item gets ``per_item`` answers from distinct random workers.

    Args:
        truth: true label of each task (indexed by task).
        population: from :func:`simulate_population`.
        per_item: answers per item.
        seed: random seed.
        labels: the label set (default: sorted labels of ``truth``).

    Returns:
        The answers (task, worker, label).
    """
    rng = np.random.default_rng(seed)
    label_values = pd.Index(sorted(labels if labels is not None else truth.unique()))
    truth_codes = label_values.get_indexer(truth.to_numpy())
    n_tasks, n_workers = len(truth), len(population)
    if per_item > n_workers:
        raise AnalysisError(f"simulation: {per_item} answers per item but only {n_workers} workers")
    tasks = np.repeat(np.arange(n_tasks), per_item)
    # Distinct workers per task: a random offset walk modulo the population size.
    start = rng.integers(0, n_workers, n_tasks)
    step = rng.integers(1, max(n_workers // per_item, 2), n_tasks)
    workers = (start[:, None] + step[:, None] * np.arange(per_item)[None, :]) % n_workers
    workers = workers.ravel()
    answers = _answer(truth_codes[tasks], workers, population, len(label_values), rng)
    return _frame(tasks, workers, answers, truth.index, population, label_values)


def simulate_adaptive(
    truth: pd.Series,
    population: pd.DataFrame,
    policy: RedundancyPolicy,
    skills: pd.Series | None,
    *,
    seed: int = 0,
    labels: Collection[Any] | None = None,
) -> SimulationResult:
    """Adaptive redundancy: ask eligible workers one answer at a time per open item.

    Every item first gets ``min_answers`` answers, then each round every item the
    policy leaves open gets one more, until none is open.

    Args:
        truth: true label of each task (indexed by task).
        population: from :func:`simulate_population`.
        policy: the redundancy policy.
        skills: the skill estimates the policy sees (e.g. from gold).
        seed: random seed.
        labels: the label set (default: sorted labels of ``truth``).

    Returns:
        The answers bought, the policy's final decisions and the accuracy of the
        final labels.

    Raises:
        AnalysisError: no eligible worker.
    """
    rng = np.random.default_rng(seed)
    label_values = pd.Index(sorted(labels if labels is not None else truth.unique()))
    truth_codes = label_values.get_indexer(truth.to_numpy())
    n_workers = len(population)
    pool = np.flatnonzero(policy.eligible(population.index, skills))
    if len(pool) < policy.max_answers:
        raise AnalysisError(
            f"simulation: only {len(pool)} eligible workers for up to "
            f"{policy.max_answers} answers per item; lower min_skill"
        )
    used = np.zeros(0, dtype=np.int64)
    parts: list[tuple[IntArray, IntArray, IntArray]] = []
    open_tasks = np.arange(len(truth))
    rounds = 0
    while len(open_tasks):
        batch = open_tasks if rounds else np.repeat(open_tasks, policy.min_answers)
        workers = np.empty(len(batch), dtype=np.int64)
        # The first round asks several workers per task; draw them one slot at a time.
        slots = 1 if rounds else policy.min_answers
        for slot in range(slots):
            part = batch[slot::slots] if slots > 1 else batch
            chosen = _draw_workers(len(part), pool, used, part, n_workers, rng)
            used = np.concatenate([used, part * n_workers + chosen])
            workers[slot::slots] = chosen
        answers = _answer(truth_codes[batch], workers, population, len(label_values), rng)
        parts.append((batch, workers, answers))
        rounds += 1
        all_answers = _frame(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            truth.index,
            population,
            label_values,
        )
        decided = policy.decide(all_answers, skills, labels=label_values, tasks=truth.index)
        still = (decided["decision"] == "more").to_numpy()
        open_tasks = truth.index.get_indexer(decided.index[still])
    accuracy = float((decided["label"].reindex(truth.index) == truth).mean())
    return SimulationResult(answers=all_answers, decisions=decided, accuracy=accuracy)
