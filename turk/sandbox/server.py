"""The sandbox web application (Starlette) and how to run it (uvicorn), in a thread or not."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from turk.sandbox import api
from turk.sandbox.clock import CLOCK_PATH, clock_endpoint
from turk.sandbox.errors import ApiError, SandboxError, service_fault, throttled
from turk.sandbox.faults import FAULT, LOST, THROTTLE, FaultPlan, parse_faults
from turk.sandbox.model import TARGET_PREFIX
from turk.sandbox.store import Store
from turk.sandbox.worker_pages import WorkerPages

log = logging.getLogger("turk.sandbox")

JSON_TYPE = b"application/x-amz-json-1.1"
_LOST_MESSAGE = "ASGI callable returned without completing response."


class _HideLostReplies(logging.Filter):
    """Keep the server log quiet about replies cut off on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _LOST_MESSAGE


@dataclass
class SandboxConfig:
    """How to run the sandbox.

    Attributes:
        state_path: SQLite file of the store (created when missing; kept across restarts).
        host: Interface to bind (loopback unless told otherwise).
        port: TCP port; 0 picks a free one.
        media_dir: Folder served at ``/media/``, or None.
        faults: Faults injected into the Requester API, or None.
        balance: Account balance of a new store, in USD.
        sweep_interval: Minimum seconds between two sweeps of due transitions
            (auto-approval, abandoned work); 0 sweeps on every request.
    """

    state_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    media_dir: Path | None = None
    faults: FaultPlan | None = None
    balance: Decimal = field(default_factory=lambda: Decimal("10000.00"))
    sweep_interval: float = 0.0


class RequesterApi:
    """The ASGI endpoint of the Requester API (JSON 1.1 over ``POST /``)."""

    def __init__(self, store: Store, config: SandboxConfig) -> None:
        """Bind the endpoint to a store and a config (whose ``faults`` may change later).

        Args:
            store: The store.
            config: The running config.
        """
        self.store = store
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one API call, injecting the configured faults."""
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        plan = self.config.faults
        fate = None
        if plan is not None and plan.active:
            if plan.slow:
                await asyncio.sleep(plan.slow)
            fate = plan.draw()
        if fate == THROTTLE:
            status, body = self._error(throttled())
        elif fate == FAULT:
            status, body = self._error(service_fault())
        else:
            status, body = self._answer(scope, b"".join(chunks))
        headers = [
            (b"content-type", JSON_TYPE),
            (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
        ]
        if fate == LOST:
            # The operation is done; now break the reply off mid-way. Without a Content-Length
            # the reply is chunked, and a chunked body cut short is a broken connection to the
            # client (botocore would read a short Content-Length body as if it were whole).
            await send({"type": "http.response.start", "status": status, "headers": headers})
            partial = body[: len(body) // 2]
            await send({"type": "http.response.body", "body": partial, "more_body": True})
            return
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, scope: Scope, raw: bytes) -> tuple[int, bytes]:
        target = ""
        for name, value in scope["headers"]:
            if name == b"x-amz-target":
                target = value.decode("latin-1")
                break
        prefix, _, operation = target.partition(".")
        try:
            if prefix != TARGET_PREFIX or not operation:
                raise ApiError(
                    "UnknownOperationException", f"Unknown operation {target or '(none)'}"
                )
            try:
                params = json.loads(raw) if raw.strip() else {}
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError("SerializationException", f"Malformed JSON body: {exc}") from None
            reply = api.handle(self.store, operation, params, self.config.sweep_interval)
        except ApiError as exc:
            return self._error(exc)
        # As MTurk does: a bug of the server becomes ServiceFault (HTTP 500), which clients
        # retry; the traceback goes to the log, and the server keeps serving. (RUF100: ruff
        # lets a handler that logs pass BLE001, and the noqa says so where it is read.)
        except Exception:  # noqa: BLE001, RUF100
            log.exception("sandbox: %s failed", target)
            return self._error(service_fault())
        return 200, json.dumps(reply, separators=(",", ":")).encode()

    @staticmethod
    def _error(error: ApiError) -> tuple[int, bytes]:
        return error.status, json.dumps(error.body()).encode()


def build_app(store: Store, config: SandboxConfig) -> Starlette:
    """Build the web application: the Requester API, worker pages and media folder.

    Args:
        store: The store.
        config: The config (``media_dir``, ``faults``, ``sweep_interval``).

    Returns:
        The Starlette application.

    Raises:
        SandboxError: ``media_dir`` is not a folder.
    """
    pages = WorkerPages(store, config.sweep_interval)

    async def home(request: Request) -> Response:
        return RedirectResponse("/worker", status_code=303)

    routes: list[Any] = [
        Route("/", RequesterApi(store, config), methods=["POST"]),
        Route("/", home, methods=["GET"]),
        Route(CLOCK_PATH, clock_endpoint(store), methods=["POST"]),
        *pages.routes(),
    ]
    if config.media_dir is not None:
        media = Path(config.media_dir)
        if not media.is_dir():
            raise SandboxError(f"--media {media}: not a folder; create it or pass another")
        routes.append(Mount("/media", app=StaticFiles(directory=str(media)), name="media"))
    return Starlette(routes=routes)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP (not 0) so that asyncio sets TCP_NODELAY on accepted connections; without
    # it every reply waits ~40 ms for a delayed ACK between its header and body writes.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SandboxError(f"cannot listen on {host}:{port} ({exc}); pass another --port") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _uvicorn(app: Starlette) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_HideLostReplies())
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


class SandboxServer:
    """A sandbox running in a background thread (for tests, demos and benchmarks).

    Use as a context manager, or call :meth:`start` and :meth:`stop`. :meth:`restart`
    stops and starts again on the same port and state file.
    """

    def __init__(self, config: SandboxConfig) -> None:
        """Prepare (not start) a server.

        Args:
            config: How to run it.
        """
        self.config = config
        self.store: Store | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = config.port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8123`` (the API endpoint and worker site)."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    @property
    def state_path(self) -> Path:
        """The SQLite state file."""
        return Path(self.config.state_path)

    @property
    def media_dir(self) -> Path | None:
        """The folder served at ``/media/``, or None."""
        return None if self.config.media_dir is None else Path(self.config.media_dir)

    @property
    def media_url(self) -> str:
        """The base URL of the media folder, e.g. ``http://127.0.0.1:8123/media``."""
        return f"{self.url}/media"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        """Open the store, bind the port and serve until :meth:`stop`.

        Args:
            timeout: Seconds to wait until the server accepts connections.

        Returns:
            This server.

        Raises:
            SandboxError: The port, state file or media folder cannot be used, or the
                server did not come up in time.
        """
        if self._thread is not None:
            return self
        self.store = Store(self.config.state_path, self.config.balance)
        app = build_app(self.store, self.config)
        sock = _bind(self.config.host, self.port)
        self.port = int(sock.getsockname()[1])
        server = _uvicorn(app)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{self.port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise SandboxError(f"sandbox on {self.url} did not start within {timeout} s")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and close the store (the state file stays)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server, self._thread = None, None
        if self.store is not None:
            self.store.close()
            self.store = None

    def restart(self) -> SandboxServer:
        """Stop, then start again on the same port and state file.

        Returns:
            This server.
        """
        self.stop()
        return self.start()

    def set_faults(self, faults: FaultPlan | str | None) -> None:
        """Change the injected faults while running (takes effect on the next call).

        Args:
            faults: A plan, a spec such as ``"throttle=0.2,seed=3"``, or None for none.

        Raises:
            SandboxError: A spec that does not parse.
        """
        self.config.faults = parse_faults(faults) if isinstance(faults, str) else faults

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox clock forward, so deadlines and auto-approval come due now.

        Args:
            seconds: How far.

        Raises:
            SandboxError: The server is not running.
        """
        if self.store is None:
            raise SandboxError("advance_clock: the sandbox is not running; start it first")
        self.store.advance_clock(seconds)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(config: SandboxConfig, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the sandbox in the foreground until interrupted (Ctrl-C or SIGTERM).

    Args:
        config: How to run it.
        on_ready: Called with the base URL once the server accepts connections.

    Raises:
        SandboxError: The port, state file or media folder cannot be used.
    """
    store = Store(config.state_path, config.balance)
    try:
        app = build_app(store, config)
        sock = _bind(config.host, config.port)
        port = int(sock.getsockname()[1])
        host = f"[{config.host}]" if ":" in config.host else config.host
        server = _uvicorn(app)

        async def run() -> None:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            if server.started and on_ready is not None:
                on_ready(f"http://{host}:{port}")
            await task

        asyncio.run(run())
    finally:
        store.close()
