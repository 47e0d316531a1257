"""Command defaults from ``turk.yaml``: inside a project every command uses its settings.

Run inside a project folder (or below it) without ``--db`` or ``$TURK_DB``, each command
takes the project's ledger and its option defaults from the project file, so that
``turk render`` builds the HITs ``turk publish`` and ``turk run`` build, and
``turk expire`` talks to ``crowd.endpoint``. Options given on the command line still
win. :func:`command_defaults` is the one map from the file's keys to the commands'
options; it is handed to click as the root context's ``default_map``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from retrieval.modelnames import RANDOM_WEIGHTS
from turk.project.config import ProjectConfig

__all__ = ["PROJECT_COMMANDS", "command_defaults"]

PROJECT_COMMANDS = frozenset({"init", "run", "doctor", "demo", "sample"})
"""Commands that read the project file themselves (or need none): no defaults applied."""


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _embed_options(config: ProjectConfig) -> dict[str, Any]:
    embed = config.embed
    options: dict[str, Any] = {"engine": embed.engine}
    for key in ("address", "actors", "out"):
        if getattr(embed, key) is not None:
            options[key] = getattr(embed, key)
    return options


def command_defaults(config: ProjectConfig) -> dict[str, dict[str, Any]]:
    """Map a project's settings to the option defaults of each command.

    Args:
        config: The loaded project.

    Returns:
        ``{command: {parameter name: default}}``, nested for command groups
        (``{"sandbox": {"serve": {...}}}``), in the form click's ``default_map`` takes.
    """
    model, hits, gold, crowd = config.model, config.hits, config.gold, config.crowd
    review, cert = config.review, config.certification
    weights = model.pretrained if model.pretrained is not None else RANDOM_WEIGHTS
    crowd_options: dict[str, Any] = {"target": crowd.target, "profile": crowd.profile}
    if crowd.endpoint is not None:
        crowd_options["endpoint_url"] = crowd.endpoint
    layout = {
        "task": hits.task,
        "items_per_hit": hits.items_per_hit,
        "gold": gold.file,
        "gold_rate": gold.rate,
        "seed": hits.seed,
        "instructions": hits.instructions,
        "language": hits.language,
        "templates": hits.templates,
    }
    budget = {"budget": _text(config.budget)} if config.budget is not None else {}
    certify = {
        "aggregator": cert.aggregator,
        "target": cert.target,
        "confidence": cert.confidence,
        "crowd": crowd.target,
        "min_posterior": cert.min_posterior,
    }
    endpoint = urlparse(crowd.endpoint or "")
    serve: dict[str, Any] = {"state": config.sandbox_state, "media": config.ledger.parent / "media"}
    if crowd.target == "local" and endpoint.port is not None:
        serve["port"] = endpoint.port
    at_endpoint = {"endpoint_url": crowd.endpoint} if crowd.endpoint is not None else {}
    workers: dict[str, Any] = dict(at_endpoint)
    simulated = crowd.simulated_workers
    if simulated is not None:
        workers.update(
            truth=simulated.truth,
            n=simulated.n,
            seed=simulated.seed,
            accuracy=f"{simulated.accuracy[0]}-{simulated.accuracy[1]}",
            spammers=simulated.spammers,
            clickers=simulated.clickers,
        )
    defaults: dict[str, dict[str, Any]] = {
        "buckets": {"count": config.buckets.count, "reserve": list(config.buckets.reserve)},
        "embed": {
            "model": model.name,
            "pretrained": weights,
            "device": model.device,
            "batch_size": model.batch_size,
            "workers": model.workers,
            **_embed_options(config),
        },
        "rank": {
            "concepts": config.concepts,
            "model": model.name,
            "pretrained": weights,
            "device": model.device,
        },
        "render": {
            **layout,
            "reward": str(config.hit_type.reward),
            "max_assignments": config.hit_type.max_assignments,
        },
        "publish": {
            **crowd_options,
            **layout,
            **budget,
            "config": config.path,
            "image_base_url": crowd.image_base_url,
        },
        "collect": dict(crowd_options),
        "review": {
            **crowd_options,
            **budget,
            "min_gold": review.min_gold,
            "min_accuracy": review.min_accuracy,
            "approve_all_before_deadline": review.approve_all,
            "block_after": review.block_after,
            "trusted": review.trusted,
            "bonus": _text(review.bonus),
            "bonus_accuracy": review.bonus_accuracy,
            "extend": review.extend,
            "extend_step": review.extend_step,
        },
        "status": {"target": crowd.target, **budget},
        "expire": dict(crowd_options),
        "audit": dict(certify),
        "report": {**certify, "out": config.report_dir},
        "export": {
            **certify,
            "out_dir": config.export_dir,
            "link": config.export_link,
            "test_fraction": config.export_test_fraction,
            "instructions": hits.instructions,
        },
        "sandbox": {
            "serve": serve,
            "workers": workers,
            "clock": dict(at_endpoint),
        },
    }
    return defaults
