"""Readers for public crowdsourcing datasets with ground truth (read in place).

Two layouts are understood (the folder's README gives them):

- ``answers.csv`` with header ``question,worker,answer`` and ``truth.csv`` with
  header ``question,truth`` (e.g. ``duck``, ``dog``);
- ``labels.tsv`` (``worker<TAB>item<TAB>label``, no header) and ``gold.tsv``
  (``item<TAB>label``) (e.g. ``adultcontent2``).

Both come back in the library's contract: answers with columns
``task, worker, label`` and truth as a Series indexed by task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError

__all__ = ["CrowdDataset", "load_crowd_dataset"]


@dataclass(frozen=True)
class CrowdDataset:
    """Answers and ground truth of one dataset.

    Attributes:
        name: folder name.
        answers: columns ``task, worker, label``.
        truth: true labels indexed by task (all tasks, or a gold subset).
    """

    name: str
    answers: pd.DataFrame
    truth: pd.Series


def load_crowd_dataset(folder: str | Path) -> CrowdDataset:
    """Read one dataset folder.

    Args:
        folder: the dataset folder (e.g. ``.../crowd/duck``).

    Returns:
        The dataset. Labels keep their file type (integers for ``duck`` and
        ``dog``, strings for ``adultcontent2``); task and worker ids are strings.

    Raises:
        AnalysisError: the folder has neither layout, or a file is malformed.
    """
    path = Path(folder)
    try:
        if (path / "answers.csv").is_file() and (path / "truth.csv").is_file():
            raw = pd.read_csv(path / "answers.csv", dtype={"question": str, "worker": str})
            truth_raw = pd.read_csv(path / "truth.csv", dtype={"question": str})
            expected = {"question", "worker", "answer"}
            if not expected <= set(raw.columns) or not {"question", "truth"} <= set(
                truth_raw.columns
            ):
                raise AnalysisError(
                    f"{path}: answers.csv needs columns question,worker,answer and "
                    f"truth.csv question,truth"
                )
            answers = raw.rename(columns={"question": "task", "answer": "label"})[
                ["task", "worker", "label"]
            ]
            truth = truth_raw.set_index("question")["truth"].rename_axis("task")
        elif (path / "labels.tsv").is_file() and (path / "gold.tsv").is_file():
            answers = pd.read_csv(
                path / "labels.tsv",
                sep="\t",
                header=None,
                names=["worker", "task", "label"],
                dtype=str,
                keep_default_na=False,
            )[["task", "worker", "label"]]
            gold = pd.read_csv(
                path / "gold.tsv",
                sep="\t",
                header=None,
                names=["task", "label"],
                dtype=str,
                keep_default_na=False,
            )
            truth = gold.set_index("task")["label"]
        else:
            raise AnalysisError(
                f"{path}: no answers.csv + truth.csv or labels.tsv + gold.tsv; "
                f"pass a crowd dataset folder"
            )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise AnalysisError(f"{path}: cannot read the dataset ({exc})") from exc
    return CrowdDataset(name=path.name, answers=answers, truth=truth.rename("truth"))
