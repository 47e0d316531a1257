"""The offline demo (``turk demo``): ``turk init --from-sample``, then ``turk run``.

The demo is not a pipeline of its own. It writes a sample project into its folder
(:func:`turk.project.scaffold.init_project`: a sample collection, the demo model,
simulated workers on the local sandbox, audits read from the sample's truth) unless
the folder already holds one, and runs the same :func:`turk.project.pipeline.run_pipeline`
that ``turk run`` runs. So the demo shows exactly what a newcomer's first project
does, and a rerun on the same folder redoes only what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from retrieval.modelnames import parse_pretrained
from turk.project.config import PROJECT_FILE, ProjectConfig, load_project
from turk.project.pipeline import ProgressFactory, RunResult, StageOutcome, run_pipeline
from turk.project.scaffold import InitSummary, init_project


@dataclass
class DemoResult:
    """What :func:`run_demo` did.

    Attributes:
        project: The demo's project folder.
        config: The project as the run saw it (with any model override).
        init: What ``init`` wrote, or None when the folder was already a project.
        run: The pipeline's result.
    """

    project: Path
    config: ProjectConfig
    init: InitSummary | None
    run: RunResult


def _with_model(config: ProjectConfig, model: str | None, pretrained: str | None) -> ProjectConfig:
    """The project with the demo's ``--model`` / ``--pretrained`` in place of turk.yaml's."""
    if model is None and pretrained is None:
        return config
    settings = config.model
    if model is not None:
        name = str(Path(model).resolve()) if model.endswith(".json") else model
        settings = replace(settings, name=name)
    if pretrained is not None:
        weights = parse_pretrained(pretrained)
        if weights is not None and Path(weights).is_file():
            weights = str(Path(weights).resolve())
        settings = replace(settings, pretrained=weights)
    return replace(config, model=settings)


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    n: int = 2000,
    seed: int = 0,
    model: str | None = None,
    pretrained: str | None = None,
    on_stage: Callable[[StageOutcome], None] | None = None,
    progress: ProgressFactory | None = None,
) -> DemoResult:
    """Make (or reuse) a sample project in ``out_dir`` and run its whole pipeline offline.

    Args:
        out_dir: The demo's project folder (created when missing).
        n: Photos in the sample collection of a new project.
        seed: Seed of the sample collection of a new project.
        model: open_clip model name or config JSON instead of turk.yaml's (the demo
            model); used with ``pretrained``.
        pretrained: Weights tag or file instead of turk.yaml's, ``"none"`` for random
            weights.
        on_stage: Called with each stage's outcome as it finishes.
        progress: Makes progress callbacks for long stages.

    Returns:
        The :class:`DemoResult`.

    Raises:
        ConfigError: ``out_dir`` is a file, or its turk.yaml is broken.
        StageError: A stage found its inputs out of date (the message names the fix).
    """
    project = Path(out_dir)
    init = None
    if not (project / PROJECT_FILE).exists():
        init = init_project(project, from_sample=True, n=n, seed=seed)
    config = _with_model(load_project(project / PROJECT_FILE), model, pretrained)
    result = run_pipeline(config, on_stage=on_stage, progress=progress)
    return DemoResult(project=project, config=config, init=init, run=result)
