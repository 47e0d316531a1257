"""The dataset: the crowd's verdict, its audit and certification, the report and the export.

:mod:`~turk.dataset.results` aggregates the answers and accepts items,
:mod:`~turk.dataset.audit` draws and marks audits, :mod:`~turk.dataset.report` writes
``turk report`` and :mod:`~turk.dataset.export` ``turk export``; the aggregation models'
names are in :mod:`~turk.dataset.aggregators`. The area owns ``audits`` and
``audit_items``. Commands: :mod:`turk.cli.commands.dataset`.

The names below load their module on first use, so importing the package costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from turk import _lazy_exports

if TYPE_CHECKING:
    from turk.dataset.aggregators import AGGREGATORS, make_aggregator
    from turk.dataset.audit import (
        AuditProgress,
        apply_answers_file,
        apply_truth_file,
        audit_progress,
        draw_audit,
        serve_audit,
    )
    from turk.dataset.export import export_from_ledger
    from turk.dataset.report import ledger_report
    from turk.dataset.results import MIN_POSTERIOR, CrowdResults, crowd_results

_EXPORTS: dict[str, str] = {
    "AGGREGATORS": "turk.dataset.aggregators",
    "make_aggregator": "turk.dataset.aggregators",
    "CrowdResults": "turk.dataset.results",
    "MIN_POSTERIOR": "turk.dataset.results",
    "crowd_results": "turk.dataset.results",
    "AuditProgress": "turk.dataset.audit",
    "apply_answers_file": "turk.dataset.audit",
    "apply_truth_file": "turk.dataset.audit",
    "audit_progress": "turk.dataset.audit",
    "draw_audit": "turk.dataset.audit",
    "serve_audit": "turk.dataset.audit",
    "ledger_report": "turk.dataset.report",
    "export_from_ledger": "turk.dataset.export",
}

__all__ = [
    "AGGREGATORS",
    "MIN_POSTERIOR",
    "AuditProgress",
    "CrowdResults",
    "apply_answers_file",
    "apply_truth_file",
    "audit_progress",
    "crowd_results",
    "draw_audit",
    "export_from_ledger",
    "ledger_report",
    "make_aggregator",
    "serve_audit",
]


__getattr__ = _lazy_exports(__name__, _EXPORTS)
