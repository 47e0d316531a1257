"""analysis: aggregation, worker quality, certification, reports and export.

A library over pandas DataFrames (answers as ``task, worker, label``; gold as a
Series indexed by task, the contract crowd-kit uses); it never imports :mod:`turk`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Submodules load on first use: the command line imports ``analysis.errors`` at start-up
# and must not pay for pandas and scipy until a command needs them.
_EXPORTS: dict[str, str] = {
    "AnalysisError": "analysis.errors",
    "AuditDecision": "analysis.certify",
    "Certificate": "analysis.certify",
    "CrowdDataset": "analysis.datasets",
    "DawidSkene": "analysis.aggregation",
    "GLAD": "analysis.aggregation",
    "GoldMajorityVote": "analysis.aggregation",
    "MACE": "analysis.aggregation",
    "MODEL_ESTIMATE": "analysis.certify",
    "MajorityVote": "analysis.aggregation",
    "OneCoinDawidSkene": "analysis.aggregation",
    "PrecisionSPRT": "analysis.certify",
    "RedundancyPolicy": "analysis.redundancy",
    "WorkerFlags": "analysis.workers",
    "audit_sample": "analysis.certify",
    "certify_audit": "analysis.certify",
    "certify_precision": "analysis.certify",
    "clopper_pearson_lower": "analysis.certify",
    "clopper_pearson_upper": "analysis.certify",
    "encode_answers": "analysis.answers",
    "expected_precision": "analysis.certify",
    "gold_skill_estimates": "analysis.redundancy",
    "hypergeometric_lower": "analysis.certify",
    "load_crowd_dataset": "analysis.datasets",
    "replay": "analysis.redundancy",
    "required_sample_size": "analysis.certify",
    "required_sample_size_finite": "analysis.certify",
    "simulate_adaptive": "analysis.redundancy",
    "simulate_fixed": "analysis.redundancy",
    "simulate_population": "analysis.redundancy",
    "validate_answers": "analysis.answers",
    "worker_confusion": "analysis.workers",
    "worker_table": "analysis.workers",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from analysis.aggregation import (
        GLAD,
        MACE,
        DawidSkene,
        GoldMajorityVote,
        MajorityVote,
        OneCoinDawidSkene,
    )
    from analysis.answers import encode_answers, validate_answers
    from analysis.certify import (
        MODEL_ESTIMATE,
        AuditDecision,
        Certificate,
        PrecisionSPRT,
        audit_sample,
        certify_audit,
        certify_precision,
        clopper_pearson_lower,
        clopper_pearson_upper,
        expected_precision,
        hypergeometric_lower,
        required_sample_size,
        required_sample_size_finite,
    )
    from analysis.datasets import CrowdDataset, load_crowd_dataset
    from analysis.errors import AnalysisError
    from analysis.redundancy import (
        RedundancyPolicy,
        gold_skill_estimates,
        replay,
        simulate_adaptive,
        simulate_fixed,
        simulate_population,
    )
    from analysis.workers import WorkerFlags, worker_confusion, worker_table

__all__ = [
    "GLAD",
    "MACE",
    "MODEL_ESTIMATE",
    "AnalysisError",
    "AuditDecision",
    "Certificate",
    "CrowdDataset",
    "DawidSkene",
    "GoldMajorityVote",
    "MajorityVote",
    "OneCoinDawidSkene",
    "PrecisionSPRT",
    "RedundancyPolicy",
    "WorkerFlags",
    "audit_sample",
    "certify_audit",
    "certify_precision",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "encode_answers",
    "expected_precision",
    "gold_skill_estimates",
    "hypergeometric_lower",
    "load_crowd_dataset",
    "replay",
    "required_sample_size",
    "required_sample_size_finite",
    "simulate_adaptive",
    "simulate_fixed",
    "simulate_population",
    "validate_answers",
    "worker_confusion",
    "worker_table",
]
