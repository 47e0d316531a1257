"""Model names without the model: defaults and embeddings-folder names (no torch here)."""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_MODEL = "ViT-B-32"
"""Model used when none is named."""

DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
"""Pretrained tag used with :data:`DEFAULT_MODEL` when none is named."""


RANDOM_WEIGHTS = "none"
"""What ``--pretrained`` and ``model.pretrained`` say for random weights."""


def parse_pretrained(text: str | None) -> str | None:
    """Weights as given on a command line or in turk.yaml: None for random weights.

    Args:
        text: A pretrained tag, a weights file path, ``none`` (any case), or None.

    Returns:
        The tag or path, or None for random weights.
    """
    if text is None or text.strip().lower() == RANDOM_WEIGHTS:
        return None
    return text


def _slug_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def model_slug(model: str, pretrained: str | None) -> str:
    """Name of the embeddings folder for a model and its weights.

    Args:
        model: Model name or config JSON path.
        pretrained: Pretrained tag, weights file path, or None for random weights.

    Returns:
        A file-system-safe name such as ``ViT-B-32--laion2b_s34b_b79k``.
    """
    name = Path(model).stem if model.endswith(".json") else model
    if pretrained is None:
        weights = "random"
    elif os.sep in pretrained or Path(pretrained).suffix:
        weights = Path(pretrained).stem
    else:
        weights = pretrained
    return f"{_slug_part(name)}--{_slug_part(weights)}"
