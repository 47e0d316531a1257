"""The demo's retrieval stages: embed, rank, preview.

Each function is a :data:`turk.demo.DemoStage` body. The demo uses real pretrained
weights when they are on this machine (``--pretrained PATH``, or ViT-B-32 /
laion2b_s34b_b79k already in open_clip's cache); otherwise it builds a tiny open_clip
model with random weights, saves it under ``<out>/model/`` and loads it back through the
same path a user's weights take. Then the ranking is arbitrary, and the stage summaries
and every preview page say so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.modelnames import DEFAULT_MODEL, DEFAULT_PRETRAINED
from turk.embedding import plan_embedding, run_embedding
from turk.ranking import preview_ledger, rank_ledger

if TYPE_CHECKING:
    from turk.demo import DemoContext

RANDOM_WEIGHTS_NOTICE = (
    "No pretrained CLIP weights on this machine: these candidates come from a tiny model "
    "with random weights, so the ranking is arbitrary. Pass --pretrained PATH (or fetch "
    "ViT-B-32 laion2b_s34b_b79k into open_clip's cache) for real retrieval."
)
"""Shown in the demo's output and on every preview page when weights are random."""


def _choose_model(ctx: DemoContext) -> tuple[str, str | None, bool]:
    from retrieval.encoder import TINY_CLIP_CONFIG, cached_pretrained, save_random_model

    if ctx.state.get("pretrained"):
        return str(ctx.state.get("model") or DEFAULT_MODEL), str(ctx.state["pretrained"]), False
    if cached_pretrained(DEFAULT_MODEL, DEFAULT_PRETRAINED) is not None:
        return DEFAULT_MODEL, DEFAULT_PRETRAINED, False
    folder = ctx.out_dir / "model"
    config, weights = folder / "turk-demo-tiny.json", folder / "turk-demo-tiny.pt"
    if not (config.is_file() and weights.is_file()):
        save_random_model(TINY_CLIP_CONFIG, config, weights)
    return str(config), str(weights), True


def stage_embed(ctx: DemoContext) -> str:
    """Embed the sample's images (resumable; a rerun embeds only what is missing).

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    model, pretrained, random_weights = _choose_model(ctx)
    ctx.state["retrieval_model"] = (model, pretrained, random_weights)
    plan = plan_embedding(ctx.ledger, model=model, pretrained=pretrained, device="auto")
    report = run_embedding(ctx.ledger, plan, workers=min(4, os.cpu_count() or 1))
    what = f"{Path(model).name} with {Path(pretrained).name if pretrained else 'random'} weights"
    text = (
        f"{report.images:,} images embedded with {what} on {report.device} "
        f"({report.images_per_second:,.0f} images/s), {report.failed} unreadable, "
        f"{report.already_done:,} already done"
    )
    return f"{text}\n{RANDOM_WEIGHTS_NOTICE}" if random_weights else text


def stage_rank(ctx: DemoContext) -> str:
    """Rank every unreserved bucket for the sample's concepts.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    model, pretrained, random_weights = ctx.state["retrieval_model"]
    report = rank_ledger(
        ctx.ledger, ctx.sample_dir / "concepts.yaml", model=model, pretrained=pretrained
    )
    text = (
        f"{len(report.concepts)} concepts x {len(report.buckets)} buckets: "
        f"{report.positives:,} positives, {report.background:,} background "
        f"(reserved buckets skipped: {report.reserved or 'none'}); wrote {report.csv}"
    )
    return f"{text} (random weights: arbitrary ranking)" if random_weights else text


def stage_preview(ctx: DemoContext) -> str:
    """Write the contact sheets to ``<out>/preview``.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    _, _, random_weights = ctx.state["retrieval_model"]
    notice = RANDOM_WEIGHTS_NOTICE if random_weights else None
    summary = preview_ledger(ctx.ledger, ctx.out_dir / "preview", notice=notice)
    return f"{len(summary.pages)} contact sheets; open {summary.index}"
