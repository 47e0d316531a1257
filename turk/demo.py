"""The offline demo (``turk demo``): the pipeline, stage by stage, on a fresh sample.

:data:`STAGES` is an ordered list of ``(name, function)``. Each function takes the
:class:`DemoContext` and returns a short summary (one or a few lines) of what it did.
A later stage of the pipeline adds itself by appending one function here, reading what
earlier stages left in the context (the ledger, ``ctx.sample_dir``, ``ctx.state``).
Everything lives in the demo's folder: the sample collection in ``<out>/sample`` and
the ledger at ``<out>/turk.db``. Every stage is idempotent, so rerunning the demo on
the same folder redoes only what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turk.analysis_demo import stage_audit, stage_export, stage_report
from turk.bucketing import format_bucket_table, make_buckets
from turk.crowd.demo import CROWD_STAGES
from turk.ingest import ingest_collection
from turk.ledger import Ledger
from turk.retrieval_demo import stage_embed, stage_preview, stage_rank
from turk.sample import DEFAULT_IMAGE_SIZE, write_sample
from turk.templates_demo import stage_render

DEMO_BUCKETS = 11
"""Equal-count buckets in the demo (as CLEAR-10), bucket 0 reserved as unlabeled."""


@dataclass
class DemoContext:
    """What the demo's stages share.

    Attributes:
        out_dir: The demo's folder.
        n: Photos in the sample collection.
        seed: Seed of the sample collection.
        image_size: Size of the sample's JPEGs.
        ledger: The demo's open ledger (``<out>/turk.db``).
        state: Values a stage leaves for later ones, by name.
        closers: Called when the demo ends, even after a failed stage (e.g. to stop a
            background server a stage started).
    """

    out_dir: Path
    n: int
    seed: int
    image_size: tuple[int, int]
    ledger: Ledger
    state: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def sample_dir(self) -> Path:
        """The sample collection's folder."""
        return self.out_dir / "sample"

    @property
    def db_path(self) -> Path:
        """The demo's ledger file."""
        return self.out_dir / "turk.db"


DemoStage = tuple[str, Callable[[DemoContext], str]]
"""A stage: its name and the function that runs it and returns its summary."""


def stage_sample(ctx: DemoContext) -> str:
    """Write (or keep) the sample collection in ``<out>/sample``.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    summary = write_sample(ctx.sample_dir, n=ctx.n, seed=ctx.seed, image_size=ctx.image_size)
    ctx.state["sample"] = summary
    kinds = ", ".join(f"{c} {k}" for c, k in sorted(summary.concepts.items()))
    verb = "kept" if summary.reused else "wrote"
    return (
        f"{verb} {summary.images:,} photos ({kinds}), {summary.videos} videos and "
        f"{summary.malformed} malformed lines in {ctx.sample_dir}"
    )


def stage_ingest(ctx: DemoContext) -> str:
    """Ingest the sample's ``metadata.tsv`` (photos only) into the ledger.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary.
    """
    summary = ingest_collection(ctx.ledger, [ctx.sample_dir / "metadata.tsv"])
    ctx.state["ingest"] = summary
    f = summary.files[0]
    filtered = ", ".join(f"{n} {why}" for why, n in sorted(f.filtered.items())) or "none"
    where = f" (see {f.rejects_path})" if f.rejects_path else ""
    return (
        f"read {f.lines:,} lines ({f.layout}): {f.inserted:,} new images, "
        f"{f.already_present:,} already present, filtered {filtered}, "
        f"{f.rejected} malformed lines rejected{where}"
    )


def stage_buckets(ctx: DemoContext) -> str:
    """Split the images into equal-count time buckets, bucket 0 unlabeled.

    Args:
        ctx: The demo context.

    Returns:
        The stage's summary, with the bucket table.
    """
    images = int(ctx.ledger.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    result = make_buckets(ctx.ledger, count=min(DEMO_BUCKETS, images), reserve=[0])
    ctx.state["buckets"] = result
    return (
        f"{len(result.buckets)} equal-count buckets by upload time; bucket 0 reserved "
        f"(unlabeled, pre-training only)\n{format_bucket_table(result.buckets)}"
    )


STAGES: list[DemoStage] = [
    ("sample", stage_sample),
    ("ingest", stage_ingest),
    ("buckets", stage_buckets),
    ("embed", stage_embed),
    ("rank", stage_rank),
    ("preview", stage_preview),
    ("render", stage_render),
    *CROWD_STAGES,
    ("audit", stage_audit),
    ("report", stage_report),
    ("export", stage_export),
]
"""The demo's stages in order; later stages of the pipeline append themselves."""


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    n: int = 2000,
    seed: int = 0,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    stages: list[DemoStage] | None = None,
    on_stage: Callable[[str, str], None] | None = None,
    model: str | None = None,
    pretrained: str | None = None,
) -> DemoContext:
    """Run the demo's stages in order in ``out_dir``.

    Args:
        out_dir: The demo's folder (created when missing); its ledger is ``turk.db``.
        n: Photos in the sample collection.
        seed: Seed of the sample collection.
        image_size: Size of the sample's JPEGs.
        stages: Stages to run; default :data:`STAGES`.
        on_stage: Called with each stage's name and summary as it finishes.
        model: CLIP model for the embed stage (with ``pretrained``); default ViT-B-32.
        pretrained: CLIP weights file or tag; default: cached ViT-B-32 weights, else a
            tiny random-weight model (and the demo says the ranking is arbitrary).

    Returns:
        The context after the last stage (its ledger is closed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out / "turk.db")
    ctx = DemoContext(out_dir=out, n=n, seed=seed, image_size=image_size, ledger=ledger)
    ctx.state.update(model=model, pretrained=pretrained)
    try:
        for name, stage in stages if stages is not None else STAGES:
            summary = stage(ctx)
            if on_stage is not None:
                on_stage(name, summary)
    finally:
        for close in reversed(ctx.closers):
            close()
        ledger.close()
    return ctx
