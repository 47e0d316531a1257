"""``turk rank``: candidates per concept and bucket.

Wires :mod:`retrieval.rank` to the ledger. Ranking checks
everything it needs (concepts file, buckets, embeddings of the model named) before it
loads the model, then replaces the ``candidates`` table in one transaction and exports
the rows to ``<ledger root>/candidates/candidates.parquet`` and ``candidates.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.concepts import ConceptsFile, load_concepts
from retrieval.modelnames import DEFAULT_MODEL, DEFAULT_PRETRAINED, model_slug
from retrieval.rank import BucketIndex, Candidate, Ranking, rank_buckets, select_candidates
from turk.candidates.embed import load_embeddings, registered_shards
from turk.candidates.tables import CANDIDATE_COLUMNS
from turk.collection.tables import bucket_ids, image_buckets
from turk.errors import StageError
from turk.ledger import Ledger


@dataclass
class RankReport:
    """What ``turk rank`` did.

    Attributes:
        slug: Embeddings used.
        concepts: Concept names.
        buckets: Buckets ranked.
        reserved: Reserved buckets skipped.
        embeddings: Embeddings scored.
        positives: Positive candidates written.
        background: Background candidates written.
        short: ``(concept, bucket, found)`` where fewer positives than asked were found.
        parquet: The Parquet export.
        csv: The CSV export.
    """

    slug: str
    concepts: list[str]
    buckets: list[int]
    reserved: list[int]
    embeddings: int
    positives: int
    background: int
    short: list[tuple[str, int, int]]
    parquet: Path
    csv: Path


def _prompt_lines(concepts: ConceptsFile) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for concept in concepts.concepts:
        lines = [f"prompt: {p}" for p in concept.prompts]
        if concept.prefix:
            lines.append(f"prefix: {concept.prefix}")
        if concept.templates:
            first = concept.templates[0]
            lines.append(f"templates: {len(concept.templates)} (e.g. {first})")
        lines.extend(f"negative: {n}" for n in concept.negatives)
        out[concept.name] = lines
    return out


def _export(rows: list[Candidate], folder: Path) -> tuple[Path, Path]:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        [(r.concept, r.bucket, r.image_id, r.score, r.rank, r.role) for r in rows],
        columns=CANDIDATE_COLUMNS,
    ).astype({"bucket": "int64", "image_id": "int64", "score": "float64", "rank": "int64"})
    parquet, csv = folder / "candidates.parquet", folder / "candidates.csv"
    tmp_parquet = parquet.with_name(parquet.name + ".tmp")
    tmp_csv = csv.with_name(csv.name + ".tmp")
    frame.to_parquet(tmp_parquet, index=False)
    frame.to_csv(tmp_csv, index=False)
    os.replace(tmp_parquet, parquet)
    os.replace(tmp_csv, csv)
    return parquet, csv


def embedded_model(ledger: Ledger) -> tuple[str, str | None]:
    """The model to rank with when none is named: the only one the ledger has embedded.

    Args:
        ledger: The ledger.

    Returns:
        ``(model, pretrained)``; turk's default model when nothing is embedded yet (rank
        then says to run ``turk embed``).

    Raises:
        StageError: The ledger holds embeddings of several models.
    """
    from turk.candidates.embed import embedded_models

    models = embedded_models(ledger)
    if len(models) > 1:
        named = ", ".join(f"--model {m} --pretrained {p or 'none'}" for m, p in models)
        raise StageError(
            f"{ledger.path}: embeddings of {len(models)} models ({named}); pass the one to "
            "rank with --model and --pretrained"
        )
    return models[0] if models else (DEFAULT_MODEL, DEFAULT_PRETRAINED)


def _pool(
    rankings: dict[int, list[Ranking]], concepts: ConceptsFile, chosen: list[Candidate]
) -> list[Candidate]:
    """The rest of each cell's ranking to ``query_depth``, after the overlap rule: what
    later curation rounds draw from (never an image chosen already, nor a background
    pick of its bucket)."""
    deep = replace(
        concepts.settings, candidates_per_class=concepts.settings.query_depth, background=False
    )
    taken = {(c.concept, c.bucket, c.image_id) for c in chosen if c.role == "positive"}
    background = {(c.bucket, c.image_id) for c in chosen if c.role == "background"}
    return [
        c
        for c in select_candidates(rankings, concepts.names, deep)
        if (c.concept, c.bucket, c.image_id) not in taken
        and (c.bucket, c.image_id) not in background
    ]


def rank_ledger(
    ledger: Ledger,
    concepts_path: str | os.PathLike[str],
    *,
    model: str = DEFAULT_MODEL,
    pretrained: str | None = DEFAULT_PRETRAINED,
    device: str = "auto",
    on_progress: Callable[[int], None] | None = None,
) -> RankReport:
    """Rank every unreserved bucket for every concept and replace the candidates.

    Args:
        ledger: The ledger.
        concepts_path: The concepts YAML.
        model: Model whose embeddings to rank (as given to ``turk embed``).
        pretrained: Its weights (as given to ``turk embed``).
        device: ``auto``, ``cpu`` or ``cuda``.
        on_progress: Called with the number of embeddings just scored.

    Returns:
        The :class:`RankReport`.

    Raises:
        ConceptsError: The concepts file is invalid.
        StageError: No buckets, or no embeddings for the model.
        ModelError: The model cannot be loaded for the prompts.
    """
    from retrieval.encoder import load_encoder

    concepts = load_concepts(concepts_path)
    reserved = bucket_ids(ledger, reserved=True)
    buckets = bucket_ids(ledger, reserved=False)
    if not reserved and not buckets:
        raise StageError(f"{ledger.path}: no time buckets; run 'turk buckets' first")
    slug = model_slug(model, pretrained)
    shards = registered_shards(ledger, slug)
    if not shards:
        weights = f" --pretrained {pretrained}" if pretrained else ""
        raise StageError(
            f"{ledger.path}: no embeddings for --model {model}{weights} ({slug}); "
            f"run 'turk embed --model {model}{weights}' first, or pass the model you embedded with"
        )
    encoder = load_encoder(model, pretrained, device=device)
    queries = np.stack(
        [
            encoder.encode_prompt_ensemble(
                list(c.prompts), list(c.templates), c.prefix, list(c.negatives)
            )
            for c in concepts.concepts
        ]
    )
    bucket_of = image_buckets(ledger)
    ids = np.fromiter(bucket_of.keys(), dtype=np.int64, count=len(bucket_of))
    of = np.fromiter(bucket_of.values(), dtype=np.int64, count=len(bucket_of))
    of[np.isin(of, np.asarray(reserved, dtype=np.int64))] = -1
    settings: dict[str, Any] = {
        "concepts_file": str(Path(concepts_path).resolve()),
        "model": model,
        "pretrained": pretrained,
        "slug": slug,
        "settings": concepts.settings.__dict__,
        "prompts": _prompt_lines(concepts),
        "concepts": concepts.names,
    }
    with ledger.run("rank", settings) as run:
        rankings = rank_buckets(
            load_embeddings(ledger, slug),
            queries,
            BucketIndex(ids, of),
            buckets,
            concepts.settings.query_depth,
            device=encoder.device,
            on_progress=on_progress,
        )
        rows = select_candidates(rankings, concepts.names, concepts.settings)
        pool = _pool(rankings, concepts, rows)
        with ledger.conn:
            ledger.conn.execute("DELETE FROM candidates")
            ledger.conn.executemany(
                "INSERT INTO candidates (concept, bucket, image_id, score, rank, role, run_id, "
                "slug, round) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (r.concept, r.bucket, r.image_id, r.score, r.rank, r.role, run.id, slug, 1)
                    for r in rows
                ]
                + [
                    (r.concept, r.bucket, r.image_id, r.score, r.rank, r.role, run.id, slug, None)
                    for r in pool
                ],
            )
        run.add("pool", len(pool))
        parquet, csv = _export(rows, ledger.root / "candidates")
        positives = sum(1 for r in rows if r.role == "positive")
        run.add("positives", positives)
        run.add("background", len(rows) - positives)
    counts: dict[tuple[str, int], int] = {}
    for r in rows:
        if r.role == "positive":
            counts[(r.concept, r.bucket)] = counts.get((r.concept, r.bucket), 0) + 1
    per_class = concepts.settings.candidates
    short = [
        (name, b, counts.get((name, b), 0))
        for b in buckets
        for name in concepts.names
        if counts.get((name, b), 0) < per_class
    ]
    return RankReport(
        slug=slug,
        concepts=concepts.names,
        buckets=buckets,
        reserved=reserved,
        embeddings=sum(s.count for s in shards),
        positives=positives,
        background=len(rows) - positives,
        short=short,
        parquet=parquet,
        csv=csv,
    )
