"""retrieval: collection readers, temporal buckets, CLIP embedding and ranking.

A library over files and arrays; it never imports :mod:`turk`. Long work reports
progress through an optional ``on_progress(n)`` callback (``n`` items just done),
so callers choose how to show it. Nothing here imports torch or open_clip at module
level except the encoder module.

The names below are its public surface; each loads its module on first use, so
``import retrieval`` costs nothing (no numpy, no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "RetrievalError": "retrieval.errors",
    "CollectionError": "retrieval.errors",
    "ModelError": "retrieval.errors",
    "WeightsUnavailableError": "retrieval.errors",
    "ConceptsError": "retrieval.errors",
    "CollectionFilters": "retrieval.collection",
    "MetadataFile": "retrieval.collection",
    "detect_layout": "retrieval.collection",
    "decode_metadata": "retrieval.collection",
    "TimeRange": "retrieval.buckets",
    "equal_count_ranges": "retrieval.buckets",
    "yearly_ranges": "retrieval.buckets",
    "load_ranges": "retrieval.buckets",
    "assign_buckets": "retrieval.buckets",
    "BACKGROUND": "retrieval.concepts",
    "Concept": "retrieval.concepts",
    "ConceptsFile": "retrieval.concepts",
    "RankSettings": "retrieval.concepts",
    "load_concepts": "retrieval.concepts",
    "DEFAULT_MODEL": "retrieval.modelnames",
    "DEFAULT_PRETRAINED": "retrieval.modelnames",
    "model_slug": "retrieval.modelnames",
    "ClipEncoder": "retrieval.encoder",
    "load_encoder": "retrieval.encoder",
    "EmbedSummary": "retrieval.embed",
    "embed_images": "retrieval.embed",
    "Candidate": "retrieval.rank",
    "Ranking": "retrieval.rank",
    "rank_buckets": "retrieval.rank",
    "select_candidates": "retrieval.rank",
    "PreviewSummary": "retrieval.preview",
    "write_preview": "retrieval.preview",
    "TarSample": "retrieval.tarshards",
    "expand_shard_pattern": "retrieval.tarshards",
    "iter_tar_samples": "retrieval.tarshards",
    "DEMO_MODEL_LABEL": "retrieval.demomodel",
    "demo_model_paths": "retrieval.demomodel",
    "describe_model": "retrieval.demomodel",
    "is_demo_weights": "retrieval.demomodel",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from retrieval.buckets import (
        TimeRange,
        assign_buckets,
        equal_count_ranges,
        load_ranges,
        yearly_ranges,
    )
    from retrieval.collection import CollectionFilters, MetadataFile, decode_metadata, detect_layout
    from retrieval.concepts import BACKGROUND, Concept, ConceptsFile, RankSettings, load_concepts
    from retrieval.demomodel import (
        DEMO_MODEL_LABEL,
        demo_model_paths,
        describe_model,
        is_demo_weights,
    )
    from retrieval.embed import EmbedSummary, embed_images
    from retrieval.encoder import ClipEncoder, load_encoder
    from retrieval.errors import (
        CollectionError,
        ConceptsError,
        ModelError,
        RetrievalError,
        WeightsUnavailableError,
    )
    from retrieval.modelnames import DEFAULT_MODEL, DEFAULT_PRETRAINED, model_slug
    from retrieval.preview import PreviewSummary, write_preview
    from retrieval.rank import Candidate, Ranking, rank_buckets, select_candidates
    from retrieval.tarshards import TarSample, expand_shard_pattern, iter_tar_samples

__all__ = [
    "BACKGROUND",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "DEMO_MODEL_LABEL",
    "Candidate",
    "ClipEncoder",
    "CollectionError",
    "CollectionFilters",
    "Concept",
    "ConceptsError",
    "ConceptsFile",
    "EmbedSummary",
    "MetadataFile",
    "ModelError",
    "PreviewSummary",
    "RankSettings",
    "Ranking",
    "RetrievalError",
    "TarSample",
    "TimeRange",
    "WeightsUnavailableError",
    "assign_buckets",
    "decode_metadata",
    "demo_model_paths",
    "describe_model",
    "detect_layout",
    "embed_images",
    "equal_count_ranges",
    "expand_shard_pattern",
    "is_demo_weights",
    "iter_tar_samples",
    "load_concepts",
    "load_encoder",
    "load_ranges",
    "model_slug",
    "rank_buckets",
    "select_candidates",
    "write_preview",
    "yearly_ranges",
]
