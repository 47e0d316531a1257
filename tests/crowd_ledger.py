"""A ledger holding a finished crowd verification of a small sample collection.

The sample collection, its ingest and its time buckets come from the real commands'
library functions. The crowd rows (hits, hit_items, assignments, answers) are written
as ``turk collect`` leaves them (docs/design.md), from simulated workers who answer
from the sample's ``truth.csv``: reliable workers, one random spammer and one
always-yes clicker. Candidates per concept and bucket are the images of that concept
plus some that are not (as an imperfect ranking would give), so the crowd has real
errors to catch.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from turk.collection.buckets import make_buckets
from turk.collection.ingest import ingest_collection
from turk.collection.sample import write_sample
from turk.ledger import Ledger, utc_now

TARGET = "local"
REWARD = "0.05"


@dataclass
class CrowdLedger:
    """What :func:`build_crowd_ledger` made."""

    db_path: Path
    sample_dir: Path
    truth: dict[int, str]
    items: list[tuple[str, int, int]] = field(default_factory=list)  # concept, bucket, image
    workers: list[str] = field(default_factory=list)


def build_crowd_ledger(
    root: Path,
    *,
    n: int = 240,
    seed: int = 0,
    answers_per_item: int = 3,
    decoys_per_cell: int = 2,
    concepts_with_gold: tuple[str, ...] | None = None,
    collect: bool = True,
) -> CrowdLedger:
    """Build the ledger under ``root`` (``root/turk.db``, sample in ``root/sample``).

    Args:
        root: Folder to build in.
        n: Photos in the sample.
        seed: Seed of the sample and the workers.
        answers_per_item: Workers per HIT.
        decoys_per_cell: Wrong candidates per concept and bucket.
        concepts_with_gold: Concepts that get gold items (None: all).
        collect: Write answers (False: HITs only, no answers yet).

    Returns:
        The :class:`CrowdLedger`.
    """
    sample_dir = root / "sample"
    write_sample(sample_dir, n=n, seed=seed, image_size=(64, 48))
    db_path = root / "turk.db"
    rng = random.Random(seed)
    with Ledger(db_path) as ledger:
        ingest_collection(ledger, [sample_dir / "metadata.tsv"])
        make_buckets(ledger, count=4, reserve=[0])
        truth = _read_truth(sample_dir / "truth.csv")
        bucket_of = dict(
            ledger.conn.execute("SELECT id, bucket FROM images WHERE bucket IS NOT NULL")
        )
        result = CrowdLedger(db_path=db_path, sample_dir=sample_dir, truth=truth)
        concepts = sorted({c for c in truth.values() if c != "none"})
        gold_concepts = set(concepts if concepts_with_gold is None else concepts_with_gold)
        workers = [f"W{i:02d}" for i in range(8)] + ["SPAMMER", "CLICKER"]
        result.workers = workers
        accuracy = {w: 0.93 for w in workers}
        now = utc_now()
        for concept in concepts:
            for bucket in (1, 2, 3):
                in_cell = [
                    i for i, b in bucket_of.items() if b == bucket and truth.get(i) == concept
                ]
                others = sorted(
                    i for i, b in bucket_of.items() if b == bucket and truth.get(i) != concept
                )
                decoys = rng.sample(others, min(decoys_per_cell, len(others)))
                regular = sorted(in_cell) + decoys
                if not regular:
                    continue
                result.items += [(concept, bucket, i) for i in regular]
                gold: list[tuple[int, str]] = []
                if concept in gold_concepts:
                    yes = [i for i, c in truth.items() if c == concept and i not in regular]
                    no = [i for i, c in truth.items() if c != concept and i not in regular]
                    gold = [(i, "yes") for i in rng.sample(yes, min(2, len(yes)))]
                    gold += [(i, "no") for i in rng.sample(no, min(2, len(no)))]
                slots = [(i, False, None) for i in regular] + [(i, True, e) for i, e in gold]
                rng.shuffle(slots)
                hit_key = f"binary-{concept}-b{bucket:02d}-0000"
                _write_hit(ledger, hit_key, concept, bucket, slots, answers_per_item, now)
                if not collect:
                    continue
                chosen = rng.sample(workers, answers_per_item)
                for worker in chosen:
                    _write_assignment(
                        ledger, hit_key, concept, worker, slots, truth, accuracy[worker], rng, now
                    )
    return result


def _read_truth(path: Path) -> dict[int, str]:
    with path.open(newline="") as fh:
        return {int(r["image"]): r["concept"] for r in csv.DictReader(fh)}


def _write_hit(
    ledger: Ledger,
    hit_key: str,
    concept: str,
    bucket: int,
    slots: list[tuple[int, bool, str | None]],
    max_assignments: int,
    now: str,
) -> None:
    with ledger.conn:
        ledger.conn.execute(
            "INSERT INTO hits (target, batch_id, hit_key, token, annotation, status, hit_id, "
            "hit_type_id, task, concept, bucket, labels, reward, max_assignments, "
            "max_total_assignments, lifetime_s, auto_approval_delay_s, cost, question_xml, "
            "created_at, published_at) VALUES (?, ?, ?, ?, ?, 'published', ?, 'HT1', 'binary', "
            "?, ?, ?, ?, ?, ?, 86400, 259200, '0.54', '<q/>', ?, ?)",
            (
                TARGET,
                hit_key[:-5],
                hit_key,
                f"tok-{hit_key}",
                hit_key[:-5],
                f"HIT-{hit_key}",
                concept,
                bucket,
                json.dumps(["yes", "no"]),
                REWARD,
                max_assignments,
                max_assignments,
                now,
                now,
            ),
        )
        ledger.conn.executemany(
            "INSERT INTO hit_items (target, hit_key, position, field, image_id, concept, "
            "is_gold, expected, media_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (TARGET, hit_key, p, f"item-{p}", i, concept, int(g), e, f"m{hit_key}{p}")
                for p, (i, g, e) in enumerate(slots)
            ],
        )


def _write_assignment(
    ledger: Ledger,
    hit_key: str,
    concept: str,
    worker: str,
    slots: list[tuple[int, bool, str | None]],
    truth: dict[int, str],
    accuracy: float,
    rng: random.Random,
    now: str,
) -> None:
    assignment_id = f"A-{hit_key}-{worker}"
    rows = []
    for position, (image_id, is_gold, expected) in enumerate(slots):
        right = "yes" if truth[image_id] == concept else "no"
        if worker == "SPAMMER":
            label = rng.choice(["yes", "no"])
        elif worker == "CLICKER":
            label = "yes"
        else:
            label = right if rng.random() < accuracy else ("no" if right == "yes" else "yes")
        correct = None if not is_gold else int(label == expected)
        rows.append(
            (
                TARGET,
                assignment_id,
                worker,
                hit_key,
                f"item-{position}",
                position,
                image_id,
                concept,
                label,
                label,
                int(is_gold),
                expected,
                correct,
                30.0,
                None,
            )
        )
    with ledger.conn:
        ledger.conn.execute(
            "INSERT INTO assignments (target, assignment_id, hit_id, hit_key, worker_id, status, "
            "submit_time, work_time_s, answer_xml, parse_status, fetched_at) "
            "VALUES (?, ?, ?, ?, ?, 'Approved', ?, 30.0, '<QuestionFormAnswers/>', 'ok', ?)",
            (TARGET, assignment_id, f"HIT-{hit_key}", hit_key, worker, now, now),
        )
        ledger.conn.executemany(
            "INSERT INTO answers (target, assignment_id, worker_id, hit_key, field, position, "
            "image_id, concept, value, label, is_gold, expected, correct, work_time_s, flag) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
