"""A local server that speaks the Mechanical Turk Requester API, with worker pages.

The other side of the wire for every test and demo: real ``boto3`` code reaches it with
``endpoint_url`` and any credentials. It keeps its own SQLite store, serves worker pages
(list, preview, accept, the HIT in an iframe, ``/mturk/externalSubmit``), simulated
workers that answer from a truth file, a clock that loopback clients can move on
(``POST /_sandbox/clock``), and injects faults on request. It imports nothing
else from this project, so tests against it cannot share the client's assumptions.
"""

from turk.sandbox.errors import ApiError, SandboxError
from turk.sandbox.faults import FaultPlan
from turk.sandbox.server import SandboxConfig, SandboxServer, serve_forever

__all__ = [
    "ApiError",
    "FaultPlan",
    "SandboxConfig",
    "SandboxError",
    "SandboxServer",
    "serve_forever",
]
