"""Validation and integer encoding of crowd answers.

Answers are a DataFrame with columns ``task, worker, label`` (one row per answer);
gold is a Series of known labels indexed by task. Every model in :mod:`analysis`
factorizes the three columns to integer codes once, here, and then works on numpy
arrays.

Ordering conventions (they make every result deterministic):

- labels are sorted (by value; by first appearance when the values cannot be
  compared), so label code 0 is the smallest label and ties between labels are
  broken toward the smallest label;
- tasks and workers are sorted the same way, so result frames are indexed in sort
  order whatever the row order of the answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.errors import AnalysisError

ANSWER_COLUMNS = ("task", "worker", "label")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _sorted_index(values: Iterable[Any]) -> pd.Index:
    """Unique values as an Index, sorted when comparable, else in first-seen order."""
    unique = pd.unique(pd.Series(list(values) if not isinstance(values, pd.Series) else values))
    try:
        return pd.Index(np.sort(np.asarray(unique))) if len(unique) else pd.Index(unique)
    except TypeError:
        return pd.Index(unique)


def _describe(values: Iterable[Any], limit: int = 3) -> str:
    """A short printable list of offending values for an error message."""
    items = [repr(v) for v in list(values)[:limit]]
    return ", ".join(items)


def validate_answers(
    data: pd.DataFrame,
    tasks: Iterable[Any] | None = None,
    labels: Iterable[Any] | None = None,
) -> pd.DataFrame:
    """Check an answers frame and return its ``task, worker, label`` columns.

    Args:
        data: answers, one row per answer, with columns ``task, worker, label``
            (other columns are ignored).
        tasks: the universe of task ids, when known; an answer about any other
            task is an error (it refers to an item that was never published).
        labels: the allowed labels, when known; any other label is an error.

    Returns:
        The three columns, in the original row order.

    Raises:
        AnalysisError: a column is missing, a value is missing (NaN/None), a task
            is outside ``tasks`` or a label outside ``labels``; the message names
            the first offending rows.
    """
    if not isinstance(data, pd.DataFrame):
        raise AnalysisError(
            f"answers must be a pandas DataFrame with columns task, worker, label; "
            f"got {type(data).__name__}"
        )
    missing = [c for c in ANSWER_COLUMNS if c not in data.columns]
    if missing:
        raise AnalysisError(
            f"answers: missing column(s) {', '.join(missing)}; "
            f"pass a DataFrame with columns task, worker, label"
        )
    frame = data.loc[:, list(ANSWER_COLUMNS)]
    for column in ANSWER_COLUMNS:
        null = frame[column].isna().to_numpy()
        if null.any():
            rows = frame.index[null]
            raise AnalysisError(
                f"answers: {int(null.sum())} row(s) with a missing {column} "
                f"(rows {_describe(rows)}); drop or fix them before aggregating"
            )
    if tasks is not None:
        universe = pd.Index(pd.unique(pd.Series(list(tasks), dtype=object)))
        unknown = ~frame["task"].isin(universe).to_numpy()
        if unknown.any():
            bad = pd.unique(frame["task"].to_numpy()[unknown])
            raise AnalysisError(
                f"answers: {int(unknown.sum())} answer(s) refer to {len(bad)} unknown "
                f"task(s) ({_describe(bad)}); they are not among the published items, "
                f"drop them or pass the full task list"
            )
    if labels is not None:
        allowed = pd.Index(list(labels))
        unknown = ~frame["label"].isin(allowed).to_numpy()
        if unknown.any():
            bad = pd.unique(frame["label"].to_numpy()[unknown])
            raise AnalysisError(
                f"answers: {int(unknown.sum())} answer(s) have label(s) outside "
                f"{list(allowed)} ({_describe(bad)}); fix the answers or the label list"
            )
    return frame


def validate_gold(gold: pd.Series | None) -> pd.Series | None:
    """Check a gold Series (known labels indexed by task).

    Args:
        gold: known labels indexed by task, or None.

    Returns:
        The gold Series, or None.

    Raises:
        AnalysisError: gold is not a Series, has a missing label, or names a task
            twice with different labels.
    """
    if gold is None:
        return None
    if not isinstance(gold, pd.Series):
        raise AnalysisError(
            f"gold must be a pandas Series of labels indexed by task; got {type(gold).__name__}"
        )
    null = gold.isna().to_numpy()
    if null.any():
        raise AnalysisError(
            f"gold: {int(null.sum())} task(s) with a missing label "
            f"({_describe(gold.index[null])}); drop them or give their labels"
        )
    if not gold.index.is_unique:
        grouped = gold.groupby(level=0).nunique()
        conflicting = grouped.index[grouped.to_numpy() > 1]
        if len(conflicting):
            raise AnalysisError(
                f"gold: task(s) {_describe(conflicting)} have conflicting known labels; "
                f"keep one label per gold task"
            )
        gold = gold[~gold.index.duplicated()]
    return gold


@dataclass(frozen=True)
class EncodedAnswers:
    """Answers factorized to integer codes.

    Attributes:
        task: task code of each answer.
        worker: worker code of each answer.
        label: label code of each answer.
        tasks: task ids, indexed by code.
        workers: worker ids, indexed by code.
        labels: label values, indexed by code (sorted).
        gold_tasks: codes of the tasks with a known label.
        gold_labels: label codes of those tasks.
    """

    task: IntArray
    worker: IntArray
    label: IntArray
    tasks: pd.Index
    workers: pd.Index
    labels: pd.Index
    gold_tasks: IntArray
    gold_labels: IntArray

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.tasks)

    @property
    def n_workers(self) -> int:
        """Number of workers."""
        return len(self.workers)

    @property
    def n_labels(self) -> int:
        """Number of labels."""
        return len(self.labels)

    @property
    def n_answers(self) -> int:
        """Number of answers."""
        return len(self.task)

    def label_counts(self, weights: FloatArray | None = None) -> FloatArray:
        """(Weighted) count of each label per task, shape (n_tasks, n_labels)."""
        flat = self.task * self.n_labels + self.label
        counts = np.bincount(flat, weights=weights, minlength=self.n_tasks * self.n_labels)
        return counts.reshape(self.n_tasks, self.n_labels).astype(np.float64)

    def answers_per_task(self) -> IntArray:
        """Number of answers of each task."""
        return np.bincount(self.task, minlength=self.n_tasks).astype(np.int64)


def _codes(values: pd.Series, index: pd.Index) -> IntArray:
    codes = index.get_indexer(pd.Index(values))
    return np.asarray(codes, dtype=np.int64)


def encode_answers(
    data: pd.DataFrame,
    gold: pd.Series | None = None,
    *,
    tasks: Iterable[Any] | None = None,
    labels: Iterable[Any] | None = None,
) -> EncodedAnswers:
    """Validate answers and gold and factorize them to integer codes.

    Args:
        data: answers with columns ``task, worker, label``.
        gold: known labels indexed by task; gold tasks with no answers (and not in
            ``tasks``) are ignored.
        tasks: the universe of task ids; answers outside it raise, tasks of it
            without answers are kept (their posterior is the class prior).
        labels: the label set; when given it fixes the classes even if some never
            occur (a binary task where everyone answered "yes" still has two).

    Returns:
        The encoded answers.

    Raises:
        AnalysisError: on invalid answers or gold (see :func:`validate_answers`),
            or when there are no answers and no task universe.
    """
    frame = validate_answers(data, tasks=tasks, labels=labels)
    gold = validate_gold(gold)
    if frame.empty and tasks is None:
        raise AnalysisError("answers: no answers to aggregate; collect answers before aggregating")
    task_index = _sorted_index(list(tasks) if tasks is not None else frame["task"])
    worker_index = _sorted_index(frame["worker"])
    if labels is not None:
        label_index = _sorted_index(list(labels))
    else:
        label_values = list(frame["label"].unique())
        if gold is not None:
            in_scope = gold[gold.index.isin(task_index)]
            label_values += list(in_scope.unique())
        label_index = _sorted_index(label_values)
    if len(label_index) == 0:
        raise AnalysisError("answers: no labels; pass answers or the label list")
    gold_tasks = np.zeros(0, dtype=np.int64)
    gold_labels = np.zeros(0, dtype=np.int64)
    if gold is not None:
        task_codes = task_index.get_indexer(gold.index)
        keep = task_codes >= 0
        label_codes = label_index.get_indexer(pd.Index(gold.to_numpy()[keep]))
        if (label_codes < 0).any():
            bad = gold.to_numpy()[keep][label_codes < 0]
            raise AnalysisError(
                f"gold: label(s) {_describe(pd.unique(bad))} are not among the labels "
                f"{list(label_index)}; fix the gold or the label list"
            )
        gold_tasks = np.asarray(task_codes[keep], dtype=np.int64)
        gold_labels = np.asarray(label_codes, dtype=np.int64)
    return EncodedAnswers(
        task=_codes(frame["task"], task_index),
        worker=_codes(frame["worker"], worker_index),
        label=_codes(frame["label"], label_index),
        tasks=task_index,
        workers=worker_index,
        labels=label_index,
        gold_tasks=gold_tasks,
        gold_labels=gold_labels,
    )
