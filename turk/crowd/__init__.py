"""The crowd: HITs on a target, the work done on them, and the money it costs.

:mod:`~turk.crowd.backend` defines the backend interface and the targets;
:mod:`~turk.crowd.boto` implements it through boto3 for the MTurk API targets,
:mod:`~turk.crowd.turkle` over a Turkle server's REST API (:mod:`~turk.crowd.turkle_server`
runs one), and :mod:`~turk.crowd.targets` opens the one a target needs.
:mod:`~turk.crowd.publish` (``turk publish``: guards, plan, validate, price, confirm,
send), :mod:`~turk.crowd.collect`, :mod:`~turk.crowd.review`, :mod:`~turk.crowd.status`
(``turk status``, ``turk expire``) and :mod:`~turk.crowd.adaptive` work through it;
:mod:`~turk.crowd.spend` is the one definition of what is committed and spent;
:mod:`~turk.crowd.local` is the one door to the local MTurk double. The area owns the
``hit_types``, ``hits``, ``hit_items``, ``assignments``, ``answers``, ``actions``,
``qualifications`` and ``worker_blocks`` tables; other areas read them through
:mod:`turk.crowd.tables`. Commands: :mod:`turk.cli.commands.crowd`.

The names below load their module on first use: a command that only needs a constant
of :mod:`turk.crowd.backend` (and ``turk --help``) does not pay for boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from turk import _lazy_exports

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
    from turk.crowd.collect import CollectReport, collect
    from turk.crowd.publish import PublishConfig, PublishPlan, PublishReport, publish
    from turk.crowd.review import ReviewOptions, ReviewReport, review
    from turk.crowd.spend import TargetSpend, target_spend
    from turk.crowd.status import BatchStatus, batch_status, expire_hits

_BY_MODULE = {
    "turk.crowd.backend": [
        "LOCAL",
        "MTURK",
        "MTURK_SANDBOX",
        "TARGETS",
        "AssignmentInfo",
        "CrowdBackend",
        "DuplicateRequestError",
        "HitInfo",
        "HitTypeSpec",
        "QualificationRequirement",
    ],
    "turk.crowd.boto": ["BotoBackend", "RateLimiter", "TransientCrowdError", "connect"],
    "turk.crowd.collect": ["CollectReport", "collect"],
    "turk.crowd.publish": ["PublishConfig", "PublishPlan", "PublishReport", "publish"],
    "turk.crowd.review": ["ReviewOptions", "ReviewReport", "review"],
    "turk.crowd.spend": ["TargetSpend", "target_spend"],
    "turk.crowd.status": ["BatchStatus", "batch_status", "expire_hits"],
}
_EXPORTS = {name: module for module, names in _BY_MODULE.items() for name in names}

__all__ = [
    "LOCAL",
    "MTURK",
    "MTURK_SANDBOX",
    "TARGETS",
    "AssignmentInfo",
    "BatchStatus",
    "BotoBackend",
    "CollectReport",
    "CrowdBackend",
    "DuplicateRequestError",
    "HitInfo",
    "HitTypeSpec",
    "PublishConfig",
    "PublishPlan",
    "PublishReport",
    "QualificationRequirement",
    "RateLimiter",
    "ReviewOptions",
    "ReviewReport",
    "TargetSpend",
    "TransientCrowdError",
    "batch_status",
    "collect",
    "connect",
    "expire_hits",
    "publish",
    "review",
    "target_spend",
]


__getattr__ = _lazy_exports(__name__, _EXPORTS)
