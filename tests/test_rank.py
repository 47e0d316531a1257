"""Ranking and candidate selection against a brute-force numpy reference; turk rank."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from retrieval.concepts import RankSettings
from retrieval.rank import (
    BucketIndex,
    rank_buckets,
    select_candidates,
    topk_exact,
)
from turk.ledger import Ledger


def quantised(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # Multiples of 1/8 in [-1, 1]: every product and sum is exact in float32, so scores do
    # not depend on summation order and ties are real ties.
    return (rng.integers(-8, 9, shape) / 8).astype(np.float32)


def reference_rankings(ids, buckets, vectors, queries, wanted, depth):
    scores = vectors.astype(np.float64) @ queries.astype(np.float64).T
    out = {}
    for b in wanted:
        rows = np.flatnonzero(buckets == b)
        per_concept = []
        for c in range(queries.shape[0]):
            order = sorted(rows, key=lambda r, c=c: (-scores[r, c], ids[r]))[:depth]
            per_concept.append(([int(ids[r]) for r in order], [scores[r, c] for r in order]))
        out[b] = per_concept
    return out


def reference_candidates(ref, names, settings: RankSettings):
    rows = []
    for b in sorted(ref):
        lists = ref[b]
        owner = {}
        for c, (ids, scores) in enumerate(lists):
            for i, s in zip(ids, scores, strict=True):
                if i not in owner or s > owner[i][0]:
                    owner[i] = (s, c)
        positives = set()
        for c, (ids, scores) in enumerate(lists):
            kept = [
                (pos, i, s)
                for pos, (i, s) in enumerate(zip(ids, scores, strict=True))
                if settings.allow_overlap or owner[i][1] == c
            ][: settings.images_per_class]
            rows += [(names[c], b, i, pos, "positive") for pos, i, s in kept]
            positives |= {i for _, i, _ in kept}
        picked = set()
        for c, (ids, _) in enumerate(lists):
            taken = 0
            for pos in reversed(range(len(ids))):
                if taken == settings.background_per_concept:
                    break
                if ids[pos] in positives or ids[pos] in picked:
                    continue
                rows.append((names[c], b, ids[pos], pos, "background"))
                picked.add(ids[pos])
                taken += 1
    return rows


@pytest.fixture
def collection():
    rng = np.random.default_rng(7)
    n, dim, n_queries = 1500, 8, 4
    ids = rng.permutation(np.arange(10_000, 10_000 + 3 * n, 3))[:n].astype(np.int64)
    vectors = quantised(rng, (n, dim))
    vectors[100:140] = vectors[99]  # a block of exact ties
    vectors[700:720] = vectors[5]
    # bucket 0 big, 1 small (fewer images than the depth), 2 reserved (-1), 3 empty
    buckets = np.where(np.arange(n) < 1300, 0, np.where(np.arange(n) < 1330, 1, -1))
    queries = quantised(rng, (n_queries, dim))
    queries[3] = queries[2]  # two concepts with identical queries: overlap ties
    return ids, buckets, vectors, queries


def shards_of(ids, vectors, size):
    return [
        (ids[i : i + size], vectors[i : i + size].astype(np.float16))
        for i in range(0, len(ids), size)
    ]


@pytest.mark.parametrize(("shard_size", "chunk_rows"), [(1500, None), (256, 100), (97, 1000)])
def test_rankings_match_brute_force_with_ties(collection, shard_size, chunk_rows):
    ids, buckets, vectors, queries = collection
    depth = 120
    got = rank_buckets(
        shards_of(ids, vectors, shard_size),
        queries,
        BucketIndex(ids, buckets),
        [0, 1, 3],
        depth,
        chunk_rows=chunk_rows,
    )
    ref = reference_rankings(ids, buckets, vectors, queries, [0, 1, 3], depth)
    assert sorted(got) == [0, 1, 3]
    for b in (0, 1, 3):
        for c in range(queries.shape[0]):
            ref_ids, ref_scores = ref[b][c]
            assert got[b][c].ids.tolist() == ref_ids
            np.testing.assert_array_equal(got[b][c].scores, np.asarray(ref_scores, np.float32))
    assert len(got[1][0]) == 30  # fewer images than the depth: all of them
    assert len(got[3][0]) == 0  # empty bucket
    # Ties inside the top k are broken by id.
    tied = got[0][0]
    for a, b in zip(range(len(tied) - 1), range(1, len(tied)), strict=True):
        assert (tied.scores[a], -tied.ids[a]) >= (tied.scores[b], -tied.ids[b])


def test_reserved_images_never_ranked(collection):
    ids, buckets, vectors, queries = collection
    got = rank_buckets(
        shards_of(ids, vectors, 500), queries, BucketIndex(ids, buckets), [0, 1], 2000
    )
    ranked = {int(i) for b in got.values() for r in b for i in r.ids}
    assert ranked == set(ids[buckets >= 0].tolist())


@pytest.mark.parametrize("allow_overlap", [False, True])
@pytest.mark.parametrize("background", [True, False])
def test_candidates_match_reference(collection, allow_overlap, background):
    ids, buckets, vectors, queries = collection
    depth = 120
    settings = RankSettings(
        images_per_class=25,
        query_depth=depth,
        allow_overlap=allow_overlap,
        background=background,
        negative_ratio=0.4,
    )
    names = ["a", "b", "c", "d"]
    rankings = rank_buckets(
        shards_of(ids, vectors, 256), queries, BucketIndex(ids, buckets), [0, 1, 3], depth
    )
    got = [
        (r.concept, r.bucket, r.image_id, r.rank, r.role)
        for r in select_candidates(rankings, names, settings)
    ]
    ref = reference_candidates(
        reference_rankings(ids, buckets, vectors, queries, [0, 1, 3], depth), names, settings
    )
    assert got == ref
    positives = [r for r in got if r[4] == "positive"]
    if not allow_overlap:
        assert len({r[2] for r in positives}) == len(positives)
        # c and d have identical queries: the tie goes to the first, d gets nothing shared.
        assert not (
            {r[2] for r in positives if r[0] == "c"} & {r[2] for r in positives if r[0] == "d"}
        )
    background_ids = {r[2] for r in got if r[4] == "background"}
    assert not background_ids & {r[2] for r in positives}
    assert len(background_ids) == len([r for r in got if r[4] == "background"])


def test_topk_exact_ties_by_id():
    scores = np.asarray([0.5, 0.9, 0.5, 0.5, 0.1], np.float32)
    ids = np.asarray([40, 10, 30, 20, 50], np.int64)
    top_ids, top_scores = topk_exact(scores, ids, 3)
    assert top_ids.tolist() == [10, 20, 30]
    assert top_scores.tolist() == [np.float32(0.9), np.float32(0.5), np.float32(0.5)]
    assert topk_exact(scores, ids, 10)[0].tolist() == [10, 20, 30, 40, 50]


def test_bucket_index_unknown_ids():
    index = BucketIndex(np.asarray([5, 1, 9]), np.asarray([2, 0, -1]))
    assert index.lookup(np.asarray([1, 5, 9, 7, 100])).tolist() == [0, 2, -1, -1, -1]
    assert BucketIndex(np.zeros(0, np.int64), np.zeros(0, np.int64)).lookup(
        np.asarray([1])
    ).tolist() == [-1]


# --- turk rank -------------------------------------------------------------------------


def tiny_args(tiny_clip):
    config, weights = tiny_clip
    return ["--model", str(config), "--pretrained", str(weights), "--device", "cpu"]


def test_turk_rank_writes_candidates_and_exports(cli, embedded_db, sample_dir, tiny_clip):
    result = cli("rank", sample_dir / "concepts.yaml", *tiny_args(tiny_clip))
    assert result.exit_code == 0, result.stderr
    assert "skipped reserved buckets [0]" in result.stdout
    with Ledger(embedded_db) as ledger:
        rows = ledger.conn.execute(
            "SELECT concept, bucket, image_id, score, rank, role FROM candidates "
            "WHERE round = 1 ORDER BY bucket, role DESC, concept, rank"
        ).fetchall()
        # The rest of each ranking waits in the pool for later rounds: positives only,
        # never an image chosen already.
        pool = ledger.conn.execute(
            "SELECT DISTINCT role FROM candidates WHERE round IS NULL"
        ).fetchall()
        assert pool in ([], [("positive",)])
        both = ledger.conn.execute(
            "SELECT COUNT(*) FROM candidates p JOIN candidates c ON c.bucket = p.bucket AND "
            "c.image_id = p.image_id WHERE p.round IS NULL AND c.round = 1"
        ).fetchone()
        assert both == (0,)
        reserved = {r[0] for r in ledger.conn.execute("SELECT id FROM buckets WHERE reserved=1")}
        image_bucket = dict(ledger.conn.execute("SELECT id, bucket FROM images").fetchall())
    assert rows and reserved == {0}
    assert {r[1] for r in rows} <= {1, 2, 3}
    assert all(image_bucket[r[2]] == r[1] for r in rows)
    positives = [r for r in rows if r[5] == "positive"]
    per = {}
    for r in positives:
        per[(r[0], r[1])] = per.get((r[0], r[1]), 0) + 1
    assert max(per.values()) == 18  # candidates_per_class of the sample's concepts file
    assert len({r[2] for r in positives}) == len(positives)  # allow_overlap false
    frame = pd.read_parquet(embedded_db.parent / "candidates" / "candidates.parquet")
    csv = pd.read_csv(embedded_db.parent / "candidates" / "candidates.csv")
    assert list(frame.columns) == ["concept", "bucket", "image_id", "score", "rank", "role"]
    assert len(frame) == len(rows) == len(csv)
    key = ["concept", "bucket", "image_id", "role"]
    assert sorted(map(tuple, frame[key].values.tolist())) == sorted(
        map(tuple, csv[key].values.tolist())
    )

    again = cli("rank", sample_dir / "concepts.yaml", *tiny_args(tiny_clip))
    assert again.exit_code == 0
    with Ledger(embedded_db) as ledger:
        rerun = ledger.conn.execute(
            "SELECT concept, bucket, image_id, score, rank, role FROM candidates "
            "WHERE round = 1 ORDER BY bucket, role DESC, concept, rank"
        ).fetchall()
        # The rest of each ranking waits in the pool for later rounds: positives only,
        # never an image chosen already.
        pool = ledger.conn.execute(
            "SELECT DISTINCT role FROM candidates WHERE round IS NULL"
        ).fetchall()
        assert pool in ([], [("positive",)])
        both = ledger.conn.execute(
            "SELECT COUNT(*) FROM candidates p JOIN candidates c ON c.bucket = p.bucket AND "
            "c.image_id = p.image_id WHERE p.round IS NULL AND c.round = 1"
        ).fetchone()
        assert both == (0,)
    assert rerun == rows  # replaced, same result: deterministic
    # Without --model, rank uses the one model the ledger holds embeddings of.
    alone = cli("rank", sample_dir / "concepts.yaml", "--device", "cpu")
    assert alone.exit_code == 0, alone.stderr
    with Ledger(embedded_db) as ledger:
        chosen = "SELECT COUNT(*) FROM candidates WHERE round = 1"
        assert ledger.conn.execute(chosen).fetchone()[0] == len(rows)
        # With a second model's embeddings, it asks which one.
        ledger.conn.execute(
            "INSERT INTO embedding_shards (slug, shard, model, pretrained, path, ids_path, "
            "count, dim, checksum, created_at) VALUES ('other', 0, 'ViT-B-16', 'x', 'a', "
            "'b', 0, 512, '', '')"
        )
        ledger.conn.commit()
    several = cli("rank", sample_dir / "concepts.yaml", "--device", "cpu")
    assert several.exit_code == 1 and several.stderr.count("\n") == 1
    assert "embeddings of 2 models" in several.stderr and "--model ViT-B-16" in several.stderr


def test_rank_without_embeddings_for_model(cli, embedded_db, sample_dir):
    result = cli("rank", sample_dir / "concepts.yaml", "--model", "ViT-B-32", "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "no embeddings for --model ViT-B-32" in result.stderr
    assert "run 'turk embed --model ViT-B-32" in result.stderr
    with sqlite3.connect(embedded_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == 0


def test_rank_with_typo_in_concepts_key(cli, embedded_db, tmp_path, tiny_clip):
    bad = tmp_path / "c.yaml"
    bad.write_text("settings:\n  query_detph: 50\nconcepts: [bus]\n")
    result = cli("rank", bad, *tiny_args(tiny_clip))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"turk: error: {bad}:2: unknown key 'settings.query_detph'; did you mean 'query_depth'?"
    )
    with sqlite3.connect(embedded_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE command='rank'").fetchone()[0] == 0


def test_rank_needs_buckets(cli, db_path, sample_dir, tiny_clip):
    with Ledger(db_path) as ledger:
        ledger.conn.execute("INSERT INTO images (id, date_uploaded) VALUES (1, 0)")
        ledger.conn.commit()
    result = cli("rank", sample_dir / "concepts.yaml", *tiny_args(tiny_clip))
    assert result.exit_code == 1
    assert "no time buckets; run 'turk buckets' first" in result.stderr


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_rankings_on_cuda_match_brute_force(collection):
    ids, buckets, vectors, queries = collection
    got = rank_buckets(
        shards_of(ids, vectors, 256),
        queries,
        BucketIndex(ids, buckets),
        [0, 1, 3],
        120,
        device="cuda",
        chunk_rows=500,
    )
    ref = reference_rankings(ids, buckets, vectors, queries, [0, 1, 3], 120)
    for b in (0, 1, 3):
        for c in range(queries.shape[0]):
            assert got[b][c].ids.tolist() == ref[b][c][0]
