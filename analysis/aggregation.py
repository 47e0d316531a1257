"""Answer aggregation: from many noisy answers per task to one label and a posterior.

Every aggregator follows crowd-kit's conventions: hyperparameters go to ``__init__``;
``fit(data, gold=None)`` takes answers (columns ``task, worker, label``) and optional
gold (known labels indexed by task) and returns ``self``; fitted attributes end in
``_``: ``labels_`` (Series indexed by task), ``probas_`` (DataFrame indexed by task,
one column per label, rows sum to 1) and model-specific ones (``skills_``,
``errors_``, ``priors_`` ...). ``fit_predict`` and ``fit_predict_proba`` return
``labels_`` and ``probas_``; ``predict_proba(data)`` scores new answers with the
fitted worker parameters.

Shared behaviour:

- Gold tasks are pinned to their known label in ``probas_`` (probability 1), and
  the EM models learn from them as observed truth.
- Ties are broken toward the smallest label in sort order (labels are sorted).
- ``fit(..., tasks=...)`` gives the task universe: answers about other tasks raise
  :class:`AnalysisError`; tasks without answers get the class prior.
  ``labels=...`` fixes the label set (needed when a class never occurs).
- Smoothing pseudo-counts keep degenerate inputs (all workers agreeing, a worker
  with one answer) finite: no division by zero, no log of zero.

All computations are vectorised over answers (integer codes, ``np.bincount``); the
only Python loops run over EM iterations and over label classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, log_expit

from analysis.answers import EncodedAnswers, FloatArray, IntArray, encode_answers
from analysis.errors import AnalysisError

__all__ = [
    "GLAD",
    "MACE",
    "Aggregator",
    "DawidSkene",
    "GoldMajorityVote",
    "MajorityVote",
    "OneCoinDawidSkene",
]


def _argmax_labels(probas: FloatArray) -> IntArray:
    """Most probable label code per row; ties go to the smallest code."""
    return np.asarray(np.argmax(probas, axis=1), dtype=np.int64)


def _normalize_rows(scores: FloatArray) -> FloatArray:
    """Rows scaled to sum 1; an all-zero row becomes uniform."""
    totals = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / scores.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, scores / np.where(totals > 0, totals, 1.0), uniform)


def _posteriors_from_loglik(
    enc: EncodedAnswers, answer_loglik: FloatArray, log_prior: FloatArray
) -> tuple[FloatArray, float]:
    """Task posteriors from per-answer log-likelihoods of each class.

    Args:
        enc: the encoded answers.
        answer_loglik: shape (n_answers, n_labels): log P(answer | true class k).
        log_prior: shape (n_labels,): log class prior.

    Returns:
        Posteriors (n_tasks, n_labels) and the log marginal likelihood of the answers.
    """
    joint = np.empty((enc.n_tasks, enc.n_labels))
    for k in range(enc.n_labels):
        joint[:, k] = np.bincount(enc.task, weights=answer_loglik[:, k], minlength=enc.n_tasks)
    joint += log_prior[None, :]
    return _normalize_log(joint)


def _normalize_log(joint: FloatArray) -> tuple[FloatArray, float]:
    """Row-normalise log scores (in place); also return the sum of the row log-normalisers."""
    top = joint.max(axis=1, keepdims=True)
    joint -= top
    probas = np.exp(joint, out=joint)
    sums = probas.sum(axis=1, keepdims=True)
    probas /= sums
    return probas, float((np.log(sums) + top).sum())


def _posteriors_right_wrong(
    enc: EncodedAnswers, right: FloatArray, wrong: FloatArray, log_prior: FloatArray
) -> tuple[FloatArray, float]:
    """Task posteriors when an answer's likelihood only depends on whether it is right.

    Args:
        enc: the encoded answers.
        right: per answer, log P(answer | the truth is the answered label).
        wrong: per answer, log P(answer | the truth is a given other label).
        log_prior: log class prior.

    Returns:
        Posteriors (n_tasks, n_labels) and the log marginal likelihood. Two
        bincounts replace the n_answers x n_labels likelihood matrix.
    """
    k = enc.n_labels
    base = np.bincount(enc.task, weights=wrong, minlength=enc.n_tasks)
    joint = np.asarray(
        np.bincount(enc.task * k + enc.label, weights=right - wrong, minlength=enc.n_tasks * k),
        dtype=np.float64,
    ).reshape(enc.n_tasks, k)
    joint += base[:, None]
    joint += log_prior[None, :]
    return _normalize_log(joint)


def _pin_gold(enc: EncodedAnswers, probas: FloatArray) -> FloatArray:
    """Set gold tasks' posteriors to their known label (in place; returned)."""
    if len(enc.gold_tasks):
        probas[enc.gold_tasks] = 0.0
        probas[enc.gold_tasks, enc.gold_labels] = 1.0
    return probas


class Aggregator(ABC):
    """Common fit / predict plumbing of every aggregator.

    Subclasses implement ``_fit_encoded(enc) -> probas`` (an array of shape
    (n_tasks, n_labels)) and may implement ``_predict_encoded`` for new answers.
    """

    labels_: pd.Series
    probas_: pd.DataFrame
    answer_counts_: pd.Series

    def fit(
        self,
        data: pd.DataFrame,
        gold: pd.Series | None = None,
        *,
        tasks: Iterable[Any] | None = None,
        labels: Iterable[Any] | None = None,
    ) -> Self:
        """Fit the model to answers (and gold, when given).

        Args:
            data: answers with columns ``task, worker, label``.
            gold: known labels indexed by task; those tasks are pinned.
            tasks: the task universe (answers outside it raise AnalysisError).
            labels: the label set (fixes classes that never occur).

        Returns:
            self, with ``labels_``, ``probas_`` and the model's parameters set.

        Raises:
            AnalysisError: invalid answers or gold (missing columns, NaN values,
                unknown tasks or labels, no answers at all).
        """
        enc = encode_answers(data, gold, tasks=tasks, labels=labels)
        self._enc_labels = enc.labels
        self._enc_workers = enc.workers
        probas = _pin_gold(enc, self._fit_encoded(enc))
        self._set_results(enc, probas)
        self.answer_counts_ = pd.Series(
            enc.answers_per_task(), index=enc.tasks.rename("task"), name="answers"
        )
        return self

    def fit_predict(
        self,
        data: pd.DataFrame,
        gold: pd.Series | None = None,
        *,
        tasks: Iterable[Any] | None = None,
        labels: Iterable[Any] | None = None,
    ) -> pd.Series:
        """Fit and return the most probable label of each task.

        Args:
            data: answers with columns ``task, worker, label``.
            gold: known labels indexed by task.
            tasks: the task universe.
            labels: the label set.

        Returns:
            ``labels_``: a Series indexed by task.
        """
        return self.fit(data, gold, tasks=tasks, labels=labels).labels_

    def fit_predict_proba(
        self,
        data: pd.DataFrame,
        gold: pd.Series | None = None,
        *,
        tasks: Iterable[Any] | None = None,
        labels: Iterable[Any] | None = None,
    ) -> pd.DataFrame:
        """Fit and return the posterior of each label for each task.

        Args:
            data: answers with columns ``task, worker, label``.
            gold: known labels indexed by task.
            tasks: the task universe.
            labels: the label set.

        Returns:
            ``probas_``: a DataFrame indexed by task, one column per label.
        """
        return self.fit(data, gold, tasks=tasks, labels=labels).probas_

    def predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        """Posteriors of new answers under the fitted worker parameters.

        Workers not seen in ``fit`` get the average fitted worker's parameters.

        Args:
            data: answers with columns ``task, worker, label``; labels must be
                among the fitted labels.

        Returns:
            A DataFrame indexed by task, one column per label.

        Raises:
            AnalysisError: the model is not fitted, or the answers are invalid.
        """
        if not hasattr(self, "probas_"):
            raise AnalysisError(f"{type(self).__name__}: call fit() before predict_proba()")
        enc = encode_answers(data, labels=self._enc_labels)
        worker_map = np.asarray(self._enc_workers.get_indexer(enc.workers), dtype=np.int64)
        probas = self._predict_encoded(enc, worker_map)
        return self._frame(enc, probas)

    def predict(self, data: pd.DataFrame) -> pd.Series:
        """Most probable label of each task for new answers (see :meth:`predict_proba`).

        Args:
            data: answers with columns ``task, worker, label``.

        Returns:
            A Series indexed by task.
        """
        probas = self.predict_proba(data)
        codes = _argmax_labels(probas.to_numpy())
        return pd.Series(probas.columns[codes], index=probas.index, name="label")

    @abstractmethod
    def _fit_encoded(self, enc: EncodedAnswers) -> FloatArray:
        """Fit on encoded answers; return the task posteriors (tasks x labels)."""

    @abstractmethod
    def _predict_encoded(self, enc: EncodedAnswers, worker_map: IntArray) -> FloatArray:
        """Posteriors for new answers; ``worker_map``: new worker code -> fitted code (-1: new)."""

    @staticmethod
    def _frame(enc: EncodedAnswers, probas: FloatArray) -> pd.DataFrame:
        return pd.DataFrame(
            probas,
            index=enc.tasks.rename("task"),
            columns=enc.labels.rename("label"),
        )

    def _set_results(self, enc: EncodedAnswers, probas: FloatArray) -> None:
        self.probas_ = self._frame(enc, probas)
        codes = _argmax_labels(probas)
        self.labels_ = pd.Series(enc.labels[codes], index=enc.tasks.rename("task"), name="label")


def _agreement_skills(enc: EncodedAnswers, task_labels: IntArray) -> pd.Series:
    """Share of each worker's answers that agree with the aggregated label."""
    agree = (enc.label == task_labels[enc.task]).astype(np.float64)
    hits = np.bincount(enc.worker, weights=agree, minlength=enc.n_workers)
    totals = np.bincount(enc.worker, minlength=enc.n_workers)
    return pd.Series(hits / np.maximum(totals, 1), index=enc.workers.rename("worker"), name="skill")


class MajorityVote(Aggregator):
    """Plain majority vote: the most frequent label of each task wins.

    ``probas_`` holds the share of votes of each label; ties go to the smallest
    label. Tasks without answers (only with ``tasks=``) get a uniform row. Gold,
    when given, only pins the gold tasks in the output. ``skills_`` is each
    worker's agreement with the majority.
    """

    skills_: pd.Series

    def _fit_encoded(self, enc: EncodedAnswers) -> FloatArray:
        probas = _normalize_rows(enc.label_counts())
        self.skills_ = _agreement_skills(enc, _argmax_labels(probas))
        return probas

    def _predict_encoded(self, enc: EncodedAnswers, worker_map: IntArray) -> FloatArray:
        return _normalize_rows(enc.label_counts())


class GoldMajorityVote(Aggregator):
    """Majority vote weighted by each worker's accuracy on gold tasks.

    A worker's weight is the posterior mean of their gold accuracy under a
    Beta(``prior_correct``, ``prior_wrong``) prior: ``(correct + a) / (n + a + b)``
    (with a = b = 0 it is the raw accuracy, as in crowd-kit). Workers who answered
    no gold task get ``unknown_weight``, or the mean weight of the workers who
    did when it is None. With ``weighting="log_odds"`` the weight is
    ``log((K - 1) * acc / (1 - acc))`` (the Bayes-optimal vote for a one-coin
    worker), clipped at 0 so below-chance workers are ignored.

    Args:
        prior_correct: Beta prior pseudo-count of correct gold answers.
        prior_wrong: Beta prior pseudo-count of wrong gold answers.
        unknown_weight: weight of workers without gold answers.
        weighting: ``"accuracy"`` or ``"log_odds"``.
    """

    skills_: pd.Series
    weights_: pd.Series

    def __init__(
        self,
        prior_correct: float = 1.0,
        prior_wrong: float = 1.0,
        unknown_weight: float | None = None,
        weighting: str = "accuracy",
    ) -> None:
        if weighting not in ("accuracy", "log_odds"):
            raise AnalysisError(
                f"GoldMajorityVote: weighting must be 'accuracy' or 'log_odds', got {weighting!r}"
            )
        self.prior_correct = prior_correct
        self.prior_wrong = prior_wrong
        self.unknown_weight = unknown_weight
        self.weighting = weighting

    def _fit_encoded(self, enc: EncodedAnswers) -> FloatArray:
        if not len(enc.gold_tasks):
            raise AnalysisError(
                "GoldMajorityVote: no gold task has an answer; pass gold labels for "
                "some answered tasks, or use MajorityVote"
            )
        gold_of_task = np.full(enc.n_tasks, -1, dtype=np.int64)
        gold_of_task[enc.gold_tasks] = enc.gold_labels
        truth = gold_of_task[enc.task]
        on_gold = truth >= 0
        correct = np.bincount(
            enc.worker[on_gold],
            weights=(enc.label[on_gold] == truth[on_gold]).astype(np.float64),
            minlength=enc.n_workers,
        )
        seen = np.bincount(enc.worker[on_gold], minlength=enc.n_workers).astype(np.float64)
        denom = seen + self.prior_correct + self.prior_wrong
        with np.errstate(invalid="ignore", divide="ignore"):
            skills = np.where(denom > 0, (correct + self.prior_correct) / denom, np.nan)
        skills[seen == 0] = np.nan
        weights = self._weights(skills, enc.n_labels)
        known = ~np.isnan(weights)
        default = (
            self.unknown_weight
            if self.unknown_weight is not None
            else (float(weights[known].mean()) if known.any() else 1.0)
        )
        weights = np.where(known, weights, default)
        index = enc.workers.rename("worker")
        self.skills_ = pd.Series(skills, index=index, name="skill")
        self.weights_ = pd.Series(weights, index=index, name="weight")
        self._default_weight = default
        return _normalize_rows(enc.label_counts(weights[enc.worker]))

    def _weights(self, skills: FloatArray, n_labels: int) -> FloatArray:
        if self.weighting == "accuracy":
            return skills
        clipped = np.clip(skills, 1e-6, 1 - 1e-6)
        with np.errstate(invalid="ignore"):
            return np.maximum(np.log(max(n_labels - 1, 1) * clipped / (1 - clipped)), 0.0)

    def _predict_encoded(self, enc: EncodedAnswers, worker_map: IntArray) -> FloatArray:
        fitted = self.weights_.to_numpy()
        weights = np.where(worker_map >= 0, fitted[np.maximum(worker_map, 0)], self._default_weight)
        return _normalize_rows(enc.label_counts(weights[enc.worker]))


class _EMAggregator(Aggregator):
    """Shared EM loop: initialise from majority vote, alternate E and M steps."""

    loss_history_: list[float]
    priors_: pd.Series
    n_iter_: int

    def __init__(self, max_iter: int = 100, tol: float = 1e-5, smoothing: float = 0.01) -> None:
        if max_iter < 1:
            raise AnalysisError(f"{type(self).__name__}: max_iter must be >= 1, got {max_iter}")
        if smoothing < 0:
            raise AnalysisError(f"{type(self).__name__}: smoothing must be >= 0, got {smoothing}")
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing

    @abstractmethod
    def _m_step(self, enc: EncodedAnswers, probas: FloatArray) -> None:
        """Update the worker parameters from the current task posteriors."""

    @abstractmethod
    def _posteriors(
        self, enc: EncodedAnswers, worker_codes: IntArray, log_prior: FloatArray
    ) -> tuple[FloatArray, float]:
        """Task posteriors and log marginal likelihood; ``worker_codes`` may hold -1 (unseen)."""

    def _class_log_prior(self, probas: FloatArray) -> FloatArray:
        counts = probas.sum(axis=0) + self.smoothing
        return np.asarray(np.log(counts / counts.sum()), dtype=np.float64)

    def _fit_encoded(self, enc: EncodedAnswers) -> FloatArray:
        probas = _pin_gold(enc, _normalize_rows(enc.label_counts()))
        self.loss_history_ = []
        previous = -np.inf
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            self._m_step(enc, probas)
            log_prior = self._class_log_prior(probas)
            probas, loglik = self._posteriors(enc, enc.worker, log_prior)
            _pin_gold(enc, probas)
            self.n_iter_ += 1
            loss = loglik / max(enc.n_answers, 1)
            self.loss_history_.append(loss)
            if abs(loss - previous) < self.tol:
                break
            previous = loss
        self._log_prior = self._class_log_prior(probas)
        self.priors_ = pd.Series(
            np.exp(self._log_prior), index=enc.labels.rename("label"), name="prior"
        )
        return probas

    def _predict_encoded(self, enc: EncodedAnswers, worker_map: IntArray) -> FloatArray:
        probas, _ = self._posteriors(enc, worker_map[enc.worker], self._log_prior)
        return probas


class DawidSkene(_EMAggregator):
    """Dawid-Skene: one full confusion matrix per worker, fitted by EM.

    ``errors_[w][true, observed]`` is the probability that worker ``w`` answers
    ``observed`` when the truth is ``true``. Each M-step adds ``smoothing``
    pseudo-counts to every confusion cell and class count, so a worker with a
    single answer or a class nobody chose keeps finite, non-zero probabilities.
    EM starts from majority vote (gold pinned) and stops when the mean log
    likelihood per answer changes by less than ``tol`` or after ``max_iter``
    iterations.

    Args:
        max_iter: maximum number of EM iterations.
        tol: convergence tolerance on the mean log likelihood per answer.
        smoothing: pseudo-count added to each confusion cell and class count.
    """

    errors_: pd.DataFrame
    confusion_: FloatArray

    def _m_step(self, enc: EncodedAnswers, probas: FloatArray) -> None:
        n_w, k = enc.n_workers, enc.n_labels
        flat = enc.worker * k + enc.label
        counts = np.empty((n_w, k, k))
        for true in range(k):
            counts[:, true, :] = np.bincount(
                flat, weights=probas[enc.task, true], minlength=n_w * k
            ).reshape(n_w, k)
        counts += self.smoothing
        totals = counts.sum(axis=2, keepdims=True)
        confusion = counts / np.where(totals > 0, totals, 1.0)
        confusion[:, :, :] = np.where(totals > 0, confusion, 1.0 / k)
        self.confusion_ = confusion
        self._log_confusion = np.log(np.clip(confusion, 1e-300, None))
        self._mean_log_confusion = np.log(np.clip(confusion.mean(axis=0), 1e-300, None))

    def _posteriors(
        self, enc: EncodedAnswers, worker_codes: IntArray, log_prior: FloatArray
    ) -> tuple[FloatArray, float]:
        return _posteriors_from_loglik(enc, self._answer_loglik(enc, worker_codes), log_prior)

    def _answer_loglik(self, enc: EncodedAnswers, worker_codes: IntArray) -> FloatArray:
        known = worker_codes >= 0
        safe = np.maximum(worker_codes, 0)
        out = self._log_confusion[safe, :, enc.label]
        if not known.all():
            out[~known] = self._mean_log_confusion[:, enc.label[~known]].T
        return np.asarray(out, dtype=np.float64)

    def _fit_encoded(self, enc: EncodedAnswers) -> FloatArray:
        probas = super()._fit_encoded(enc)
        self._m_step(enc, probas)
        k = enc.n_labels
        index = pd.MultiIndex.from_product(
            [enc.workers, enc.labels], names=["worker", "true_label"]
        )
        self.errors_ = pd.DataFrame(
            self.confusion_.reshape(enc.n_workers * k, k),
            index=index,
            columns=enc.labels.rename("label"),
        )
        return probas


class OneCoinDawidSkene(_EMAggregator):
    """One-coin Dawid-Skene: each worker is right with one probability (skill).

    A worker with skill ``s`` answers the true label with probability ``s`` and
    each other label with ``(1 - s) / (K - 1)``. The M-step sets ``s`` to the
    posterior-expected share of the worker's answers that are right, with a
    Beta(1 + smoothing, 1 + smoothing)-style pseudo-count; EM as in
    :class:`DawidSkene`.

    Args:
        max_iter: maximum number of EM iterations.
        tol: convergence tolerance on the mean log likelihood per answer.
        smoothing: pseudo-count added to the right and wrong counts of each worker.
    """

    skills_: pd.Series

    def _m_step(self, enc: EncodedAnswers, probas: FloatArray) -> None:
        right = np.bincount(
            enc.worker, weights=probas[enc.task, enc.label], minlength=enc.n_workers
        )
        totals = np.bincount(enc.worker, minlength=enc.n_workers)
        skills = (right + self.smoothing) / (totals + 2 * self.smoothing)
        skills = np.clip(np.nan_to_num(skills, nan=0.5), 1e-6, 1 - 1e-6)
        self._skills = skills
        self.skills_ = pd.Series(skills, index=enc.workers.rename("worker"), name="skill")

    def _posteriors(
        self, enc: EncodedAnswers, worker_codes: IntArray, log_prior: FloatArray
    ) -> tuple[FloatArray, float]:
        skills = np.where(
            worker_codes >= 0, self._skills[np.maximum(worker_codes, 0)], self._skills.mean()
        )
        right = np.log(skills)
        wrong = np.log((1 - skills) / max(enc.n_labels - 1, 1))
        return _posteriors_right_wrong(enc, right, wrong, log_prior)


class GLAD(Aggregator):
    """GLAD (Whitehill et al., 2009): worker ability and task difficulty.

    A worker of ability ``alpha`` answers a task of inverse difficulty
    ``exp(beta)`` correctly with probability ``sigmoid(alpha * exp(beta))``;
    wrong answers are spread evenly over the other labels. The E-step computes
    task posteriors; the M-step maximises the expected complete log likelihood
    plus Gaussian priors ``alpha ~ N(alpha_prior_mean, 1)``,
    ``beta ~ N(beta_prior_mean, 1)`` by ``m_step_max_iter`` warm-started Fisher
    scoring sweeps (all abilities, then all difficulties, each a vectorised
    Newton step with the expected curvature). The class prior stays uniform
    unless ``learn_priors``.

    Args:
        max_iter: maximum number of EM iterations.
        tol: convergence tolerance on the objective per answer.
        m_step_max_iter: scoring sweeps per M-step.
        alpha_prior_mean: prior mean of worker abilities.
        beta_prior_mean: prior mean of log inverse task difficulties.
        learn_priors: re-estimate the class prior each iteration.
    """

    alphas_: pd.Series
    betas_: pd.Series
    priors_: pd.Series
    loss_history_: list[float]
    n_iter_: int

    def __init__(
        self,
        max_iter: int = 100,
        tol: float = 1e-5,
        m_step_max_iter: int = 5,
        alpha_prior_mean: float = 1.0,
        beta_prior_mean: float = 1.0,
        learn_priors: bool = False,
    ) -> None:
        if max_iter < 1 or m_step_max_iter < 1:
            raise AnalysisError("GLAD: max_iter and m_step_max_iter must be >= 1")
        self.max_iter = max_iter
        self.tol = tol
        self.m_step_max_iter = m_step_max_iter
        self.alpha_prior_mean = alpha_prior_mean
        self.beta_prior_mean = beta_prior_mean
        self.learn_priors = learn_priors

    @staticmethod
    def _posteriors(
        enc: EncodedAnswers, alpha: FloatArray, beta: FloatArray, log_prior: FloatArray
    ) -> FloatArray:
        """Task posteriors from per-answer ability ``alpha`` and log inverse difficulty ``beta``."""
        x = alpha * np.exp(beta)
        right = log_expit(x)
        wrong = log_expit(-x) - np.log(max(enc.n_labels - 1, 1))
        return _posteriors_right_wrong(enc, right, wrong, log_prior)[0]

    def _objective(
        self, enc: EncodedAnswers, q: FloatArray, alpha: FloatArray, beta: FloatArray
    ) -> float:
        """Expected complete log likelihood (up to constants) plus the Gaussian log priors."""
        x = alpha[enc.worker] * np.exp(beta)[enc.task]
        value = np.sum(q * log_expit(x) + (1 - q) * log_expit(-x))
        value -= 0.5 * np.sum((alpha - self.alpha_prior_mean) ** 2)
        value -= 0.5 * np.sum((beta - self.beta_prior_mean) ** 2)
        return float(value)

    def _m_step(
        self, enc: EncodedAnswers, q: FloatArray, alpha: FloatArray, beta: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Fisher-scoring sweeps, alternating all abilities and all difficulties.

        With the task posteriors fixed, the objective separates into one
        one-dimensional problem per worker (given the difficulties) and one per
        task (given the abilities); each sweep takes one scoring step on all of
        them at once: gradient and expected curvature are two bincounts each.
        """
        w, t = enc.worker, enc.task
        n_w, n_t = enc.n_workers, enc.n_tasks
        for _ in range(self.m_step_max_iter):
            eb = np.exp(beta)[t]
            x = alpha[w] * eb
            sig = expit(x)
            weight = sig * (1 - sig)
            grad = np.bincount(w, weights=(q - sig) * eb, minlength=n_w) - (
                alpha - self.alpha_prior_mean
            )
            curv = np.bincount(w, weights=weight * eb * eb, minlength=n_w) + 1.0
            alpha = alpha + np.clip(grad / curv, -2.0, 2.0)
            x = alpha[w] * eb
            sig = expit(x)
            weight = sig * (1 - sig)
            grad = np.bincount(t, weights=(q - sig) * x, minlength=n_t) - (
                beta - self.beta_prior_mean
            )
            curv = np.bincount(t, weights=weight * x * x, minlength=n_t) + 1.0
            beta = beta + np.clip(grad / curv, -1.0, 1.0)
        return alpha, beta

    def _fit_encoded(self, enc: EncodedAnswers) -> FloatArray:
        k = enc.n_labels
        alpha = np.full(enc.n_workers, self.alpha_prior_mean)
        beta = np.full(enc.n_tasks, self.beta_prior_mean)
        log_prior = np.full(k, -np.log(k))
        probas = _pin_gold(enc, _normalize_rows(enc.label_counts()))
        self.loss_history_ = []
        previous = -np.inf
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            q = probas[enc.task, enc.label]
            alpha, beta = self._m_step(enc, q, alpha, beta)
            objective = self._objective(enc, q, alpha, beta)
            if self.learn_priors:
                counts = probas.sum(axis=0) + 0.01
                log_prior = np.log(counts / counts.sum())
            probas = _pin_gold(
                enc, self._posteriors(enc, alpha[enc.worker], beta[enc.task], log_prior)
            )
            self.n_iter_ += 1
            loss = objective / max(enc.n_answers, 1)
            self.loss_history_.append(loss)
            if abs(loss - previous) < self.tol:
                break
            previous = loss
        self._alpha, self._log_prior = alpha, log_prior
        self.alphas_ = pd.Series(alpha, index=enc.workers.rename("worker"), name="alpha")
        self.betas_ = pd.Series(beta, index=enc.tasks.rename("task"), name="beta")
        self.priors_ = pd.Series(np.exp(log_prior), index=enc.labels.rename("label"), name="prior")
        return probas

    def _predict_encoded(self, enc: EncodedAnswers, worker_map: IntArray) -> FloatArray:
        mapped = worker_map[enc.worker]
        alpha = np.where(mapped >= 0, self._alpha[np.maximum(mapped, 0)], self._alpha.mean())
        beta = np.full(enc.n_answers, self.beta_prior_mean)
        return self._posteriors(enc, alpha, beta, self._log_prior)


class MACE(Aggregator):
    """MACE (Hovy et al., 2013): workers who sometimes know and sometimes spam.

    Worker ``w`` knows the answer with probability ``1 - spam_w`` and then gives
    the true label; otherwise they answer from their own strategy distribution
    ``strategy_w`` whatever the truth. The class prior is uniform. Fitted by EM
    (``method="em"``, with ``smoothing`` pseudo-counts) or variational Bayes
    (``method="vb"``, Beta(``alpha``, ``beta``) prior on spamming and
    Dirichlet(``strategy_prior``) on strategies), keeping the best of
    ``n_restarts`` random starts (seeded) by log marginal likelihood.

    Args:
        n_restarts: random restarts.
        max_iter: EM iterations per restart.
        method: ``"vb"`` or ``"em"``.
        smoothing: EM pseudo-count (divided by the number of labels).
        alpha: Beta prior pseudo-count of spamming (VB).
        beta: Beta prior pseudo-count of knowing (VB).
        strategy_prior: Dirichlet pseudo-count of each strategy label (VB).
        default_noise: spread of the random initialisation.
        random_state: seed of the restarts.
    """

    spam_: pd.Series
    strategies_: pd.DataFrame
    log_marginal_likelihood_: float

    def __init__(
        self,
        n_restarts: int = 10,
        max_iter: int = 50,
        method: str = "vb",
        smoothing: float = 0.1,
        alpha: float = 0.5,
        beta: float = 0.5,
        strategy_prior: float = 10.0,
        default_noise: float = 0.5,
        random_state: int = 0,
    ) -> None:
        if method not in ("vb", "em"):
            raise AnalysisError(f"MACE: method must be 'vb' or 'em', got {method!r}")
        if n_restarts < 1 or max_iter < 1:
            raise AnalysisError("MACE: n_restarts and max_iter must be >= 1")
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.method = method
        self.smoothing = smoothing
        self.alpha = alpha
        self.beta = beta
        self.strategy_prior = strategy_prior
        self.default_noise = default_noise
        self.random_state = random_state

    def _e_step(
        self, enc: EncodedAnswers, spam: FloatArray, know: FloatArray, strategy: FloatArray
    ) -> tuple[FloatArray, float, FloatArray]:
        """Posteriors, log marginal likelihood and P(knowing | data) per answer.

        ``spam`` and ``know`` are per-worker weights of guessing and knowing (they
        sum to 1 under EM and are sub-normalised under variational Bayes).
        """
        k = enc.n_labels
        guess = spam[enc.worker] * strategy[enc.worker, enc.label]
        knows = know[enc.worker]
        # P(answer | truth) is guess + knows when the answer is the truth, else guess.
        probas, marginal = _posteriors_right_wrong(
            enc, np.log(guess + knows), np.log(np.maximum(guess, 1e-300)), np.full(k, -np.log(k))
        )
        _pin_gold(enc, probas)
        knowing = probas[enc.task, enc.label] * knows / (guess + knows)
        return probas, marginal, knowing

    def _m_step(
        self, enc: EncodedAnswers, knowing: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        k, n_w = enc.n_labels, enc.n_workers
        spamming = 1.0 - knowing
        spam_count = np.bincount(enc.worker, weights=spamming, minlength=n_w)
        know_count = np.bincount(enc.worker, weights=knowing, minlength=n_w)
        strat = np.bincount(
            enc.worker * k + enc.label, weights=spamming, minlength=n_w * k
        ).reshape(n_w, k)
        if self.method == "em":
            smooth = self.smoothing / k
            spam = (spam_count + smooth) / (spam_count + know_count + 2 * smooth)
            strategy = (strat + smooth) / (strat.sum(axis=1, keepdims=True) + k * smooth)
            return spam, 1.0 - spam, strategy
        a = spam_count + self.alpha
        b = know_count + self.beta
        total = digamma(a + b)
        strat_post = strat + self.strategy_prior
        strategy = np.exp(digamma(strat_post) - digamma(strat_post.sum(axis=1, keepdims=True)))
        return np.exp(digamma(a) - total), np.exp(digamma(b) - total), strategy

    def _fit_encoded(self, enc: EncodedAnswers) -> FloatArray:
        rng = np.random.default_rng(self.random_state)
        k, n_w = enc.n_labels, enc.n_workers
        best: tuple[float, FloatArray, FloatArray, FloatArray, FloatArray] | None = None
        for _ in range(self.n_restarts):
            raw_spam = rng.uniform(1, 1 + self.default_noise, size=(n_w, 2))
            spam = raw_spam[:, 0] / raw_spam.sum(axis=1)
            know = 1.0 - spam
            raw_strategy = rng.uniform(1, 1 + self.default_noise, size=(n_w, k))
            strategy = raw_strategy / raw_strategy.sum(axis=1, keepdims=True)
            probas, marginal, knowing = self._e_step(enc, spam, know, strategy)
            for _ in range(self.max_iter):
                spam, know, strategy = self._m_step(enc, knowing)
                probas, marginal, knowing = self._e_step(enc, spam, know, strategy)
            if best is None or marginal > best[0]:
                best = (marginal, probas, spam, know, strategy)
        assert best is not None
        marginal, probas, spam, know, strategy = best
        self._spam, self._know, self._strategy = spam, know, strategy
        self.log_marginal_likelihood_ = marginal
        workers = enc.workers.rename("worker")
        self.spam_ = pd.Series(spam / (spam + know), index=workers, name="spam")
        self.strategies_ = pd.DataFrame(strategy, index=workers, columns=enc.labels.rename("label"))
        return probas

    def _predict_encoded(self, enc: EncodedAnswers, worker_map: IntArray) -> FloatArray:
        mapped = worker_map[enc.worker]
        known = mapped >= 0
        # Score the new answers with a frame whose worker codes index the fitted arrays;
        # unseen workers get the average fitted worker (appended as the last row).
        spam = np.append(self._spam, self._spam.mean())
        know = np.append(self._know, self._know.mean())
        strategy = np.vstack([self._strategy, self._strategy.mean(axis=0, keepdims=True)])
        codes = np.where(known, mapped, len(self._spam))
        remapped = EncodedAnswers(
            task=enc.task,
            worker=np.asarray(codes, dtype=np.int64),
            label=enc.label,
            tasks=enc.tasks,
            workers=pd.Index(range(len(spam))),
            labels=enc.labels,
            gold_tasks=enc.gold_tasks,
            gold_labels=enc.gold_labels,
        )
        probas, _, _ = self._e_step(remapped, spam, know, strategy)
        return probas
