"""Move a running sandbox's clock from outside: ``POST /_sandbox/clock`` and its client.

The sandbox clock is wall time plus an offset kept in the state file. Moving it on lets a
test or a rehearsal reach assignment deadlines, HIT expiry, auto-approval and MTurk's
24-hour memory of request tokens without waiting. Only loopback clients may move it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from turk.sandbox.errors import SandboxError
from turk.sandbox.market import is_loopback
from turk.sandbox.store import Store

CLOCK_PATH = "/_sandbox/clock"
"""The endpoint that moves the clock (POST ``{"advance": seconds}``)."""


def clock_endpoint(store: Store) -> Callable[[Request], Awaitable[Response]]:
    """Build the Starlette endpoint of ``POST /_sandbox/clock``.

    Args:
        store: The store whose clock it moves.

    Returns:
        The endpoint: 403 for a client that is not on loopback, 400 for a body that is not
        ``{"advance": seconds >= 0}``, else ``{"now": new clock, "offset": total offset}``.
    """

    async def endpoint(request: Request) -> Response:
        client = request.client.host if request.client else None
        if not is_loopback(client):
            return JSONResponse({"error": "the clock answers loopback clients only"}, 403)
        try:
            body = json.loads(await request.body())
            seconds = body["advance"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise TypeError(seconds)
            store.advance_clock(float(seconds))
        except (ValueError, KeyError, TypeError, SandboxError):
            return JSONResponse(
                {"error": 'post {"advance": seconds} with seconds a number >= 0'}, 400
            )
        return JSONResponse({"now": store.now(), "offset": store.clock_offset})

    return endpoint


def advance_clock(endpoint_url: str, seconds: float, timeout: float = 10.0) -> float:
    """Move a running sandbox's clock forward through its HTTP endpoint.

    Args:
        endpoint_url: The sandbox's base URL (its Requester API endpoint).
        seconds: How far (>= 0).
        timeout: Seconds to wait for the reply.

    Returns:
        The sandbox's new time (seconds since the epoch).

    Raises:
        SandboxError: The sandbox cannot be reached or refused the request.
    """
    url = endpoint_url.rstrip("/") + CLOCK_PATH
    try:
        response = httpx.post(url, json={"advance": seconds}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SandboxError(f"{url}: cannot reach the sandbox ({exc}); is it running?") from exc
    if response.status_code != 200:
        raise SandboxError(f"{url}: HTTP {response.status_code}: {response.text.strip()}")
    return float(response.json()["now"])
