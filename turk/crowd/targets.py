"""The one place that maps a crowd target to the backend that serves it.

``local``, ``mturk-sandbox`` and ``mturk`` speak the MTurk API (:mod:`turk.crowd.boto`);
``turkle`` is a Turkle server's REST API (:mod:`turk.crowd.turkle`); ``handoff`` is a
folder of files for a vendor (:mod:`turk.crowd.handoff`). The CLI, the
pipeline and the doctor open backends through :func:`open_backend`; each backend's
module is imported only when its target is used.
"""

from __future__ import annotations

import os
from pathlib import Path

from turk.crowd.backend import HANDOFF, TURKLE, CrowdBackend, check_target

__all__ = ["open_backend"]


def open_backend(
    target: str,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    live: bool = False,
    rate: float | None = None,
    token_env: str | None = None,
    max_attempts: int = 8,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    max_pool_connections: int = 32,
    ledger_root: Path | None = None,
) -> CrowdBackend:
    """Open the crowd backend of ``target``.

    Args:
        target: One of :data:`turk.crowd.backend.TARGETS`.
        endpoint_url: The service's URL (the target's default where None; for ``turkle``
            ``crowd.turkle.url``, else ``$TURKLE_URL``).
        profile: AWS profile (MTurk API targets).
        live: Allow changes on ``mturk`` (production).
        rate: Client-side request limit (MTurk API targets).
        token_env: Variable holding the Turkle API token (None: ``TURKLE_TOKEN``).
        max_attempts: Attempts per call, first try included.
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for an answer.
        max_pool_connections: HTTP connections kept open (MTurk API targets).
        ledger_root: The ledger's folder, where a ``handoff`` target's folder lies unless
            ``endpoint_url`` names one.

    Returns:
        The backend.

    Raises:
        ConfigError: Unknown target, or a Turkle target without URL or token.
        CrowdError: No credentials for an Amazon target.
    """
    check_target(target)
    if target == HANDOFF:
        from turk.crowd.handoff import open_handoff

        return open_handoff(endpoint_url, ledger_root)
    if target == TURKLE:
        from turk.crowd.turkle import URL_ENV, connect_turkle, turkle_token

        url = endpoint_url or os.environ.get(URL_ENV, "")
        return connect_turkle(url, turkle_token(token_env), timeout=read_timeout)
    from turk.crowd.boto import connect

    return connect(
        target,
        endpoint_url=endpoint_url,
        profile=profile,
        live=live,
        rate=rate,
        max_attempts=max_attempts,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
    )
