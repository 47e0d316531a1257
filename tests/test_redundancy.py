"""Adaptive redundancy: the per-item rule, simulation and replay of real answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import (
    AnalysisError,
    MajorityVote,
    RedundancyPolicy,
    gold_skill_estimates,
    load_crowd_dataset,
    replay,
    simulate_adaptive,
    simulate_fixed,
    simulate_population,
)

CROWD = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "crowd"


def answers(rows):
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_decide_hand_computed_posteriors():
    policy = RedundancyPolicy(threshold=0.95, min_answers=2, max_answers=4, positive_label="yes")
    skills = pd.Series({"good": 0.9, "ok": 0.8})
    data = answers(
        [
            ("agree", "good", "yes"),
            ("agree", "ok", "yes"),
            ("split", "good", "yes"),
            ("split", "ok", "no"),
            ("one", "good", "yes"),
            ("neg", "good", "no"),
            ("neg", "ok", "no"),
        ]
    )
    table = policy.decide(data, skills, labels=["no", "yes"])
    # agree: 0.9 * 0.8 / (0.9 * 0.8 + 0.1 * 0.2) = 0.973 >= 0.95 -> accept.
    assert table.loc["agree", "confidence"] == pytest.approx(0.72 / 0.74)
    assert table.loc["agree", "decision"] == "accept"
    # split: 0.9 * 0.2 / (0.9 * 0.2 + 0.1 * 0.8) = 0.692 -> more.
    assert table.loc["split", "confidence"] == pytest.approx(0.18 / 0.26)
    assert table.loc["split", "decision"] == "more"
    assert table.loc["one", "decision"] == "more"  # below min_answers
    assert table.loc["neg", "decision"] == "reject"


def test_cap_rules_and_skipped_workers():
    data = answers([("t", "a", "yes"), ("t", "b", "no"), ("t", "c", "yes"), ("t", "spam", "no")])
    skills = pd.Series({"a": 0.7, "b": 0.7, "c": 0.7, "spam": 0.5})
    mapped = RedundancyPolicy(max_answers=3, positive_label="yes").decide(data, skills)
    assert mapped.loc["t", "answers"] == 3  # the spammer is below min_skill and ignored
    assert mapped.loc["t", "decision"] == "accept" and mapped.loc["t", "capped"]
    strict = RedundancyPolicy(max_answers=3, positive_label="yes", at_cap="reject")
    assert strict.decide(data, skills).loc["t", "decision"] == "reject"
    skipping = RedundancyPolicy(max_answers=3, skip_workers=frozenset({"c"}))
    assert skipping.decide(data, skills).loc["t", "answers"] == 2
    only_spam = answers([("u", "spam", "yes")])
    table = RedundancyPolicy().decide(only_spam, skills, labels=["no", "yes"])
    assert table.loc["u", "answers"] == 0 and table.loc["u", "decision"] == "more"


def test_policy_bad_input():
    with pytest.raises(AnalysisError, match="min_answers <= max_answers"):
        RedundancyPolicy(min_answers=4, max_answers=2)
    with pytest.raises(AnalysisError, match="threshold"):
        RedundancyPolicy(threshold=1.0)
    with pytest.raises(AnalysisError, match="positive_label"):
        RedundancyPolicy(positive_label="maybe").decide(answers([("t", "w", "yes")]))
    with pytest.raises(AnalysisError, match="unknown task"):
        RedundancyPolicy().decide(answers([("t", "w", "yes")]), tasks=["other"])


def test_simulation_saves_answers_without_losing_accuracy():
    rng = np.random.default_rng(0)
    population = simulate_population(200, seed=1)
    gold = pd.Series(rng.choice(["no", "yes"], 100), index=[f"g{i}" for i in range(100)])
    skills = gold_skill_estimates(simulate_fixed(gold, population, 20, seed=2), gold)
    truth = pd.Series(rng.choice(["no", "yes"], 1500), index=[f"t{i}" for i in range(1500)])
    fixed = simulate_fixed(truth, population, 5, seed=3)
    assert fixed.groupby("task").worker.nunique().eq(5).all()
    fixed_accuracy = (MajorityVote().fit_predict(fixed).reindex(truth.index) == truth).mean()
    policy = RedundancyPolicy(threshold=0.95, min_answers=2, max_answers=5)
    result = simulate_adaptive(truth, population, policy, skills, seed=4)
    assert len(result.answers) <= 0.7 * len(fixed)
    assert result.accuracy >= fixed_accuracy
    assert not result.answers.duplicated(["task", "worker"]).any()
    eligible = policy.eligible(population.index, skills)
    assert result.answers.worker.isin(population.index[eligible]).all()


def test_replay_reveals_answers_in_order_and_stops():
    data = answers(
        [
            ("easy", "a", "yes"),
            ("easy", "b", "yes"),
            ("easy", "c", "no"),
            ("hard", "a", "yes"),
            ("hard", "b", "no"),
            ("hard", "c", "yes"),
            ("hard", "d", "yes"),
            ("short", "a", "yes"),
        ]
    )
    skills = pd.Series(0.9, index=list("abcd"))
    result = replay(data, RedundancyPolicy(threshold=0.95, max_answers=4), skills)
    table = result.decisions
    assert table.loc["easy", "answers"] == 2 and table.loc["easy", "label"] == "yes"
    assert table.loc["hard", "answers"] == 4 and table.loc["hard", "label"] == "yes"
    assert table.loc["short", "exhausted"] and table.loc["short", "capped"]
    assert result.answers_used == 7 and result.answers_available == 8


def test_replay_on_real_duck_answers():
    folder = CROWD / "duck"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    data = load_crowd_dataset(folder)
    tasks = data.truth.index.to_numpy()
    gold_tasks = tasks[np.random.default_rng(0).random(len(tasks)) < 0.3]
    skills = gold_skill_estimates(data.answers, data.truth.loc[gold_tasks])
    evaluation = data.answers[~data.answers.task.isin(gold_tasks)]
    result = replay(
        evaluation, RedundancyPolicy(threshold=0.99, max_answers=15), skills, order_seed=1
    )
    truth = data.truth.drop(gold_tasks)
    accuracy = (result.decisions["label"].reindex(truth.index) == truth).mean()
    assert result.answers_used < 15 * len(truth)
    assert accuracy > 0.75
