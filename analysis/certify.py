"""Precision certification: exact audit bounds, sequential audits, sampling, estimates.

Two kinds of statement, never mixed:

- **Certified** (audit-based): a uniform random sample of accepted items is checked
  by hand; the exact one-sided Clopper-Pearson lower bound on precision at the given
  confidence is compared with the target. Sampling is without replacement, for
  which the binomial bound is conservative. When a stratum is audited in full (a
  census) its precision is known exactly and the bound is the observed precision.
- **Estimated** (model-based): the expected precision of accepted items from the
  aggregator's posteriors. It is only as good as the model; it guides where to
  audit and is labelled ``model estimate`` everywhere.

For reference: 299 audited items with no error certify precision >= 99% at 95%
confidence; with one error 473 are needed (:func:`required_sample_size`). From a
set of 300 accepted items, 158 audited items with no error certify the same claim
with the exact finite-population bound (:func:`required_sample_size_finite`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta as beta_dist
from scipy.stats import hypergeom

from analysis.errors import AnalysisError

__all__ = [
    "MODEL_ESTIMATE",
    "AuditDecision",
    "Certificate",
    "PrecisionSPRT",
    "audit_sample",
    "certify_audit",
    "certify_precision",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "expected_precision",
    "hypergeometric_lower",
    "required_sample_size",
    "required_sample_size_finite",
]

MODEL_ESTIMATE = "model estimate (posteriors), not certified"


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise AnalysisError(f"confidence must be strictly between 0 and 1, got {confidence}")


def _check_counts(successes: int, n: int) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise AnalysisError(
            f"audit counts: need 0 <= correct <= audited, got correct={successes}, audited={n}"
        )


def _check_population(n: int, population: int) -> None:
    if population < 1 or n > population:
        raise AnalysisError(
            f"audit: need 1 <= population and audited <= population, got "
            f"audited={n}, population={population}; an audit sample cannot exceed "
            f"the accepted set"
        )


def _check_target(target: float) -> None:
    if not 0 < target < 1:
        raise AnalysisError(f"target precision must be strictly between 0 and 1, got {target}")


def clopper_pearson_lower(successes: int, n: int, confidence: float = 0.95) -> float:
    """Exact one-sided Clopper-Pearson lower confidence bound of a proportion.

    Args:
        successes: number of correct items in the sample.
        n: sample size.
        confidence: one-sided confidence level.

    Returns:
        The largest p such that P(X >= successes | p) <= 1 - confidence; 0 when
        there are no successes (or no sample).

    Raises:
        AnalysisError: inconsistent counts or confidence outside (0, 1).
    """
    _check_confidence(confidence)
    _check_counts(successes, n)
    if successes == 0:
        return 0.0
    return float(beta_dist.ppf(1 - confidence, successes, n - successes + 1))


def clopper_pearson_upper(successes: int, n: int, confidence: float = 0.95) -> float:
    """Exact one-sided Clopper-Pearson upper confidence bound of a proportion.

    Args:
        successes: number of correct items in the sample.
        n: sample size.
        confidence: one-sided confidence level.

    Returns:
        The upper bound; 1 when every item is correct (or no sample).

    Raises:
        AnalysisError: inconsistent counts or confidence outside (0, 1).
    """
    _check_confidence(confidence)
    _check_counts(successes, n)
    if successes == n:
        return 1.0
    return float(beta_dist.ppf(confidence, successes + 1, n - successes))


def required_sample_size(target: float = 0.99, confidence: float = 0.95, errors: int = 0) -> int:
    """Smallest audit size that certifies ``precision >= target`` with ``errors`` errors.

    Args:
        target: precision to certify, in (0, 1).
        confidence: one-sided confidence level.
        errors: number of wrong items tolerated in the sample.

    Returns:
        The smallest n whose Clopper-Pearson lower bound with ``n - errors``
        successes reaches ``target`` (299 for 99% at 95% with no error, 473 with one).

    Raises:
        AnalysisError: target or confidence outside (0, 1), or negative errors.
    """
    _check_confidence(confidence)
    _check_target(target)
    if errors < 0:
        raise AnalysisError(f"errors must be >= 0, got {errors}")

    def certifies(n: int) -> bool:
        return clopper_pearson_lower(n - errors, n, confidence) >= target

    high = max(errors + 1, 1)
    while not certifies(high):
        high *= 2
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        if middle > errors and certifies(middle):
            high = middle
        else:
            low = middle
    return high


def hypergeometric_lower(
    successes: int, n: int, population: int, confidence: float = 0.95
) -> float:
    """Exact one-sided lower confidence bound of precision in a finite population.

    The sample is ``n`` items drawn uniformly without replacement from
    ``population`` accepted items, ``successes`` of them correct. With K the
    (unknown) number of correct items in the population and X hypergeometric
    (population, K, n), the bound is ``K_low / population`` where ``K_low`` is
    the smallest integer K in 0..population with
    ``P(X >= successes | population, K, n) > 1 - confidence``. The tail is
    nondecreasing in K, so ``K_low`` is found by binary search (about
    log2(population) evaluations of the hypergeometric tail).

    It never needs the binomial approximation of sampling with replacement, so
    it is tighter than :func:`clopper_pearson_lower` once the sample is a
    sizeable fraction of the population, and tends to it as the population
    grows. (It is not a theorem that it is never below it: with a single
    success the integer grid of K can leave it a hair under the binomial bound.)
    A census (``n == population``) gives ``successes / population`` exactly.

    Args:
        successes: number of correct items in the sample.
        n: sample size.
        population: number of accepted items the sample was drawn from.
        confidence: one-sided confidence level.

    Returns:
        ``K_low / population``; 0 when there are no successes (or no sample).

    Raises:
        AnalysisError: inconsistent counts (need ``0 <= successes <= n <=
            population`` and ``population >= 1``) or confidence outside (0, 1).
    """
    _check_confidence(confidence)
    _check_counts(successes, n)
    _check_population(n, population)
    if successes == 0:
        return 0.0
    alpha = 1 - confidence
    # K < successes makes the tail 0; K = population - (n - successes) makes it 1.
    low, high = successes, population - (n - successes)
    while low < high:
        middle = (low + high) // 2
        if float(hypergeom.sf(successes - 1, population, middle, n)) > alpha:
            high = middle
        else:
            low = middle + 1
    return low / population


def required_sample_size_finite(
    population: int, target: float = 0.99, confidence: float = 0.95, errors: int = 0
) -> int:
    """Smallest audit size that certifies ``precision >= target`` in a finite population.

    A sample of n items with ``errors`` wrong ones certifies the target when
    ``hypergeometric_lower(n - errors, n, population, confidence) >= target``,
    i.e. when ``K_low / population >= target``: the bound is a whole number of
    correct items, so for 300 items and a 99% target it must reach 297. That
    gives 158 audited items with no error at 95% confidence, against 299 for the
    binomial bound (:func:`required_sample_size`), which ignores that the sample
    is drawn without replacement from only 300 items. The bound grows with n for
    a fixed number of errors, so n is found by binary search.

    Args:
        population: number of accepted items the sample is drawn from.
        target: precision to certify, in (0, 1).
        confidence: one-sided confidence level.
        errors: number of wrong items tolerated in the sample.

    Returns:
        The smallest n (at most ``population``) that certifies the target.

    Raises:
        AnalysisError: target or confidence outside (0, 1), population < 1,
            negative errors, or a target that even a census with ``errors``
            errors cannot certify (``(population - errors) / population <
            target``).
    """
    _check_confidence(confidence)
    _check_target(target)
    if population < 1:
        raise AnalysisError(f"population must be >= 1, got {population}")
    if errors < 0:
        raise AnalysisError(f"errors must be >= 0, got {errors}")

    def certifies(n: int) -> bool:
        return hypergeometric_lower(n - errors, n, population, confidence) >= target

    if errors >= population or not certifies(population):
        raise AnalysisError(
            f"a precision of {target:.2%} cannot be certified in {population} accepted "
            f"item(s) with {errors} error(s): even auditing all of them gives "
            f"{max(population - errors, 0) / population:.2%}; tolerate fewer errors or "
            f"lower the target"
        )
    low, high = errors, population  # certifies(errors) is False: no success, bound 0
    while high - low > 1:
        middle = (low + high) // 2
        if certifies(middle):
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True)
class Certificate:
    """The outcome of an audit of one stratum (or of the pooled set).

    Attributes:
        audited: number of items checked.
        correct: number found right.
        population: number of accepted items the sample was drawn from (None: unknown).
        target: precision to certify.
        confidence: one-sided confidence level.
        precision: observed precision of the sample.
        lower_bound: Clopper-Pearson lower bound, or the hypergeometric one when
            ``finite_population`` (exact precision for a census).
        certified: lower_bound >= target.
        census: every accepted item was audited.
        lower_binomial: Clopper-Pearson lower bound of the same counts, kept for
            comparison (0 with no sample); equals ``lower_bound`` unless
            ``finite_population`` or ``census``.
        finite_population: ``lower_bound`` is :func:`hypergeometric_lower` over
            ``population``.
    """

    audited: int
    correct: int
    population: int | None
    target: float
    confidence: float
    precision: float
    lower_bound: float
    certified: bool
    census: bool
    lower_binomial: float = math.nan
    finite_population: bool = False

    @property
    def errors(self) -> int:
        """Number of audited items found wrong."""
        return self.audited - self.correct

    @property
    def needed_with_errors_so_far(self) -> int:
        """Audit size that would certify the target with the errors seen so far.

        With ``finite_population`` it is :func:`required_sample_size_finite`,
        which raises :class:`AnalysisError` when no audit of the population can
        certify the target with that many errors.
        """
        if self.finite_population and self.population is not None:
            return required_sample_size_finite(
                self.population, self.target, self.confidence, self.errors
            )
        return required_sample_size(self.target, self.confidence, self.errors)


def certify_precision(
    correct: int,
    audited: int,
    target: float = 0.99,
    confidence: float = 0.95,
    population: int | None = None,
    *,
    finite_population: bool = False,
) -> Certificate:
    """Certify precision from an audit of a uniform random sample.

    Args:
        correct: audited items found right.
        audited: audited items.
        target: precision to certify.
        confidence: one-sided confidence level.
        population: size of the accepted set the sample came from; when the audit
            covers all of it, the precision is exact (census).
        finite_population: bound precision with the exact hypergeometric bound
            over ``population`` (:func:`hypergeometric_lower`) instead of the
            Clopper-Pearson one, which stays in ``lower_binomial``. Off by
            default: ``population`` alone only detects a census.

    Returns:
        The certificate.

    Raises:
        AnalysisError: inconsistent counts, a sample larger than the population,
            or ``finite_population`` without a population.
    """
    _check_counts(correct, audited)
    if population is not None and audited > population:
        raise AnalysisError(
            f"audit: {audited} audited items but only {population} accepted; "
            f"an audit sample cannot exceed the accepted set"
        )
    if finite_population and population is None:
        raise AnalysisError(
            "audit: the finite-population bound needs the size of the accepted set; pass population"
        )
    census = population is not None and audited == population and audited > 0
    precision = correct / audited if audited else float("nan")
    binomial = clopper_pearson_lower(correct, audited, confidence) if audited else 0.0
    if census:
        lower = precision
    elif audited == 0:
        lower = 0.0
    elif finite_population and population is not None:
        lower = hypergeometric_lower(correct, audited, population, confidence)
    else:
        lower = binomial
    return Certificate(
        audited=audited,
        correct=correct,
        population=population,
        target=target,
        confidence=confidence,
        precision=precision,
        lower_bound=lower,
        certified=audited > 0 and lower >= target,
        census=census,
        lower_binomial=binomial,
        finite_population=finite_population,
    )


class AuditDecision(StrEnum):
    """What a sequential audit says after each item."""

    CERTIFIED = "certified"
    REFUTED = "refuted"
    CONTINUE = "continue"


class PrecisionSPRT:
    """Wald's sequential probability ratio test for precision.

    Tests H0: precision <= p0 against H1: precision >= p1 (p0 < p1) with error
    rates ``alpha`` (certifying when H0 holds) and ``beta`` (refuting when H1
    holds). Feed audited items one at a time with :meth:`update`; it answers
    ``certified`` (accept H1: precision > p0), ``refuted`` (accept H0) or
    ``continue``. After a decision further updates keep returning it.

    Args:
        p0: precision under the null (the claim to beat, e.g. the 99% target).
        p1: precision under the alternative (> p0).
        alpha: probability of certifying when precision <= p0.
        beta: probability of refuting when precision >= p1.
    """

    def __init__(
        self, p0: float = 0.99, p1: float = 0.999, alpha: float = 0.05, beta: float = 0.05
    ):
        if not 0 < p0 < p1 < 1:
            raise AnalysisError(f"SPRT: need 0 < p0 < p1 < 1, got p0={p0}, p1={p1}")
        if not (0 < alpha < 1 and 0 < beta < 1):
            raise AnalysisError(f"SPRT: alpha and beta must be in (0, 1), got {alpha}, {beta}")
        self.p0, self.p1, self.alpha, self.beta = p0, p1, alpha, beta
        self.upper = math.log((1 - beta) / alpha)
        self.lower = math.log(beta / (1 - alpha))
        self.step_correct = math.log(p1 / p0)
        self.step_wrong = math.log((1 - p1) / (1 - p0))
        self.log_ratio = 0.0
        self.audited = 0
        self.correct = 0
        self.decision = AuditDecision.CONTINUE

    def update(self, correct: bool) -> AuditDecision:
        """Add one audited item.

        Args:
            correct: whether the item was right.

        Returns:
            The decision after this item.
        """
        if self.decision is not AuditDecision.CONTINUE:
            return self.decision
        self.audited += 1
        self.correct += int(bool(correct))
        self.log_ratio += self.step_correct if correct else self.step_wrong
        if self.log_ratio >= self.upper:
            self.decision = AuditDecision.CERTIFIED
        elif self.log_ratio <= self.lower:
            self.decision = AuditDecision.REFUTED
        return self.decision

    def run(self, outcomes: Iterable[bool]) -> AuditDecision:
        """Feed outcomes in order until a decision (or the outcomes run out).

        Args:
            outcomes: audited items, right (True) or wrong (False), in audit order.

        Returns:
            The decision; ``continue`` if the outcomes ran out first.
        """
        for outcome in outcomes:
            if self.update(outcome) is not AuditDecision.CONTINUE:
                break
        return self.decision

    def correct_needed_without_error(self) -> int:
        """Number of consecutive correct items that certify from the start."""
        return math.ceil(self.upper / self.step_correct)


def audit_sample(
    accepted: pd.DataFrame,
    per_stratum: int,
    pooled: int = 0,
    *,
    strata: Sequence[str] = ("concept", "bucket"),
    seed: int = 0,
    allow_census: bool = False,
) -> pd.DataFrame:
    """Draw the items to audit: uniform within each stratum, plus a pooled sample.

    Every accepted item gets one seeded random rank. A stratum's sample is its
    ``per_stratum`` lowest-ranked items (a uniform sample without replacement of
    the stratum); the pooled sample is the ``pooled`` lowest-ranked items overall
    (a uniform sample of the whole accepted set, for the dataset-wide claim).
    The two overlap, so one audited item can serve both claims.

    Args:
        accepted: accepted items, one row each, with the ``strata`` columns; any
            other column (item id, label...) is carried along.
        per_stratum: items to draw from each stratum.
        pooled: items to draw from the whole accepted set (0: none).
        strata: columns that define a stratum.
        seed: seed of the ranks.
        allow_census: when a stratum (or the pool) has fewer items than asked,
            audit all of it (a census, flagged) instead of raising.

    Returns:
        The rows of ``accepted`` to audit, in audit order (by rank), with columns
        ``audit_rank``, ``in_stratum_sample``, ``in_pooled_sample`` added.

    Raises:
        AnalysisError: a strata column is missing, a size is negative, or a sample
            is larger than the accepted items it is drawn from (unless
            ``allow_census``); the message names the stratum.
    """
    missing = [c for c in strata if c not in accepted.columns]
    if missing:
        raise AnalysisError(
            f"audit: accepted items lack column(s) {', '.join(missing)}; "
            f"pass a frame with the strata columns {list(strata)}"
        )
    if per_stratum < 0 or pooled < 0:
        raise AnalysisError(f"audit: sample sizes must be >= 0, got {per_stratum} and {pooled}")
    if accepted.empty:
        raise AnalysisError("audit: no accepted items to audit; aggregate and accept items first")
    frame = accepted.reset_index(drop=True).copy()
    rng = np.random.default_rng(seed)
    frame["audit_rank"] = rng.permutation(len(frame))
    sizes = frame.groupby(list(strata), sort=True, dropna=False).size()
    short = sizes[sizes < per_stratum]
    if len(short) and not allow_census:
        key, size = short.index[0], int(short.iloc[0])
        raise AnalysisError(
            f"audit: stratum {_stratum_name(strata, key)} "
            f"has {size} accepted item(s), fewer than the {per_stratum} asked; audit all of it "
            f"(allow_census) or ask for fewer"
        )
    if pooled > len(frame) and not allow_census:
        raise AnalysisError(
            f"audit: pooled sample of {pooled} asked but only {len(frame)} items are accepted; "
            f"audit all of them (allow_census) or ask for fewer"
        )
    within = frame.groupby(list(strata), sort=False, dropna=False)["audit_rank"].rank(
        method="first"
    )
    frame["in_stratum_sample"] = within.to_numpy() <= per_stratum
    frame["in_pooled_sample"] = frame["audit_rank"].to_numpy() < pooled
    chosen = frame[frame["in_stratum_sample"] | frame["in_pooled_sample"]]
    return chosen.sort_values("audit_rank").reset_index(drop=True)


def _stratum_name(strata: Sequence[str], key: Any) -> str:
    values = [
        v.item() if isinstance(v, np.generic) else v
        for v in (key if isinstance(key, tuple) else (key,))
    ]
    return ", ".join(f"{name}={value!r}" for name, value in zip(strata, values, strict=True))


def certify_audit(
    audited: pd.DataFrame,
    accepted: pd.DataFrame,
    *,
    strata: Sequence[str] = ("concept", "bucket"),
    correct_column: str = "correct",
    target: float = 0.99,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Certify precision per stratum and for the whole accepted set.

    Args:
        audited: the output of :func:`audit_sample` with a boolean
            ``correct_column`` filled in (rows not yet audited may hold NaN and
            are left out).
        accepted: all accepted items (for stratum sizes).
        strata: columns that define a stratum.
        correct_column: column holding the audit outcome.
        target: precision to certify.
        confidence: one-sided confidence level.

    Returns:
        One row per stratum plus a last row with every strata column set to
        ``"ALL"`` (the pooled sample): ``population, audited, correct, errors,
        precision, lower_bound, certified, census, target, confidence``.

    Raises:
        AnalysisError: the outcome column is missing.
    """
    if correct_column not in audited.columns:
        raise AnalysisError(
            f"audit: no {correct_column!r} column; record each audited item as right or wrong"
        )
    done = audited[audited[correct_column].notna()]
    sizes = accepted.groupby(list(strata), sort=True, dropna=False).size()
    rows: list[dict[str, Any]] = []

    def row(key: tuple[Any, ...], part: pd.DataFrame, population: int) -> None:
        outcomes = part[correct_column].astype(bool)
        cert = certify_precision(
            int(outcomes.sum()), len(outcomes), target, confidence, population=population
        )
        rows.append(
            dict(zip(strata, key, strict=True))
            | {
                "population": population,
                "audited": cert.audited,
                "correct": cert.correct,
                "errors": cert.errors,
                "precision": cert.precision,
                "lower_bound": cert.lower_bound,
                "certified": cert.certified,
                "census": cert.census,
                "target": target,
                "confidence": confidence,
            }
        )

    stratum_part = done[done["in_stratum_sample"]] if "in_stratum_sample" in done else done
    groups: dict[Any, pd.DataFrame] = {
        (key if isinstance(key, tuple) else (key,)): part
        for key, part in stratum_part.groupby(list(strata), sort=True, dropna=False)
    }
    for key, size in sizes.items():
        key_tuple = key if isinstance(key, tuple) else (key,)
        row(key_tuple, groups.get(key_tuple, stratum_part.iloc[0:0]), int(size))
    pooled_part = done[done["in_pooled_sample"]] if "in_pooled_sample" in done else done
    row(tuple("ALL" for _ in strata), pooled_part, len(accepted))
    return pd.DataFrame(rows)


def expected_precision(
    probas: pd.DataFrame,
    accepted: pd.Series,
    strata: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Model-based expected precision of accepted items (an estimate, not a certificate).

    The expected precision of a set of accepted items is the mean posterior
    probability of the label each was accepted with; the expected number of
    wrong items is the sum of the complements.

    Args:
        probas: posteriors, indexed by task, one column per label.
        accepted: the accepted label of each accepted task (indexed by task).
        strata: optional frame indexed by task with the strata columns
            (e.g. concept, bucket); without it one pooled row is returned.

    Returns:
        One row per stratum and a final ``ALL`` row: ``accepted,
        expected_precision, expected_errors, basis`` where ``basis`` says it is a
        model estimate.

    Raises:
        AnalysisError: an accepted task has no posterior, or its label is not a
            posterior column, or it has no strata row.
    """
    missing = accepted.index.difference(probas.index)
    if len(missing):
        raise AnalysisError(
            f"expected_precision: {len(missing)} accepted task(s) have no posterior "
            f"(e.g. {missing[0]!r}); aggregate their answers first"
        )
    columns = probas.columns.get_indexer(pd.Index(accepted.to_numpy()))
    if (columns < 0).any():
        bad = accepted.to_numpy()[columns < 0][0]
        raise AnalysisError(
            f"expected_precision: accepted label {bad!r} is not among the posterior labels "
            f"{list(probas.columns)}"
        )
    rows = probas.index.get_indexer(accepted.index)
    confidence = pd.Series(probas.to_numpy()[rows, columns], index=accepted.index)
    out: list[dict[str, Any]] = []
    names: list[str] = []
    if strata is not None:
        names = list(strata.columns)
        lacking = accepted.index.difference(strata.index)
        if len(lacking):
            raise AnalysisError(
                f"expected_precision: accepted task {lacking[0]!r} has no strata row"
            )
        keyed = strata.loc[accepted.index]
        for key, part in confidence.groupby([keyed[c] for c in names], sort=True):
            key_tuple = key if isinstance(key, tuple) else (key,)
            out.append(dict(zip(names, key_tuple, strict=True)) | _estimate(part))
    out.append(dict.fromkeys(names, "ALL") | _estimate(confidence))
    return pd.DataFrame(out)


def _estimate(confidence: pd.Series) -> dict[str, Any]:
    n = len(confidence)
    return {
        "accepted": n,
        "expected_precision": float(confidence.mean()) if n else float("nan"),
        "expected_errors": float((1 - confidence).sum()),
        "basis": MODEL_ESTIMATE,
    }
