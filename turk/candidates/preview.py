"""``turk preview``: contact sheets of the current candidates, one page per concept and bucket.

Wires :mod:`retrieval.preview` to the ledger: the candidates ``turk rank`` stored, with
their images' files, in rank order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from retrieval.preview import PreviewItem, PreviewSheet, PreviewSummary, write_preview
from turk.candidates.tables import CANDIDATE_COLUMNS, candidate_rows
from turk.collection.tables import bucket_ids, image_files
from turk.errors import StageError
from turk.ledger import Ledger

__all__ = ["preview_ledger"]


def preview_ledger(
    ledger: Ledger,
    out_dir: Path | None = None,
    *,
    notice: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PreviewSummary:
    """Write contact sheets of the current candidates (see :mod:`retrieval.preview`).

    Args:
        ledger: The ledger.
        out_dir: Output folder; default ``<ledger root>/preview``.
        notice: A warning to show on every page (e.g. random model weights).
        on_progress: Called with 1 per page written.

    Returns:
        The :class:`PreviewSummary`.

    Raises:
        StageError: ``turk rank`` has not run.
    """
    last = ledger.last_run("rank")
    if last is None:
        raise StageError(f"{ledger.path}: no candidates yet; run 'turk rank CONCEPTS.yaml' first")
    settings = last["settings"]
    names: list[str] = list(settings.get("concepts") or [])
    prompts: dict[str, list[str]] = settings.get("prompts") or {}
    rows = candidate_rows(ledger).sort_values(["bucket", "concept", "role", "rank"], kind="stable")
    paths = image_files(ledger, rows["image_id"].tolist())
    sheets: dict[tuple[str, int], PreviewSheet] = {}
    for name in names:
        for b in bucket_ids(ledger, reserved=False):
            sheets[(name, b)] = PreviewSheet(name, b, prompts.get(name, []))
    for concept, bucket, image_id, score, rank, role in rows[CANDIDATE_COLUMNS].itertuples(
        index=False
    ):
        sheet = sheets.setdefault(
            (concept, bucket), PreviewSheet(concept, bucket, prompts.get(concept, []))
        )
        item = PreviewItem(int(image_id), paths.get(int(image_id)), float(score), int(rank))
        (sheet.positives if role == "positive" else sheet.background).append(item)
    for sheet in sheets.values():
        sheet.background.sort(key=lambda i: -i.rank)
    title = f"turk preview · {settings.get('slug', '')} · {len(rows)} candidates"
    return write_preview(
        list(sheets.values()),
        out_dir or (ledger.root / "preview"),
        title=title,
        notice=notice,
        on_progress=on_progress,
    )
