"""The demo model: a tiny open_clip model trained on synthetic sample scenes, not CLIP.

Pretrained CLIP weights need a download; where there is no network, the project still
shows retrieval working with this stand-in. Its config (open_clip's model-config JSON
format) and weights (a ``state_dict`` saved in float16, about 3 MB) are package data
under ``retrieval/data/demo_model/``. ``scripts/train_demo_model.py`` made them: it
trains the model contrastively on a sample collection (turk's ``turk sample``) of
another seed than the one demos and benchmarks evaluate on, with captions built from
the concepts' own prompts and templates and from the distractor scenes' names; the
command, seed, time and figures are in ``benchmarks/RESULTS.md``.

The files load through exactly the path real weights take: ``--model <config.json>
--pretrained <weights.pt>``, i.e. open_clip's ``create_model`` (see
:func:`retrieval.encoder.load_encoder`). No torch here: this module only names and
checks the files.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

from retrieval.errors import ModelError

DEMO_MODEL_LABEL = "demo model: a tiny open_clip trained on synthetic sample scenes, not CLIP"
"""One line shown wherever results of the demo model are shown."""

DEMO_MODEL_NAME = "turk-demo-clip"
"""The demo model's open_clip name (the stem of its config file)."""

DEMO_WEIGHTS_SHA256 = "b5fbb5f6ebf8bfcf275707a9f2011e36dd6b24d9af109e321639c692d00303a8"
"""SHA-256 of the shipped weights file (written by ``scripts/train_demo_model.py``)."""

DEMO_MODEL_CONFIG: dict[str, object] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
"""The demo model's architecture (text width 32 keeps the token table small)."""


def demo_model_folder() -> Path:
    """Folder of the shipped demo model files (package data)."""
    return Path(str(resources.files("retrieval").joinpath("data/demo_model")))


@cache
def _checked(weights: Path, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with weights.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def demo_model_paths(folder: Path | None = None) -> tuple[Path, Path]:
    """Return the demo model's ``(config_path, weights_path)``, checking the weights.

    Pass them on as ``--model CONFIG --pretrained WEIGHTS`` (or to
    :func:`retrieval.encoder.load_encoder`), exactly like a user's own weights.

    Args:
        folder: Where the two files are; None for the shipped package data.

    Returns:
        The config JSON and the weights file.

    Raises:
        ModelError: A file is missing, or the weights' SHA-256 is not the one shipped
            (a damaged or replaced file).
    """
    folder = demo_model_folder() if folder is None else Path(folder)
    config, weights = folder / f"{DEMO_MODEL_NAME}.json", folder / f"{DEMO_MODEL_NAME}.pt"
    for path in (config, weights):
        if not path.is_file():
            raise ModelError(
                f"{path}: demo model file missing; reinstall the package or rerun "
                "scripts/train_demo_model.py"
            )
    stat = weights.stat()
    found = _checked(weights, stat.st_size, stat.st_mtime)
    if found != DEMO_WEIGHTS_SHA256:
        raise ModelError(
            f"{weights}: SHA-256 {found[:12]}... is not the shipped {DEMO_WEIGHTS_SHA256[:12]}...; "
            "the file is damaged or was replaced: reinstall the package or rerun "
            "scripts/train_demo_model.py"
        )
    return config, weights


def is_demo_weights(pretrained: str | None) -> bool:
    """Whether ``pretrained`` is a file holding the shipped demo model's weights.

    Args:
        pretrained: A pretrained tag, a weights file path, or None.

    Returns:
        True for a readable file whose SHA-256 is the demo weights' (a copy counts too).
    """
    if pretrained is None:
        return False
    path = Path(pretrained)
    if not path.is_file() or path.suffix != ".pt":
        return False
    stat = path.stat()
    return _checked(path, stat.st_size, stat.st_mtime) == DEMO_WEIGHTS_SHA256


def describe_model(model: str, pretrained: str | None) -> str:
    """Say in one line which model and weights made a ranking, for people to read.

    Args:
        model: The open_clip model name or config path, as given to the embed stage.
        pretrained: The pretrained tag, weights file, or None for random weights.

    Returns:
        :data:`DEMO_MODEL_LABEL` for the demo weights; otherwise the model and weights,
        with a warning for random weights.
    """
    name = Path(model).stem if model.endswith(".json") else model
    if is_demo_weights(pretrained):
        return f"{DEMO_MODEL_LABEL} ({name}, {Path(str(pretrained)).name})"
    if pretrained is None:
        return f"{name} with random weights: the ranking is arbitrary (tests only)"
    weights = Path(pretrained).name if Path(pretrained).suffix else pretrained
    return f"{name} with {weights} weights"
