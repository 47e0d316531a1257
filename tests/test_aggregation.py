"""Aggregators on hand-computed toy cases, their shared properties and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import (
    GLAD,
    MACE,
    AnalysisError,
    DawidSkene,
    GoldMajorityVote,
    MajorityVote,
    OneCoinDawidSkene,
)


def answers(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


TOY = answers(
    [
        ("t1", "w1", "a"),
        ("t1", "w2", "a"),
        ("t1", "w3", "b"),
        ("t2", "w1", "b"),
        ("t2", "w2", "b"),
        ("t2", "w3", "b"),
    ]
)

ALL_MODELS = [
    MajorityVote,
    lambda: GoldMajorityVote(),
    DawidSkene,
    OneCoinDawidSkene,
    GLAD,
    lambda: MACE(n_restarts=2),
]


def normalise(a: float, b: float) -> tuple[float, float]:
    return a / (a + b), b / (a + b)


def test_majority_vote_shares_and_tie_goes_to_smallest_label():
    data = answers(
        [
            ("t1", "w1", "a"),
            ("t1", "w2", "a"),
            ("t1", "w3", "b"),
            ("t2", "w1", "b"),
            ("t2", "w2", "a"),
        ]
    )
    model = MajorityVote().fit(data)
    assert model.probas_.loc["t1"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert model.probas_.loc["t2"].tolist() == pytest.approx([0.5, 0.5])
    assert model.labels_.to_dict() == {"t1": "a", "t2": "a"}
    # w3 disagrees with the majority on its only answer; w1 agrees on t1 but not t2.
    assert model.skills_.to_dict() == {"w1": 0.5, "w2": 1.0, "w3": 0.0}


def test_gold_majority_vote_weights_by_beta_smoothed_gold_accuracy():
    data = answers(
        [
            ("g1", "w1", "a"),
            ("g2", "w1", "b"),
            ("g1", "w2", "b"),
            ("g2", "w2", "a"),
            ("t", "w1", "b"),
            ("t", "w2", "a"),
            ("t", "w3", "a"),
        ]
    )
    gold = pd.Series({"g1": "a", "g2": "b"})
    model = GoldMajorityVote().fit(data, gold)
    # w1: 2 of 2 right -> (2+1)/(2+2) = 0.75; w2: 0 of 2 -> 1/4; w3 no gold -> mean 0.5.
    assert model.weights_.to_dict() == pytest.approx({"w1": 0.75, "w2": 0.25, "w3": 0.5})
    assert model.probas_.loc["t"].tolist() == pytest.approx([0.75 / 1.5, 0.75 / 1.5])
    assert model.labels_["t"] == "a"  # exact tie -> smallest label
    raw = GoldMajorityVote(prior_correct=0, prior_wrong=0, unknown_weight=0.0).fit(data, gold)
    assert raw.probas_.loc["t"].tolist() == pytest.approx([0.0, 1.0])
    assert raw.labels_.loc[["g1", "g2"]].tolist() == ["a", "b"]  # gold pinned


def test_dawid_skene_one_iteration_matches_hand_computation():
    model = DawidSkene(max_iter=1, smoothing=1.0).fit(TOY)
    # Majority start: t1 = (2/3, 1/3), t2 = (0, 1). Laplace-smoothed M-step:
    # prior (2/3+1, 4/3+1) -> (5/12, 7/12); w1, w2 rows a: (5/8, 3/8), b: (0.4, 0.6);
    # w3 rows a: (3/8, 5/8), b: (0.3, 0.7).
    t1 = normalise(5 / 12 * (5 / 8) ** 2 * (5 / 8), 7 / 12 * 0.4 * 0.4 * 0.7)
    t2 = normalise(5 / 12 * (3 / 8) ** 2 * (5 / 8), 7 / 12 * 0.6 * 0.6 * 0.7)
    assert model.probas_.loc["t1"].tolist() == pytest.approx(t1)
    assert model.probas_.loc["t2"].tolist() == pytest.approx(t2)
    assert model.labels_.to_dict() == {"t1": "a", "t2": "b"}
    errors = model.errors_.loc["w3"]
    assert errors.sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


def test_one_coin_one_iteration_matches_hand_computation():
    model = OneCoinDawidSkene(max_iter=1, smoothing=1.0).fit(TOY)
    # Skills from the majority start: w1 = w2 = (2/3 + 1 + 1) / 4 = 2/3, w3 = (1/3 + 1 + 1) / 4.
    s12, s3 = 2 / 3, 7 / 12
    t1 = normalise(5 / 12 * s12 * s12 * (1 - s3), 7 / 12 * (1 - s12) ** 2 * s3)
    assert model.probas_.loc["t1"].tolist() == pytest.approx(t1)
    assert model.skills_.to_dict()["w3"] == pytest.approx(s3)


def test_glad_posteriors_follow_its_likelihood():
    data = answers(
        [(f"t{i}", w, "a" if (i + j) % 4 else "b") for i in range(6) for j, w in enumerate("pqrs")]
    )
    model = GLAD(max_iter=20).fit(data)
    alpha, beta = model.alphas_, model.betas_
    for task, row in model.probas_.iterrows():
        scores = {}
        for label in ("a", "b"):
            p = 0.5
            for _, ans in data[data.task == task].iterrows():
                right = 1 / (1 + math.exp(-alpha[ans.worker] * math.exp(beta[task])))
                p *= right if ans.label == label else 1 - right
            scores[label] = p
        total = sum(scores.values())
        assert row.tolist() == pytest.approx([scores["a"] / total, scores["b"] / total], rel=1e-6)
    assert model.labels_.eq("a").all()  # three of four say a on every task


def test_mace_posteriors_follow_its_likelihood():
    data = answers(
        [(f"t{i}", w, "a" if (i + j) % 3 else "b") for i in range(6) for j, w in enumerate("pqr")]
    )
    model = MACE(method="em", n_restarts=3, max_iter=30).fit(data)
    spam, strategy = model.spam_, model.strategies_
    for task, row in model.probas_.iterrows():
        scores = {}
        for label in ("a", "b"):
            p = 0.5
            for _, ans in data[data.task == task].iterrows():
                s = spam[ans.worker]
                p *= s * strategy.loc[ans.worker, ans.label] + (1 - s) * (ans.label == label)
            scores[label] = p
        total = sum(scores.values())
        assert row.tolist() == pytest.approx([scores["a"] / total, scores["b"] / total], rel=1e-6)


@pytest.mark.parametrize("make", ALL_MODELS)
def test_probabilities_are_distributions_and_row_order_does_not_matter(make):
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 40)
    rows = []
    for t in range(40):
        for w in range(5):
            label = truth[t] if rng.random() < 0.75 else rng.integers(0, 3)
            rows.append((f"t{t:02d}", f"w{w}", int(label)))
    data = answers(rows)
    gold = pd.Series({f"t{t:02d}": int(truth[t]) for t in range(8)})
    first = make().fit(data, gold)
    second = make().fit(data.sample(frac=1, random_state=1), gold)
    assert np.allclose(first.probas_.sum(axis=1), 1.0)
    assert first.probas_.columns.tolist() == [0, 1, 2]
    pd.testing.assert_frame_equal(first.probas_, second.probas_, atol=1e-6)
    assert first.labels_.loc[gold.index].tolist() == gold.tolist()  # gold pinned
    accuracy = (first.labels_.to_numpy() == truth).mean()
    assert accuracy >= 0.85


@pytest.mark.parametrize("make", ALL_MODELS)
def test_all_workers_agreeing_with_a_fixed_binary_label_set(make):
    data = answers([(f"t{i}", f"w{j}", "yes") for i in range(5) for j in range(3)])
    gold = pd.Series({"t0": "yes"})
    model = make().fit(data, gold, labels=["no", "yes"])
    assert model.probas_.columns.tolist() == ["no", "yes"]
    assert np.isfinite(model.probas_.to_numpy()).all()
    assert model.labels_.eq("yes").all()
    assert (model.probas_["yes"] > 0.5).all()


@pytest.mark.parametrize("make", ALL_MODELS)
def test_worker_with_a_single_answer_gets_finite_parameters(make):
    data = pd.concat([TOY, answers([("t3", "lonely", "a")])])
    gold = pd.Series({"t2": "b"})
    model = make().fit(data, gold)
    assert np.isfinite(model.probas_.to_numpy()).all()
    assert model.labels_["t3"] == "a"


@pytest.mark.parametrize("make", ALL_MODELS)
def test_task_universe_rejects_unknown_items_and_keeps_unanswered_ones(make):
    gold = pd.Series({"t2": "b"})
    with pytest.raises(AnalysisError, match=r"unknown task.*'t2'"):
        make().fit(TOY, gold, tasks=["t1"])
    model = make().fit(TOY, gold, tasks=["t1", "t2", "t9"])
    assert model.answer_counts_["t9"] == 0
    assert model.probas_.loc["t9"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("make", ALL_MODELS)
def test_nan_labels_and_missing_columns_are_rejected(make):
    broken = TOY.copy()
    broken.loc[3, "label"] = None
    with pytest.raises(AnalysisError, match=r"missing label \(rows 3\)"):
        make().fit(broken, pd.Series({"t2": "b"}))
    with pytest.raises(AnalysisError, match="missing column"):
        make().fit(TOY.drop(columns="worker"), pd.Series({"t2": "b"}))
    with pytest.raises(AnalysisError, match="no answers"):
        make().fit(TOY.iloc[0:0], pd.Series({"t2": "b"}))


def test_gold_problems_are_named():
    with pytest.raises(AnalysisError, match="missing label"):
        DawidSkene().fit(TOY, pd.Series({"t1": None, "t2": "b"}))
    with pytest.raises(AnalysisError, match="not among the labels"):
        DawidSkene().fit(TOY, pd.Series({"t1": "c"}), labels=["a", "b"])
    with pytest.raises(AnalysisError, match="no gold task has an answer"):
        GoldMajorityVote().fit(TOY, pd.Series({"elsewhere": "a"}))


@pytest.mark.parametrize("make", [MajorityVote, DawidSkene, OneCoinDawidSkene, GLAD, MACE])
def test_predict_proba_scores_new_answers_with_fitted_workers(make):
    model = make().fit(TOY)
    new = answers([("n1", "w1", "a"), ("n1", "w2", "a"), ("n1", "stranger", "b")])
    probas = model.predict_proba(new)
    assert probas.index.tolist() == ["n1"]
    assert probas.loc["n1"].sum() == pytest.approx(1.0)
    assert model.predict(new)["n1"] == "a"
    with pytest.raises(AnalysisError, match="outside"):
        model.predict_proba(answers([("n2", "w1", "zzz")]))


def test_predict_before_fit_is_an_error():
    with pytest.raises(AnalysisError, match="call fit"):
        DawidSkene().predict_proba(TOY)


def test_bad_hyperparameters_are_named():
    with pytest.raises(AnalysisError, match="max_iter"):
        DawidSkene(max_iter=0)
    with pytest.raises(AnalysisError, match="method"):
        MACE(method="gibbs")
    with pytest.raises(AnalysisError, match="weighting"):
        GoldMajorityVote(weighting="votes")
