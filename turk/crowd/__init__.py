"""Crowd backends and the work done through them: publish, collect, review, status.

:mod:`turk.crowd.backend` defines the interface and the targets; :mod:`turk.crowd.boto`
implements it once, through boto3, for every target.
"""

from turk.crowd.backend import (
    LOCAL,
    MTURK,
    MTURK_SANDBOX,
    TARGETS,
    AssignmentInfo,
    CrowdBackend,
    DuplicateRequestError,
    HitInfo,
    HitTypeSpec,
    QualificationRequirement,
)
from turk.crowd.boto import BotoBackend, RateLimiter, TransientCrowdError, connect

__all__ = [
    "LOCAL",
    "MTURK",
    "MTURK_SANDBOX",
    "TARGETS",
    "AssignmentInfo",
    "BotoBackend",
    "CrowdBackend",
    "DuplicateRequestError",
    "HitInfo",
    "HitTypeSpec",
    "QualificationRequirement",
    "RateLimiter",
    "TransientCrowdError",
    "connect",
]
