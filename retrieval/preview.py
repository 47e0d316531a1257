"""Static HTML contact sheets of ranked candidates, for engineering prompts before paying.

One page per concept and bucket (the positives with their scores, the background picks,
the prompts used) plus an index page. Thumbnails are written next to the pages and
referenced by relative path, so the folder works from ``file://`` and over HTTP and can
be copied elsewhere whole. Pages are rendered by Jinja2 with autoescaping (titles and
prompts are user text) and carry no scripts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from retrieval.errors import RetrievalError

THUMB_SIZE = 192
"""Longest side of thumbnails in pixels."""


@dataclass(frozen=True)
class PreviewItem:
    """One image on a contact sheet.

    Attributes:
        image_id: Image id.
        path: The image file, or None when it has no local file.
        score: Query similarity.
        rank: Position in the concept's ranking.
    """

    image_id: int
    path: str | None
    score: float
    rank: int


@dataclass
class PreviewSheet:
    """The contact sheet of one concept in one bucket.

    Attributes:
        concept: Concept name.
        bucket: Bucket number.
        prompts: The prompts (and templates, prefix, negatives) used, as lines.
        positives: Top images.
        background: Background picks from this concept's ranking.
    """

    concept: str
    bucket: int
    prompts: list[str]
    positives: list[PreviewItem] = field(default_factory=list)
    background: list[PreviewItem] = field(default_factory=list)


@dataclass
class PreviewSummary:
    """What :func:`write_preview` wrote.

    Attributes:
        index: The index page.
        pages: Every contact sheet page.
        thumbnails: Thumbnails written (existing ones are reused).
        missing: Images without a readable file (shown as a labelled placeholder).
    """

    index: Path
    pages: list[Path] = field(default_factory=list)
    thumbnails: int = 0
    missing: int = 0


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("retrieval", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _thumbnail(source: str, target: Path) -> bool:
    if target.exists():
        return False
    with Image.open(source) as img:
        img.draft("RGB", (THUMB_SIZE, THUMB_SIZE))
        rgb = img.convert("RGB")
    rgb.thumbnail((THUMB_SIZE, THUMB_SIZE))
    tmp = target.with_name(target.name + ".tmp")
    rgb.save(tmp, format="JPEG", quality=85)
    os.replace(tmp, target)
    return True


def _slug(text: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
    return safe.strip("-") or "concept"


def write_preview(
    sheets: Sequence[PreviewSheet],
    out_dir: Path,
    *,
    title: str,
    notice: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PreviewSummary:
    """Write the contact sheets and the index page.

    Args:
        sheets: One sheet per concept and bucket.
        out_dir: Output folder (created); thumbnails go to ``out_dir/thumbs``.
        title: Title of the index page (e.g. the model used).
        notice: A warning shown at the top of every page (e.g. random weights), or None.
        on_progress: Called with 1 per page written.

    Returns:
        The :class:`PreviewSummary`.

    Raises:
        RetrievalError: The output folder cannot be written.
    """
    env = _environment()
    sheet_template = env.get_template("preview_sheet.html.j2")
    index_template = env.get_template("preview_index.html.j2")
    thumbs = out_dir / "thumbs"
    try:
        thumbs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RetrievalError(
            f"{out_dir}: cannot write the preview here ({exc}); pass --out"
        ) from exc
    index = out_dir / "index.html"
    summary = PreviewSummary(index=index)
    thumb_of: dict[int, str | None] = {}

    def thumb(item: PreviewItem) -> str | None:
        if item.image_id in thumb_of:
            return thumb_of[item.image_id]
        target = thumbs / f"{item.image_id}.jpg"
        rel: str | None = f"thumbs/{target.name}"
        if item.path is None:
            rel = None
        else:
            try:
                if _thumbnail(item.path, target):
                    summary.thumbnails += 1
            except (OSError, ValueError, SyntaxError):
                rel = None
        if rel is None:
            summary.missing += 1
        thumb_of[item.image_id] = rel
        return rel

    entries = []
    for sheet in sheets:
        name = f"{_slug(sheet.concept)}-bucket-{sheet.bucket}.html"
        page = out_dir / name
        html = sheet_template.render(
            title=f"{sheet.concept} · bucket {sheet.bucket}",
            notice=notice,
            sheet=sheet,
            positives=[(i, thumb(i)) for i in sheet.positives],
            background=[(i, thumb(i)) for i in sheet.background],
        )
        page.write_text(html, encoding="utf-8")
        summary.pages.append(page)
        entries.append((sheet, name))
        if on_progress is not None:
            on_progress(1)
    concepts = sorted({s.concept for s in sheets}, key=[s.concept for s in sheets].index)
    buckets = sorted({s.bucket for s in sheets})
    grid = {
        (s.concept, s.bucket): (name, len(s.positives), len(s.background)) for s, name in entries
    }
    index.write_text(
        index_template.render(
            title=title, notice=notice, concepts=concepts, buckets=buckets, grid=grid
        ),
        encoding="utf-8",
    )
    return summary
