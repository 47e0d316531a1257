"""analysis: aggregation, worker quality, certification, reports and export.

A library over pandas DataFrames (answers as ``task, worker, label``; gold as a
Series indexed by task, the contract crowd-kit uses); it never imports :mod:`turk`.
"""

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
    required_sample_size,
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
    "load_crowd_dataset",
    "replay",
    "required_sample_size",
    "simulate_adaptive",
    "simulate_fixed",
    "simulate_population",
    "validate_answers",
    "worker_confusion",
    "worker_table",
]
