"""Exact top-k per concept per bucket, and the candidates chosen from those rankings.

Ranking is brute force (no approximate index: the depth is large and recall must be
exact): one fused matrix product of every query against a chunk of embeddings, then a
streaming top-k merge per bucket and concept. A running threshold per bucket and concept
(the k-th best score so far) keeps only the rows that can still enter the top k, so the
work after the first chunks is the matrix product and one comparison, and memory is
bounded by the chunk plus ``2 x depth`` candidates per bucket and concept, whatever the
collection size. Order is by score, then image id: ties are broken the same way every
run, on every machine.

Candidates (:func:`select_candidates`) follow CLEAR: the top ``images_per_class`` (or
``candidates_per_class``, sent deeper where the top is not all true) of each
concept's ranking are its positives; without overlap an image retrieved for several
concepts stays only with the one it scores highest for; the background class comes from
the bottom of each concept's ranking and never holds an image that is a positive
anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrieval.concepts import RankSettings

DEFAULT_CHUNK_ROWS = 65_536
"""Embeddings scored per matrix product on the CPU."""

GPU_CHUNK_ROWS = 1_048_576
"""Embeddings scored per matrix product on a GPU."""


@dataclass
class Ranking:
    """One concept's ranking in one bucket, best first.

    Attributes:
        ids: ``int64`` image ids, by score descending then id ascending.
        scores: ``float32`` scores in the same order.
    """

    ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class Candidate:
    """A row of the candidates table.

    Attributes:
        concept: Concept the image was retrieved for.
        bucket: Time bucket.
        image_id: Image id.
        score: Query similarity.
        rank: 0-based position in the concept's ranking of the bucket.
        role: ``positive`` or ``background``.
    """

    concept: str
    bucket: int
    image_id: int
    score: float
    rank: int
    role: str


class BucketIndex:
    """Maps image ids to the bucket to rank them in (-1: not ranked).

    Args:
        ids: Image ids.
        buckets: Bucket of each id; negative values mark images not to rank (no
            bucket, or a reserved bucket).
    """

    def __init__(self, ids: np.ndarray, buckets: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        self.ids = np.ascontiguousarray(ids[order], dtype=np.int64)
        self.buckets = np.ascontiguousarray(buckets[order], dtype=np.int64)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Return the bucket of each id (-1 for unknown ids).

        Args:
            ids: Image ids.

        Returns:
            ``int64`` buckets.
        """
        if self.ids.size == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.ids, ids)
        pos_clipped = np.minimum(pos, self.ids.size - 1)
        found = self.ids[pos_clipped] == ids
        return np.where(found, self.buckets[pos_clipped], -1)


def _select_exact(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best by (score descending, id ascending), unsorted; ties resolved by id."""
    n = scores.shape[0]
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if n <= k:
        return ids, scores
    kth = np.partition(scores, n - k)[n - k]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)
    need = k - above.size
    if need < tied.size:
        tied = tied[np.argsort(ids[tied], kind="stable")[:need]]
    keep = np.concatenate([above, tied])
    return ids[keep], scores[keep]


def topk_exact(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``k`` best (score descending, id ascending), exactly, ties included.

    Args:
        scores: ``float32`` scores.
        ids: ``int64`` ids, same length.
        k: How many to keep.

    Returns:
        ``(ids, scores)`` sorted best first, ``min(k, len)`` long.
    """
    ids, scores = _select_exact(scores, ids, k)
    order = np.lexsort((ids, -scores))
    return ids[order].astype(np.int64), scores[order].astype(np.float32)


@dataclass
class _Heap:
    """Candidate buffer of one bucket: per concept, chunks of (scores, ids) + threshold."""

    concepts: int
    depth: int
    thresholds: np.ndarray = field(init=False)
    scores: list[list[np.ndarray]] = field(init=False)
    ids: list[list[np.ndarray]] = field(init=False)
    sizes: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.thresholds = np.full(self.concepts, -np.inf, dtype=np.float32)
        self.scores = [[] for _ in range(self.concepts)]
        self.ids = [[] for _ in range(self.concepts)]
        self.sizes = np.zeros(self.concepts, dtype=np.int64)

    def add(self, concept: int, scores: np.ndarray, ids: np.ndarray) -> None:
        self.scores[concept].append(scores)
        self.ids[concept].append(ids)
        self.sizes[concept] += scores.shape[0]
        if self.sizes[concept] > 2 * self.depth + 4096:
            self.prune(concept)

    def prune(self, concept: int) -> None:
        parts_s, parts_i = self.scores[concept], self.ids[concept]
        if len(parts_s) < 2 and self.sizes[concept] <= self.depth:
            return
        ids, scores = _select_exact(np.concatenate(parts_s), np.concatenate(parts_i), self.depth)
        self.scores[concept], self.ids[concept] = [scores], [ids]
        self.sizes[concept] = scores.shape[0]
        if scores.shape[0] >= self.depth:
            self.thresholds[concept] = scores.min()

    def ranking(self, concept: int) -> Ranking:
        parts_s, parts_i = self.scores[concept], self.ids[concept]
        if not parts_s:
            return Ranking(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        ids, scores = topk_exact(np.concatenate(parts_s), np.concatenate(parts_i), self.depth)
        return Ranking(ids, scores)


def _cpu_candidates(
    vectors: np.ndarray,
    queries_t: Any,
    thresholds: np.ndarray,
    ids: np.ndarray,
    depth: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch

    x = torch.from_numpy(vectors.astype(np.float32))
    scores = (x @ queries_t.T).numpy().T  # (C, n) view of the (n, C) product
    n = scores.shape[1]
    cut = thresholds
    unset = ~np.isfinite(thresholds)
    if unset.any() and n > depth:
        # No threshold yet: the chunk's own k-th best is a safe cut (rows below it have
        # k better rows in this chunk alone).
        kth = np.partition(scores[unset], n - depth, axis=1)[:, n - depth]
        cut = thresholds.copy()
        cut[unset] = kth
    mask = scores >= cut[:, None]
    concept_idx, row_idx = np.nonzero(mask)
    return concept_idx, scores[concept_idx, row_idx], ids[row_idx]


def _gpu_candidates(
    vectors: np.ndarray,
    queries_t: Any,
    thresholds: np.ndarray,
    ids: np.ndarray,
    depth: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch

    device = queries_t.device
    x = torch.from_numpy(np.ascontiguousarray(vectors)).to(device, non_blocking=True)
    # float32 products (no TF32): the same scores, hence the same order, as on the CPU.
    scores = queries_t @ x.float().T  # (C, n)
    k = min(depth, scores.shape[1])
    kth = torch.topk(scores, k, dim=1, sorted=False).values.min(dim=1).values
    cut = torch.maximum(kth, torch.from_numpy(thresholds).to(device))
    mask = scores >= cut[:, None]
    concept_idx, row_idx = torch.nonzero(mask, as_tuple=True)
    values = scores[concept_idx, row_idx]
    rows = row_idx.cpu().numpy()
    return concept_idx.cpu().numpy(), values.cpu().numpy(), ids[rows]


def rank_buckets(
    shards: Iterable[tuple[np.ndarray, np.ndarray]],
    queries: np.ndarray,
    bucket_index: BucketIndex,
    buckets: Sequence[int],
    depth: int,
    *,
    device: str = "cpu",
    chunk_rows: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[int, list[Ranking]]:
    """Rank every bucket's images for every query, exactly, to ``depth``.

    Args:
        shards: ``(ids, vectors)`` pairs (vectors may be memory maps; read in chunks).
        queries: ``float32`` ``(C, dim)`` query vectors, one per concept.
        bucket_index: Which bucket each image is ranked in (-1: skipped).
        buckets: Buckets to return (empty ones get empty rankings).
        depth: Ranking depth per concept per bucket.
        device: ``cpu`` or a CUDA device (matrix product and first cut on the GPU).
        chunk_rows: Embeddings per matrix product (default by device).
        on_progress: Called with the number of embeddings just scored.

    Returns:
        ``{bucket: [Ranking per query, in query order]}``.
    """
    import torch

    on_gpu = device.startswith("cuda")
    rows = chunk_rows or (GPU_CHUNK_ROWS if on_gpu else DEFAULT_CHUNK_ROWS)
    queries_t = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    if on_gpu:
        queries_t = queries_t.to(device)
    n_queries = queries.shape[0]
    heaps = {int(b): _Heap(n_queries, depth) for b in buckets}
    wanted = np.asarray(sorted(heaps), dtype=np.int64)
    for shard_ids, shard_vectors in shards:
        for start in range(0, shard_ids.shape[0], rows):
            ids = np.asarray(shard_ids[start : start + rows], dtype=np.int64)
            of = bucket_index.lookup(ids)
            keep = np.isin(of, wanted)
            if not keep.all():
                ids, of = ids[keep], of[keep]
                vectors = np.asarray(shard_vectors[start : start + rows])[keep]
            else:
                vectors = np.asarray(shard_vectors[start : start + rows])
            if ids.size:
                order = np.argsort(of, kind="stable")
                of, ids, vectors = of[order], ids[order], vectors[order]
                starts = np.flatnonzero(np.r_[True, of[1:] != of[:-1]])
                ends = np.r_[starts[1:], of.size]
                for lo, hi in zip(starts, ends, strict=True):
                    heap = heaps[int(of[lo])]
                    if on_gpu:
                        found = _gpu_candidates(
                            vectors[lo:hi], queries_t, heap.thresholds, ids[lo:hi], depth
                        )
                    else:
                        found = _cpu_candidates(
                            vectors[lo:hi], queries_t, heap.thresholds, ids[lo:hi], depth
                        )
                    concept_idx, values, value_ids = found
                    splits = np.searchsorted(concept_idx, np.arange(n_queries + 1))
                    for c in np.flatnonzero(splits[1:] > splits[:-1]):
                        a, b = splits[c], splits[c + 1]
                        heap.add(int(c), values[a:b], value_ids[a:b])
            if on_progress is not None:
                on_progress(int(min(rows, shard_ids.shape[0] - start)))
    out: dict[int, list[Ranking]] = {}
    for bucket, heap in heaps.items():
        out[bucket] = [heap.ranking(c) for c in range(n_queries)]
    return out


def select_candidates(
    rankings: dict[int, list[Ranking]],
    concept_names: Sequence[str],
    settings: RankSettings,
) -> list[Candidate]:
    """Choose positives and background picks from the rankings of every bucket.

    Args:
        rankings: Output of :func:`rank_buckets` (rankings in concept order).
        concept_names: Concept names, in the same order.
        settings: ``candidates`` (``candidates_per_class`` or ``images_per_class``),
            ``allow_overlap``, ``background``, ``negative_ratio``.

    Returns:
        Candidates ordered by bucket, role (positives first), concept order, rank.
    """
    out: list[Candidate] = []
    per_class = settings.candidates
    for bucket in sorted(rankings):
        ranked = rankings[bucket]
        owner: dict[int, tuple[float, int]] = {}
        if not settings.allow_overlap:
            # Best concept per image among the rankings that retrieved it (ties: first).
            for c, ranking in enumerate(ranked):
                for image_id, score in zip(
                    ranking.ids.tolist(), ranking.scores.tolist(), strict=True
                ):
                    best = owner.get(image_id)
                    if best is None or score > best[0]:
                        owner[image_id] = (score, c)
        positives: set[int] = set()
        for c, ranking in enumerate(ranked):
            kept = 0
            for position, (image_id, score) in enumerate(
                zip(ranking.ids.tolist(), ranking.scores.tolist(), strict=True)
            ):
                if kept >= per_class:
                    break
                if not settings.allow_overlap and owner[image_id][1] != c:
                    continue
                out.append(
                    Candidate(concept_names[c], bucket, image_id, score, position, "positive")
                )
                positives.add(image_id)
                kept += 1
        wanted = settings.background_per_concept
        if wanted <= 0:
            continue
        picked: set[int] = set()
        for c, ranking in enumerate(ranked):
            taken = 0
            ids, scores = ranking.ids.tolist(), ranking.scores.tolist()
            for position in range(len(ids) - 1, -1, -1):
                if taken >= wanted:
                    break
                image_id = ids[position]
                if image_id in positives or image_id in picked:
                    continue
                out.append(
                    Candidate(
                        concept_names[c], bucket, image_id, scores[position], position, "background"
                    )
                )
                picked.add(image_id)
                taken += 1
    return out
