"""Worker quality from gold: counts, Beta posteriors, flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from analysis import AnalysisError, WorkerFlags, worker_confusion, worker_table


def make_answers() -> tuple[pd.DataFrame, pd.Series]:
    """40 binary gold tasks (half yes) answered by four kinds of worker."""
    rng = np.random.default_rng(0)
    tasks = [f"g{i:02d}" for i in range(40)]
    truth = pd.Series(["yes" if i % 2 else "no" for i in range(40)], index=tasks)
    rows = []
    for task, label in truth.items():
        other = "no" if label == "yes" else "yes"
        rows.append((task, "expert", label))
        rows.append((task, "coin", "yes" if rng.random() < 0.5 else "no"))
        rows.append((task, "clicker", "yes"))
        rows.append((task, "decent", label if rng.random() < 0.8 else other))
    rows.append(("extra", "once", "yes"))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), truth


def test_table_counts_posteriors_and_flags():
    data, gold = make_answers()
    table = worker_table(data, gold, positive_label="yes")
    assert table.index.tolist() == ["clicker", "coin", "decent", "expert", "once"]
    expert = table.loc["expert"]
    assert expert["gold_answers"] == 40 and expert["gold_correct"] == 40
    assert expert["accuracy_mean"] == pytest.approx(41 / 42)
    assert expert["accuracy_low"] == pytest.approx(beta.ppf(0.025, 41, 1))
    assert expert["sensitivity_mean"] == pytest.approx(21 / 22)
    assert not expert["spammer"] and not expert["clicker"]
    clicker = table.loc["clicker"]
    assert clicker["sensitivity_mean"] == pytest.approx(21 / 22)
    assert clicker["specificity_mean"] == pytest.approx(1 / 22)
    assert clicker["label_entropy"] == pytest.approx(0.0)
    assert clicker["clicker"] and clicker["spammer"]
    assert table.loc["coin", "spammer"]
    assert not table.loc["decent", "spammer"]
    once = table.loc["once"]
    assert once["answers"] == 1 and once["gold_answers"] == 0
    assert np.isnan(once["accuracy_mean"])
    assert not once["spammer"] and not once["clicker"]


def test_single_gold_answer_gives_a_wide_interval_and_no_flag():
    data = pd.DataFrame([("g", "w", "no")], columns=["task", "worker", "label"])
    table = worker_table(data, pd.Series({"g": "yes"}), positive_label="yes")
    row = table.loc["w"]
    assert row["accuracy"] == 0.0
    assert row["accuracy_high"] - row["accuracy_low"] > 0.6
    assert not row["spammer"] and not row["clicker"]


def test_no_gold_leaves_gold_columns_empty():
    data, _ = make_answers()
    table = worker_table(data, None)
    assert table["gold_answers"].eq(0).all()
    assert table["accuracy_mean"].isna().all()
    assert not table["spammer"].any()
    assert table.loc["clicker", "clicker"]


def test_flag_thresholds_are_configurable():
    data, gold = make_answers()
    strict = worker_table(data, gold, flags=WorkerFlags(min_gold=100))
    assert not strict["spammer"].any()


def test_confusion_counts():
    data, gold = make_answers()
    confusion = worker_confusion(data, gold)
    assert confusion.loc[("clicker", "no")].to_dict() == {"no": 0, "yes": 20}
    assert confusion.loc["expert"].to_numpy().trace() == 40
    assert "once" not in confusion.index.get_level_values("worker")


def test_multiclass_has_no_binary_columns():
    data = pd.DataFrame(
        [("t1", "w", "a"), ("t2", "w", "b"), ("t3", "w", "c")], columns=["task", "worker", "label"]
    )
    table = worker_table(data, pd.Series({"t1": "a", "t2": "c"}))
    assert "sensitivity_mean" not in table.columns
    assert table.loc["w", "gold_correct"] == 1


def test_bad_input_is_named():
    data, gold = make_answers()
    with pytest.raises(AnalysisError, match="positive_label"):
        worker_table(data, gold, positive_label="maybe")
    with pytest.raises(AnalysisError, match="no gold task has an answer"):
        worker_confusion(data, pd.Series({"nowhere": "yes"}))
    broken = data.copy()
    broken.loc[5, "worker"] = np.nan
    with pytest.raises(AnalysisError, match="missing worker"):
        worker_table(broken, gold)
