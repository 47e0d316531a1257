"""The HITs: candidates and gold laid out as pages workers answer.

:mod:`~turk.hits.plan` lays out items and gold into HITs, :mod:`~turk.hits.html` and
:mod:`~turk.hits.instructions` render them from the templates and instruction sets,
in the language of a strings catalogue (:mod:`~turk.hits.language`),
:mod:`~turk.hits.render` validates plans and writes ``turk render`` (the dry run of
publish), :mod:`~turk.hits.batch` turns a batch into a template plus one row per HIT.
The area reads candidates and images and owns only ``hit_secret``.
Commands: :mod:`turk.cli.commands.hits`.

The names below load their module on first use, so importing the package costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from turk import _lazy_exports

if TYPE_CHECKING:
    from turk.hits.batch import BatchTemplate, batch_templates, fill_template
    from turk.hits.plan import GoldRow, HitItem, HitPlan, load_gold, plan_hits
    from turk.hits.render import DryRunReport, dry_run, plan_problems, validate_plan

_EXPORTS: dict[str, str] = {
    "BatchTemplate": "turk.hits.batch",
    "batch_templates": "turk.hits.batch",
    "fill_template": "turk.hits.batch",
    "GoldRow": "turk.hits.plan",
    "HitItem": "turk.hits.plan",
    "HitPlan": "turk.hits.plan",
    "load_gold": "turk.hits.plan",
    "plan_hits": "turk.hits.plan",
    "DryRunReport": "turk.hits.render",
    "dry_run": "turk.hits.render",
    "plan_problems": "turk.hits.render",
    "validate_plan": "turk.hits.render",
}

__all__ = [
    "BatchTemplate",
    "DryRunReport",
    "GoldRow",
    "HitItem",
    "HitPlan",
    "batch_templates",
    "dry_run",
    "fill_template",
    "load_gold",
    "plan_hits",
    "plan_problems",
    "validate_plan",
]


__getattr__ = _lazy_exports(__name__, _EXPORTS)
