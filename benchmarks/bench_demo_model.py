"""The demo model's retrieval on a fresh sample: precision at several depths against truth.

Writes a sample collection of ``--seed`` (the demo model was trained on another seed:
``scripts/train_demo_model.TRAIN_SEED``), then runs the project's own stages on it:
ingest, equal-count buckets (as the demo: 11, bucket 0 reserved), embed with the demo
model (``--model <config> --pretrained <weights>`` from ``demo_model_paths()``) and rank
with the sample's concepts.yaml (its prompts and templates). Measures, against
``truth.csv``:

* per concept, the precision of the top 5%, 10% and 20% of the whole sample ranked by
  the concept's query (the prompt ensemble ``turk rank`` uses);
* per cell (concept x bucket), the precision of the first quota-deep batch of
  candidates (``images_per_class``), and of the candidates from 1x to 2x quota and from
  2x quota to ``query_depth`` (what later rounds would verify);
* the same by difficulty kind (``scenes.csv``): the share of each kind in the top 10%.

Prints the figures and appends them to ``benchmarks/RESULTS.md`` (``--no-append`` not to).

Usage::

    python benchmarks/bench_demo_model.py [--seed 0] [--n 2000]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import append_results, machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "benchmarks" / ".work" / "demo_model"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in values.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="sample seed (not the training seed)")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--no-append", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()

    from retrieval.concepts import load_concepts
    from retrieval.demomodel import DEMO_MODEL_LABEL, demo_model_paths
    from retrieval.encoder import load_encoder
    from retrieval.modelnames import model_slug
    from scripts.train_demo_model import TRAIN_COMMAND, TRAIN_SEED
    from turk.candidates.embed import load_embeddings, plan_embedding, run_embedding
    from turk.candidates.rank import rank_ledger
    from turk.collection.buckets import DEFAULT_COUNT, DEFAULT_RESERVE, make_buckets
    from turk.collection.ingest import ingest_collection
    from turk.collection.sample import write_sample
    from turk.ledger import Ledger

    if args.seed == TRAIN_SEED:
        sys.exit(f"--seed {args.seed}: the demo model was trained on it; pick another seed")
    config, weights = demo_model_paths()
    model, pretrained = str(config), str(weights)
    folder = WORK / f"seed{args.seed}-n{args.n}"
    sample = folder / "sample"
    write_sample(sample, n=args.n, seed=args.seed)
    db = folder / "turk.db"
    db.unlink(missing_ok=True)
    ledger = Ledger(db)
    started = time.perf_counter()
    ingest_collection(ledger, [sample / "metadata.tsv"])
    images = ledger.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    make_buckets(ledger, count=min(DEFAULT_COUNT, images), reserve=list(DEFAULT_RESERVE))
    plan = plan_embedding(ledger, model=model, pretrained=pretrained, device="cpu")
    run_embedding(ledger, plan, workers=min(2, os.cpu_count() or 1))
    concepts_path = sample / "concepts.yaml"
    rank_ledger(ledger, concepts_path, model=model, pretrained=pretrained, device="cpu")
    elapsed = time.perf_counter() - started

    truth = {int(r["image"]): r["concept"] for r in _rows(sample / "truth.csv")}
    kinds = {int(r["image"]): r["kind"] for r in _rows(sample / "scenes.csv")}
    concepts = load_concepts(concepts_path)
    quota = concepts.settings.images_per_class
    depth = concepts.settings.query_depth

    # Whole-sample ranking per concept, with the prompt ensemble turk rank uses.
    encoder = load_encoder(model, pretrained, device="cpu")
    parts = list(load_embeddings(ledger, model_slug(model, pretrained)))
    ids = np.concatenate([p[0] for p in parts])
    vectors = np.concatenate([p[1] for p in parts]).astype(np.float32)
    fractions = (0.05, 0.10, 0.20)
    whole: dict[str, dict[str, float]] = {}
    kinds_top: Counter[str] = Counter()
    queries = [
        encoder.encode_prompt_ensemble(
            list(c.prompts), list(c.templates), c.prefix, list(c.negatives)
        )
        for c in concepts.concepts
    ]
    for c, query in zip(concepts.concepts, queries, strict=True):
        order = ids[np.argsort(-(vectors @ query), kind="stable")]
        whole[c.name] = {}
        for f in fractions:
            top = order[: max(1, round(f * len(order)))]
            whole[c.name][f"{f:.0%}"] = float(np.mean([truth[int(i)] == c.name for i in top]))
        for i in order[: round(0.1 * len(order))]:
            right = truth[int(i)] == c.name
            kinds_top[f"{kinds[int(i)]} ({'true' if right else 'false'})"] += 1

    # Per cell: the first batch is what turk rank wrote (one concept per image); deeper
    # bands come from the same query ranked within the bucket (what later rounds reach).
    scores = {
        c.name: dict(zip(ids.tolist(), (vectors @ q).tolist(), strict=True))
        for c, q in zip(concepts.concepts, queries, strict=True)
    }
    first_batch: dict[tuple[str, int], list[int]] = {}
    for concept, bucket, image in ledger.conn.execute(
        "SELECT concept, bucket, image_id FROM candidates WHERE role = 'positive' "
        "ORDER BY concept, bucket, rank"
    ):
        first_batch.setdefault((concept, bucket), []).append(int(image))
    members: dict[int, list[int]] = {}
    for image, bucket in ledger.conn.execute(
        "SELECT i.id, i.bucket FROM images i JOIN buckets b ON b.id = i.bucket WHERE NOT b.reserved"
    ):
        members.setdefault(int(bucket), []).append(int(image))
    bands = {
        f"1-{quota}": (0, quota),
        f"{quota + 1}-{2 * quota}": (quota, 2 * quota),
        f"{2 * quota + 1}-{depth}": (2 * quota, depth),
    }
    per_band: dict[str, list[float]] = {b: [] for b in bands}
    per_concept_first: dict[str, list[float]] = {c: [] for c in concepts.names}
    for (concept, _bucket), items in first_batch.items():
        chunk = items[:quota]
        per_concept_first[concept].append(float(np.mean([truth[i] == concept for i in chunk])))
    for concept in concepts.names:
        for bucket_images in members.values():
            ranked = sorted(bucket_images, key=lambda i: -scores[concept][i])
            for band, (lo, hi) in bands.items():
                chunk = ranked[lo:hi]
                if chunk:
                    per_band[band].append(float(np.mean([truth[i] == concept for i in chunk])))
    ledger.close()

    lines = [f"- {DEMO_MODEL_LABEL}; weights {weights.name}, trained on sample seed {TRAIN_SEED}"]
    for f in fractions:
        key = f"{f:.0%}"
        per = {name: whole[name][key] for name in concepts.names}
        lines.append(
            f"- precision of the top {key} of each concept's ranking over the sample: "
            f"median {statistics.median(per.values()):.2f} ({_fmt(per)})"
        )
    for band, values in per_band.items():
        if values:
            lines.append(
                f"- per cell, ranks {band} of the concept's ranking of the bucket: median "
                f"{statistics.median(values):.2f}, "
                f"range {min(values):.2f}-{max(values):.2f} over {len(values)} cells"
            )
    first = {c: statistics.median(v) for c, v in per_concept_first.items() if v}
    all_first = [v for values in per_concept_first.values() for v in values]
    lines.append(
        f"- first quota-deep batch of each cell ({quota} candidates of turk rank): median "
        f"{statistics.median(all_first):.2f}, mean {statistics.mean(all_first):.2f}, "
        f"range {min(all_first):.2f}-{max(all_first):.2f} "
        f"over {len(all_first)} cells; median per concept: {_fmt(first)}"
    )
    lines.append(f"- training: {TRAIN_COMMAND}")
    top_kinds = ", ".join(f"{k} {v}" for k, v in sorted(kinds_top.items()))
    lines.append(f"- photos in the top 10% of the five rankings by kind: {top_kinds}")
    lines.append(f"- ingest + buckets + embed + rank: {elapsed:.1f} s")
    command = "python benchmarks/bench_demo_model.py " + " ".join(sys.argv[1:])
    text = (
        f"\n## Demo model retrieval, sample seed {args.seed}, n={args.n} "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n\n"
        f"- command: `{command.strip()}`\n- machine: {machine()}\n" + "\n".join(lines) + "\n"
    )
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
