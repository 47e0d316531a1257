"""The one door from the application to the local MTurk double (:mod:`turk.sandbox`).

The ``local`` target is reached over HTTP like any other, through boto3
(:mod:`turk.crowd.boto`). What needs the double's own code is here only: starting one
in this process when nothing answers at the project's endpoint (and stopping it), and
running the simulated workers of a sample project against it. Only this module and the
``turk sandbox`` commands import :mod:`turk.sandbox`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from turk.errors import CrowdError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LocalSandbox", "listening", "run_simulated_workers", "start_local_sandbox"]


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at ``host:port`` (within half a second).

    Args:
        host: Host name or address.
        port: TCP port.

    Returns:
        True when a connection opened.
    """
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class LocalSandbox:
    """A sandbox server this process started; :meth:`stop` it when done.

    Attributes:
        url: Where it listens.
        server: The running server.
    """

    url: str
    server: Any

    def stop(self) -> None:
        """Stop the server (its state file keeps everything)."""
        self.server.stop()


def start_local_sandbox(endpoint: str, state_path: Path, media_dir: Path) -> LocalSandbox | None:
    """Start a sandbox at ``endpoint`` unless something already answers there.

    Args:
        endpoint: The ``local`` target's endpoint URL (``http://host:port``).
        state_path: The sandbox's state file.
        media_dir: Folder it serves at ``/media/`` (created when missing).

    Returns:
        The started sandbox, or None when one was already listening.

    Raises:
        CrowdError: Nothing answers and a sandbox cannot be started there (the message
            names the endpoint and the fix).
    """
    from turk.sandbox import SandboxConfig, SandboxError, SandboxServer

    parsed = urlparse(endpoint)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    if listening(host, port):
        return None
    media_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = SandboxServer(
            SandboxConfig(state_path=state_path, host=host, port=port, media_dir=media_dir)
        ).start()
    except SandboxError as exc:
        raise CrowdError(
            f"crowd.endpoint {endpoint}: no sandbox answers there and one cannot be "
            f"started ({exc}); run 'turk sandbox serve --port {port}' or change the port"
        ) from exc
    return LocalSandbox(url=endpoint, server=server)


def run_simulated_workers(
    endpoint: str,
    truth: Path,
    *,
    n: int,
    seed: int,
    accuracy: tuple[float, float] | None = None,
    spammers: float = 0.0,
    clickers: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
    turkle_token: str | None = None,
) -> Any:
    """Let simulated workers answer every HIT they can take at the local sandbox or Turkle.

    Args:
        endpoint: The sandbox's URL, or the Turkle server's when ``turkle_token`` is given.
        truth: The sample's ``truth.csv``.
        n: Number of workers.
        seed: Seed of their choices.
        accuracy: Range honest workers' accuracy is drawn from; None for the real
            crowds' (:data:`turk.sandbox.workers.CROWD_ACCURACY`).
        spammers: Share of workers answering at random.
        clickers: Share of workers always answering yes.
        on_progress: Called with the number of HITs just done.
        turkle_token: An admin's API token of the Turkle server at ``endpoint``: the
            workers are then Turkle users working in Turkle's own pages
            (:mod:`turk.sandbox.turkle_workers`; their accounts are made with it).

    Returns:
        The workers' run result (:class:`turk.sandbox.workers.WorkersResult`).
    """
    from turk.sandbox.workers import CROWD_ACCURACY, run_workers

    if turkle_token is not None:
        from turk.sandbox.turkle_workers import run_turkle_workers

        return run_turkle_workers(
            endpoint,
            turkle_token,
            truth,
            n=n,
            seed=seed,
            accuracy=CROWD_ACCURACY if accuracy is None else accuracy,
            spammers=spammers,
            clickers=clickers,
            on_progress=on_progress,
        )

    return run_workers(
        endpoint,
        truth,
        n=n,
        seed=seed,
        accuracy=CROWD_ACCURACY if accuracy is None else accuracy,
        spammers=spammers,
        clickers=clickers,
        on_progress=on_progress,
    )
