"""How other areas read the tables the crowd area owns: answers, HITs, assignments, actions.

Only :mod:`turk.crowd` writes ``hit_types``, ``hits``, ``hit_items``, ``assignments``,
``answers``, ``actions``, ``qualifications`` and ``worker_blocks`` (publish, collect,
review, expire); every other area reads them through these functions, and money through
:mod:`turk.crowd.spend`.

Every answer becomes a binary question "is image I a C?" with the task id
``"<concept>/<image id>"`` (:func:`task_id`): binary-grid answers are ``yes``/``no``
already; a multi-select answer says ``yes`` for the item's concept when that concept is
among the classes the worker picked. Gold items give the known label of their task.
"""

from __future__ import annotations

import json

import pandas as pd

from turk.collection.tables import image_buckets
from turk.errors import ConfigError, StageError
from turk.ledger import Ledger

__all__ = [
    "NO",
    "NONE",
    "UNDETERMINED",
    "YES",
    "action_count",
    "answer_count",
    "answer_dates",
    "answer_targets",
    "answers_by_cell",
    "languages_by_cell",
    "load_answers",
    "published_hit_count",
    "resolve_target",
    "task_id",
]

YES = "yes"
"""The binary label meaning "the image shows the concept"."""
NO = "no"
"""The binary label meaning "it does not"."""
NONE = "none"
"""The multi-select answer meaning "none of the classes"."""
UNDETERMINED = "und"
"""BCP 47's tag for a language not recorded (a HIT whose page declared none)."""


def task_id(concept: str, image_id: int) -> str:
    """Return the task id of the question "is image ``image_id`` a ``concept``?".

    Args:
        concept: Concept name.
        image_id: Image id.

    Returns:
        ``"<concept>/<image id>"``.
    """
    return f"{concept}/{int(image_id)}"


def answer_targets(ledger: Ledger) -> list[str]:
    """Return the crowd targets that have answers in the ledger, sorted.

    Args:
        ledger: The open ledger.

    Returns:
        Target names.
    """
    rows = ledger.conn.execute("SELECT DISTINCT target FROM answers ORDER BY target").fetchall()
    return [str(r[0]) for r in rows]


def resolve_target(ledger: Ledger, target: str | None) -> str:
    """Pick the target to analyse: the one named, else the only one with answers.

    Args:
        ledger: The open ledger.
        target: ``--target`` as given, or None.

    Returns:
        The target name.

    Raises:
        StageError: No answers at all, or none for the named target.
        ConfigError: Several targets have answers and none was named.
    """
    targets = answer_targets(ledger)
    if not targets:
        raise StageError(
            f"{ledger.path}: no answers yet; publish HITs and run 'turk collect' first"
        )
    if target is None:
        if len(targets) > 1:
            raise ConfigError(
                f"--target: answers from several targets ({', '.join(targets)}); "
                "name the one to analyse"
            )
        return targets[0]
    if target not in targets:
        raise StageError(
            f"--target {target}: no answers from this target (answers exist for "
            f"{', '.join(targets)}); run 'turk collect --target {target}' first"
        )
    return target


def load_answers(
    ledger: Ledger, target: str, *, include_hit_key: bool = False
) -> tuple[pd.DataFrame, pd.Series, dict[str, int]]:
    """Read the valid answers of one target as binary ``yes``/``no`` questions.

    A binary-grid answer is one question about the HIT's concept. A multi-select answer
    becomes one question per class the HIT offered: ``yes`` for the classes the worker
    picked, ``no`` for the others (``none`` is ``no`` for every class).

    Args:
        ledger: The open ledger.
        target: The crowd target.
        include_hit_key: Also return each answer's ``hit_key``.

    Returns:
        ``(answers, gold, skipped)``: answers with ``task, worker, label, concept,
        image_id, bucket, is_gold, multi`` (and ``hit_key``); gold labels indexed by
        task; counts of answer rows left out (``flagged``: no valid label; ``no
        concept``: a binary item with no concept; ``no bucket``: an image in no time
        bucket).
    """
    frame = pd.read_sql_query(
        "SELECT a.worker_id AS worker, a.hit_key, a.image_id, a.concept, a.label, a.is_gold, "
        "a.expected, h.task AS kind, h.labels AS hit_labels, h.bucket AS hit_bucket "
        "FROM answers a JOIN hits h ON h.target = a.target AND h.hit_key = a.hit_key "
        "WHERE a.target = ? AND a.image_id IS NOT NULL",
        ledger.conn,
        params=(target,),
    )
    bucket_of = image_buckets(ledger, frame["image_id"].astype("int64").tolist())
    frame["image_bucket"] = frame["image_id"].map(bucket_of)
    skipped: dict[str, int] = {}
    flagged = frame["label"].isna()
    if flagged.any():
        skipped["flagged"] = int(flagged.sum())
    multi = frame["kind"] == "multi"
    no_concept = ~flagged & ~multi & frame["concept"].isna()
    if no_concept.any():
        skipped["no concept"] = int(no_concept.sum())
    frame = frame[~flagged & ~no_concept].copy()
    multi = frame["kind"] == "multi"
    # One question per offered class for multi-select answers.
    frame["concept"] = [
        [c for c in json.loads(labels or "[]") if c != NONE] if is_multi else [concept]
        for is_multi, labels, concept in zip(
            multi, frame["hit_labels"], frame["concept"], strict=True
        )
    ]
    frame = frame.explode("concept")
    frame = frame[frame["concept"].notna()].copy()
    frame["bucket"] = frame["image_bucket"].fillna(frame["hit_bucket"])
    no_bucket = frame["bucket"].isna()
    if no_bucket.any():
        skipped["no bucket"] = int(no_bucket.sum())
        frame = frame[~no_bucket]
    frame["bucket"] = frame["bucket"].astype("int64")
    frame["image_id"] = frame["image_id"].astype("int64")
    frame["label"] = [
        _binary(label, concept, kind)
        for label, concept, kind in zip(
            frame["label"], frame["concept"], frame["kind"], strict=True
        )
    ]
    frame["task"] = [
        task_id(c, i) for c, i in zip(frame["concept"], frame["image_id"], strict=True)
    ]
    frame["is_gold"] = frame["is_gold"].astype(bool)
    gold_rows = frame[frame["is_gold"] & frame["expected"].notna()]
    gold = pd.Series(
        [
            _binary(e, c, k)
            for e, c, k in zip(
                gold_rows["expected"], gold_rows["concept"], gold_rows["kind"], strict=True
            )
        ],
        index=pd.Index(gold_rows["task"], name="task"),
        dtype=object,
        name="label",
    )
    gold = gold[~gold.index.duplicated()]
    frame["multi"] = frame["kind"] == "multi"
    columns = ["task", "worker", "label", "concept", "image_id", "bucket", "is_gold", "multi"]
    answers = frame[[*columns, "hit_key"] if include_hit_key else columns]
    return answers.reset_index(drop=True), gold, skipped


def _binary(label: str, concept: str, kind: str) -> str:
    if kind == "multi":
        return YES if concept in str(label).split("|") else NO
    return YES if str(label).strip().lower() == YES else NO


def answer_count(ledger: Ledger, target: str) -> int:
    """Count the answers stored for one target.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        The number of answer rows (gold included).
    """
    (n,) = ledger.conn.execute("SELECT COUNT(*) FROM answers WHERE target=?", (target,)).fetchone()
    return int(n)


def action_count(ledger: Ledger, target: str) -> int:
    """Count the review actions (approve, reject, bonus, extend, block) on one target.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        The number of action rows, whatever their state.
    """
    (n,) = ledger.conn.execute("SELECT COUNT(*) FROM actions WHERE target=?", (target,)).fetchone()
    return int(n)


def published_hit_count(ledger: Ledger, target: str, *, open_only: bool = False) -> int:
    """Count the HITs that exist on one target.

    Args:
        ledger: The open ledger.
        target: The crowd target.
        open_only: Only HITs still taking work (assignable or being worked on).

    Returns:
        The number of HITs.
    """
    sql = "SELECT COUNT(*) FROM hits WHERE target=? AND hit_id IS NOT NULL"
    if open_only:
        sql += " AND COALESCE(hit_status, 'Assignable') IN ('Assignable', 'Unassignable')"
    (n,) = ledger.conn.execute(sql, (target,)).fetchone()
    return int(n)


def answers_by_cell(ledger: Ledger, target: str) -> dict[tuple[str, int], int]:
    """Count the answers paid for on each concept x bucket cell's (binary) HITs.

    An answer counts for its HIT's cell, or, on a later round's HIT that asks about
    several buckets, for the bucket of the image it is about.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        ``{(concept, bucket): answers}``, gold answers included.
    """
    rows = ledger.conn.execute(
        "SELECT h.concept, h.bucket, a.image_id, COUNT(*) FROM answers a JOIN hits h ON "
        "h.target = a.target AND h.hit_key = a.hit_key WHERE a.target = ? AND "
        "h.concept IS NOT NULL GROUP BY h.concept, h.bucket, a.image_id",
        (target,),
    ).fetchall()
    bucket_of = image_buckets(ledger, [int(r[2]) for r in rows if r[1] is None and r[2]])
    out: dict[tuple[str, int], int] = {}
    for concept, bucket, image_id, n in rows:
        where = bucket if bucket is not None else bucket_of.get(int(image_id or 0))
        if where is not None:
            key = (str(concept), int(where))
            out[key] = out.get(key, 0) + int(n)
    return out


def answer_dates(ledger: Ledger, target: str) -> tuple[str, str]:
    """Return when the first and the last assignment of one target was submitted.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        ``(first, last)`` as UTC ISO text, empty strings when nothing was submitted.
    """
    first, last = ledger.conn.execute(
        "SELECT MIN(submit_time), MAX(submit_time) FROM assignments WHERE target = ?",
        (target,),
    ).fetchone()
    return str(first or ""), str(last or "")


def languages_by_cell(ledger: Ledger, target: str) -> dict[tuple[str, int], dict[str, int]]:
    """Count the published HITs of each concept x bucket cell by the language they showed.

    The language is the one the HIT's own words were in (``hits.language``: its
    question, answers, keyboard legend and Submit); the instruction set's text is the
    project's own. A binary HIT counts for its cell, a later round's HIT (no bucket of
    its own) for each bucket its regular images come from, a multi-select HIT for every
    class it offered in its bucket.

    Args:
        ledger: The open ledger.
        target: The crowd target.

    Returns:
        ``{(concept, bucket): {language: HITs}}`` with BCP 47 tags (``en``,
        ``zh-Hans``; :data:`UNDETERMINED` where a HIT recorded none); cells without a
        published HIT are absent.
    """
    rows = ledger.conn.execute(
        "SELECT hit_key, task, concept, bucket, labels, language FROM hits "
        "WHERE target = ? AND hit_id IS NOT NULL",
        (target,),
    ).fetchall()
    spread = ledger.conn.execute(
        "SELECT DISTINCT i.hit_key, i.image_id FROM hit_items i JOIN hits h ON "
        "h.target = i.target AND h.hit_key = i.hit_key WHERE i.target = ? AND "
        "h.hit_id IS NOT NULL AND h.bucket IS NULL AND i.is_gold = 0",
        (target,),
    ).fetchall()
    bucket_of = image_buckets(ledger, [int(image_id) for _, image_id in spread])
    buckets_of_hit: dict[str, set[int]] = {}
    for hit_key, image_id in spread:
        if int(image_id) in bucket_of:
            buckets_of_hit.setdefault(str(hit_key), set()).add(int(bucket_of[int(image_id)]))
    out: dict[tuple[str, int], dict[str, int]] = {}
    for hit_key, task, concept, bucket, labels, language in rows:
        if task == "multi":
            concepts = [c for c in json.loads(labels or "[]") if c != NONE]
        else:
            concepts = [concept] if concept is not None else []
        buckets = {int(bucket)} if bucket is not None else buckets_of_hit.get(str(hit_key), set())
        for name in concepts:
            for where in buckets:
                counts = out.setdefault((str(name), where), {})
                tag = str(language) if language else UNDETERMINED
                counts[tag] = counts.get(tag, 0) + 1
    return out
