"""Crowd backends and the work done through them: publish, collect, review, status.

:mod:`turk.crowd.backend` defines the interface and the targets; :mod:`turk.crowd.boto`
implements it once, through boto3, for every target.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_BOTO = {"BotoBackend", "RateLimiter", "TransientCrowdError", "connect"}

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


def __getattr__(name: str) -> Any:
    # Loaded on first use: a command that only needs a constant of turk.crowd.backend
    # (and 'turk --help') does not pay for the boto3 backend.
    if name not in __all__:
        raise AttributeError(f"module 'turk.crowd' has no attribute {name!r}")
    module = import_module("turk.crowd.boto" if name in _BOTO else "turk.crowd.backend")
    return getattr(module, name)
