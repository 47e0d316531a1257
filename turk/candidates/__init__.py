"""The candidates: CLIP embeddings of every image and each concept's ranked candidates.

``turk embed`` (:mod:`~turk.candidates.embed`), ``turk rank``
(:mod:`~turk.candidates.rank`) and ``turk preview`` (:mod:`~turk.candidates.preview`)
wire :mod:`retrieval` to the ledger. The area owns ``embedding_shards``,
``embedding_failures`` and ``candidates``; other areas read them through
:mod:`turk.candidates.tables`. Commands: :mod:`turk.cli.commands.candidates`.

The names below load their module on first use, so importing the package costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from turk import _lazy_exports

if TYPE_CHECKING:
    from turk.candidates.embed import (
        EmbedPlan,
        EmbedReport,
        RayEmbedPlan,
        load_embeddings,
        plan_embedding,
        plan_ray_embedding,
        registered_shards,
        run_embedding,
        run_ray_embedding,
    )
    from turk.candidates.preview import preview_ledger
    from turk.candidates.rank import RankReport, embedded_model, rank_ledger

_EXPORTS: dict[str, str] = {
    "EmbedPlan": "turk.candidates.embed",
    "EmbedReport": "turk.candidates.embed",
    "RayEmbedPlan": "turk.candidates.embed",
    "plan_ray_embedding": "turk.candidates.embed",
    "run_ray_embedding": "turk.candidates.embed",
    "load_embeddings": "turk.candidates.embed",
    "plan_embedding": "turk.candidates.embed",
    "registered_shards": "turk.candidates.embed",
    "run_embedding": "turk.candidates.embed",
    "RankReport": "turk.candidates.rank",
    "embedded_model": "turk.candidates.rank",
    "rank_ledger": "turk.candidates.rank",
    "preview_ledger": "turk.candidates.preview",
}

__all__ = [
    "EmbedPlan",
    "EmbedReport",
    "RankReport",
    "RayEmbedPlan",
    "embedded_model",
    "load_embeddings",
    "plan_embedding",
    "plan_ray_embedding",
    "preview_ledger",
    "rank_ledger",
    "registered_shards",
    "run_embedding",
    "run_ray_embedding",
]


__getattr__ = _lazy_exports(__name__, _EXPORTS)
