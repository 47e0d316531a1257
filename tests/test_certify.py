"""Precision certification: exact bounds, sample sizes, SPRT, audit sampling, estimates."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from analysis import (
    MODEL_ESTIMATE,
    AnalysisError,
    AuditDecision,
    PrecisionSPRT,
    audit_sample,
    certify_audit,
    certify_precision,
    clopper_pearson_lower,
    clopper_pearson_upper,
    expected_precision,
    hypergeometric_lower,
    required_sample_size,
    required_sample_size_finite,
)


def test_reference_sample_sizes():
    assert required_sample_size(0.99, 0.95, errors=0) == 299
    assert required_sample_size(0.99, 0.95, errors=1) == 473
    assert clopper_pearson_lower(299, 299) >= 0.99 > clopper_pearson_lower(298, 298)
    assert clopper_pearson_lower(472, 473) >= 0.99 > clopper_pearson_lower(471, 472)


@pytest.mark.parametrize(("x", "n"), [(1, 1), (5, 10), (95, 100), (299, 299), (470, 473)])
def test_lower_bound_is_the_exact_binomial_tail_inversion(x, n):
    bound = clopper_pearson_lower(x, n, 0.95)
    # At the bound, seeing x or more successes has probability exactly 5%.
    assert binom.sf(x - 1, n, bound) == pytest.approx(0.05, rel=1e-6)
    upper = clopper_pearson_upper(x, n, 0.95)
    assert upper >= x / n >= bound
    if x < n:
        assert binom.cdf(x, n, upper) == pytest.approx(0.05, rel=1e-6)


def test_edge_bounds_and_bad_counts():
    assert clopper_pearson_lower(0, 10) == 0.0
    assert clopper_pearson_upper(10, 10) == 1.0
    with pytest.raises(AnalysisError, match="correct <= audited"):
        clopper_pearson_lower(11, 10)
    with pytest.raises(AnalysisError, match="confidence"):
        clopper_pearson_lower(1, 2, confidence=1.0)
    with pytest.raises(AnalysisError, match="target"):
        required_sample_size(target=1.0)


def test_certificate_and_census():
    cert = certify_precision(299, 299)
    assert cert.certified and not cert.census and cert.errors == 0
    failed = certify_precision(298, 299)
    assert not failed.certified
    assert failed.needed_with_errors_so_far == 473
    census = certify_precision(50, 50, population=50)
    assert census.census and census.lower_bound == 1.0 and census.certified
    with pytest.raises(AnalysisError, match="cannot exceed the accepted set"):
        certify_precision(60, 60, population=50)


def test_finite_population_sample_sizes():
    # 300 accepted items: 158 clean audits certify 99% at 95%, against 299 for the
    # binomial bound. The bound must reach 297 correct items of 300.
    assert required_sample_size_finite(300, 0.99, 0.95, errors=0) == 158
    assert required_sample_size(0.99, 0.95, errors=0) == 299
    assert hypergeometric_lower(158, 158, 300) == pytest.approx(297 / 300)
    assert hypergeometric_lower(157, 157, 300) < 0.99
    figures = {n: required_sample_size_finite(n, 0.99, 0.95) for n in (30, 100, 1000, 10**5)}
    assert figures == {30: 29, 100: 78, 1000: 238, 10**5: 298}
    assert required_sample_size_finite(300, 0.99, 0.95, errors=1) == 225


def _exact_lower(successes: int, n: int, population: int, confidence: float) -> float:
    alpha = Fraction(1 - confidence)
    total = comb(population, n)
    for k in range(population + 1):
        tail = sum(comb(k, x) * comb(population - k, n - x) for x in range(successes, n + 1))
        if Fraction(tail, total) > alpha:
            return k / population
    raise AssertionError("the tail reaches 1 at K = population")


@pytest.mark.parametrize("n", [0, 1, 5, 12, 25, 39, 40])
def test_hypergeometric_bound_is_the_exact_tail_inversion(n):
    for successes in range(n + 1):
        for confidence in (0.8, 0.95, 0.99):
            assert hypergeometric_lower(successes, n, 40, confidence) == _exact_lower(
                successes, n, 40, confidence
            ), (successes, n, confidence)


@pytest.mark.parametrize("population", [40, 300, 1000])
def test_hypergeometric_bound_is_not_looser_than_clopper_pearson(population):
    # Checked for two or more successes: with a single success the integer grid of
    # K can leave the exact bound a hair under the binomial one (e.g. 1 of 51 in 1000).
    for n in [2, 10, 30, 39, 40, 120, 299, 300, 1000]:
        if n > population:
            continue
        for successes in range(2, n + 1, max(1, n // 40)):
            finite = hypergeometric_lower(successes, n, population, 0.95)
            assert finite >= clopper_pearson_lower(successes, n, 0.95), (successes, n)


def test_hypergeometric_bound_tends_to_clopper_pearson():
    for successes, n in [(299, 299), (298, 299), (470, 473), (50, 100)]:
        binomial = clopper_pearson_lower(successes, n, 0.95)
        finite = hypergeometric_lower(successes, n, 10**6, 0.95)
        assert binomial <= finite <= binomial + 1e-5
        small = hypergeometric_lower(successes, n, 2 * n, 0.95)
        assert small - binomial > finite - binomial


def test_hypergeometric_census_and_bad_input():
    assert hypergeometric_lower(300, 300, 300) == 1.0
    assert hypergeometric_lower(290, 300, 300) == pytest.approx(290 / 300)
    assert hypergeometric_lower(0, 10, 300) == 0.0
    assert hypergeometric_lower(0, 0, 1) == 0.0
    with pytest.raises(AnalysisError, match="cannot exceed the accepted set"):
        hypergeometric_lower(10, 11, 10)
    with pytest.raises(AnalysisError, match="population"):
        hypergeometric_lower(0, 0, 0)
    with pytest.raises(AnalysisError, match="correct <= audited"):
        hypergeometric_lower(11, 10, 300)
    with pytest.raises(AnalysisError, match="correct <= audited"):
        hypergeometric_lower(-1, 10, 300)
    for confidence in (0.0, 1.0, 1.5):
        with pytest.raises(AnalysisError, match="confidence"):
            hypergeometric_lower(5, 10, 300, confidence)
    with pytest.raises(AnalysisError, match="cannot be certified in 30 accepted"):
        required_sample_size_finite(30, 0.99, 0.95, errors=1)
    with pytest.raises(AnalysisError, match="target"):
        required_sample_size_finite(300, target=1.0)
    with pytest.raises(AnalysisError, match="population"):
        required_sample_size_finite(0)
    with pytest.raises(AnalysisError, match="errors"):
        required_sample_size_finite(300, errors=-1)


def test_certificate_with_the_finite_population_bound():
    finite = certify_precision(158, 158, 0.99, 0.95, population=300, finite_population=True)
    assert finite.certified and finite.finite_population and not finite.census
    assert finite.lower_bound == pytest.approx(0.99)
    assert finite.lower_binomial == pytest.approx(clopper_pearson_lower(158, 158, 0.95))
    assert finite.lower_binomial < 0.99
    assert finite.needed_with_errors_so_far == 158
    # The population alone keeps the binomial bound, as before.
    binomial = certify_precision(158, 158, 0.99, 0.95, population=300)
    assert not binomial.certified and not binomial.finite_population
    assert binomial.lower_bound == binomial.lower_binomial == finite.lower_binomial
    assert binomial.needed_with_errors_so_far == 299
    census = certify_precision(49, 50, population=50, finite_population=True)
    assert census.census and census.lower_bound == pytest.approx(0.98)
    with pytest.raises(AnalysisError, match="pass population"):
        certify_precision(10, 10, finite_population=True)


def test_sprt_certifies_after_the_expected_run_of_correct_items():
    sprt = PrecisionSPRT(p0=0.99, p1=0.999, alpha=0.05, beta=0.05)
    needed = sprt.correct_needed_without_error()
    for _ in range(needed - 1):
        assert sprt.update(True) is AuditDecision.CONTINUE
    assert sprt.update(True) is AuditDecision.CERTIFIED
    assert sprt.update(False) is AuditDecision.CERTIFIED  # decided stays decided
    assert sprt.audited == needed


def test_sprt_refutes_on_early_errors_and_continues_when_undecided():
    assert PrecisionSPRT().run([False, False]) is AuditDecision.REFUTED
    assert PrecisionSPRT().run([True] * 10) is AuditDecision.CONTINUE


def test_sprt_error_rates_hold_in_simulation():
    rng = np.random.default_rng(0)
    bad = sum(
        PrecisionSPRT(0.95, 0.99).run(rng.random(5000) < 0.95) is AuditDecision.CERTIFIED
        for _ in range(300)
    )
    good = sum(
        PrecisionSPRT(0.95, 0.99).run(rng.random(5000) < 0.99) is AuditDecision.CERTIFIED
        for _ in range(300)
    )
    assert bad / 300 <= 0.08  # alpha = 0.05 plus simulation noise
    assert good / 300 >= 0.90


def test_sprt_bad_parameters():
    with pytest.raises(AnalysisError, match="p0 < p1"):
        PrecisionSPRT(p0=0.99, p1=0.98)


def accepted_items() -> pd.DataFrame:
    concepts = ["bus"] * 60 + ["camera"] * 40
    buckets = [0, 1] * 50
    return pd.DataFrame({"image_id": range(100), "concept": concepts, "bucket": buckets})


def test_audit_sample_is_seeded_stratified_and_pooled():
    accepted = accepted_items()
    first = audit_sample(accepted, per_stratum=5, pooled=20, seed=7)
    again = audit_sample(accepted, per_stratum=5, pooled=20, seed=7)
    other = audit_sample(accepted, per_stratum=5, pooled=20, seed=8)
    pd.testing.assert_frame_equal(first, again)
    assert not first["image_id"].equals(other["image_id"])
    per = first[first.in_stratum_sample].groupby(["concept", "bucket"]).size()
    assert per.tolist() == [5, 5, 5, 5]
    assert first.in_pooled_sample.sum() == 20
    assert first["image_id"].is_unique
    assert first["audit_rank"].is_monotonic_increasing


def test_audit_sample_is_uniform_within_a_stratum():
    accepted = accepted_items()
    counts = np.zeros(100)
    for seed in range(400):
        sample = audit_sample(accepted, per_stratum=3, seed=seed)
        counts[sample.loc[sample.in_stratum_sample, "image_id"]] += 1
    bus_bucket0 = counts[[i for i in range(60) if i % 2 == 0]]
    # Each of the 30 items is drawn with probability 3/30: 40 times in 400 draws.
    assert abs(bus_bucket0.mean() - 40) < 1e-9
    assert bus_bucket0.min() > 20 and bus_bucket0.max() < 62


def test_audit_sample_larger_than_the_accepted_set():
    accepted = accepted_items()
    with pytest.raises(AnalysisError, match=r"stratum concept='camera', bucket=0 has 20"):
        audit_sample(accepted, per_stratum=25)
    with pytest.raises(AnalysisError, match="pooled sample of 500"):
        audit_sample(accepted, per_stratum=1, pooled=500)
    census = audit_sample(accepted, per_stratum=25, allow_census=True, seed=1)
    assert census[census.concept == "camera"].shape[0] == 40
    with pytest.raises(AnalysisError, match="no accepted items"):
        audit_sample(accepted.iloc[0:0], per_stratum=1)
    with pytest.raises(AnalysisError, match="lack column"):
        audit_sample(accepted.drop(columns="bucket"), per_stratum=1)


def test_certify_audit_per_stratum_and_pooled():
    accepted = accepted_items()
    sample = audit_sample(accepted, per_stratum=25, pooled=30, seed=1, allow_census=True)
    sample["correct"] = sample["image_id"] != sample["image_id"].iloc[0]
    table = certify_audit(sample, accepted, target=0.8)
    assert table["concept"].tolist() == ["bus", "bus", "camera", "camera", "ALL"]
    camera = table[table.concept == "camera"]
    assert camera["census"].all() and camera["population"].tolist() == [20, 20]
    bus = table[table.concept == "bus"].iloc[0]
    assert bus["audited"] == 25 and not bus["census"]
    assert bus["lower_bound"] == pytest.approx(clopper_pearson_lower(int(bus["correct"]), 25, 0.95))
    pooled = table.iloc[-1]
    assert pooled["population"] == 100 and pooled["audited"] == 30
    assert pooled["errors"] == int(sample.loc[sample.in_pooled_sample, "correct"].eq(False).sum())
    with pytest.raises(AnalysisError, match="'correct' column"):
        certify_audit(sample.drop(columns="correct"), accepted)


def test_expected_precision_is_labelled_an_estimate():
    probas = pd.DataFrame(
        {"no": [0.1, 0.2, 0.05, 0.9], "yes": [0.9, 0.8, 0.95, 0.1]},
        index=["a", "b", "c", "d"],
    )
    accepted = pd.Series({"a": "yes", "b": "yes", "c": "yes"})
    strata = pd.DataFrame({"concept": ["bus", "bus", "camera", "bus"]}, index=list("abcd"))
    table = expected_precision(probas, accepted, strata)
    assert table["concept"].tolist() == ["bus", "camera", "ALL"]
    assert table["expected_precision"].tolist() == pytest.approx([0.85, 0.95, 2.65 / 3])
    assert table["expected_errors"].iloc[-1] == pytest.approx(0.35)
    assert (table["basis"] == MODEL_ESTIMATE).all()
    assert "not certified" in MODEL_ESTIMATE


def test_expected_precision_bad_input():
    probas = pd.DataFrame({"yes": [1.0]}, index=["a"])
    with pytest.raises(AnalysisError, match="no posterior"):
        expected_precision(probas, pd.Series({"z": "yes"}))
    with pytest.raises(AnalysisError, match="not among the posterior labels"):
        expected_precision(probas, pd.Series({"a": "maybe"}))
    with pytest.raises(AnalysisError, match="no strata row"):
        expected_precision(probas, pd.Series({"a": "yes"}), pd.DataFrame({"concept": []}))
