"""Run a Turkle server for a lab or a test: turk's minimal Django site around Turkle.

Turkle (``pip install 'turk[turkle]'``) ships as a Django app without a site; the site
turk ships is in ``turk/crowd/turkle_site`` (settings, URLs and a start script, loaded
by Django by module path in a child process, so nothing here imports Django). A state
folder holds everything the server keeps:

=====================  ===========================================================
``turkle.sqlite3``     Turkle's database (projects, batches, users, answers)
``secret_key``         Django's secret key (owner-only file)
``admin-password``     the password of the admin account turk created (owner-only)
``token``              that account's REST API token (owner-only): turk's credential
=====================  ===========================================================

The server also serves a media folder at ``/media/`` when given one (the project's
staged item images; Turkle hosts no media).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from turk.crowd.local import listening
from turk.errors import ConfigError, CrowdError

__all__ = ["DEFAULT_ADMIN", "DEFAULT_PORT", "SITE_DIR", "TurkleServer", "free_port"]

SITE_DIR = Path(__file__).resolve().parent / "turkle_site"
"""The Django site's folder (put on the child's ``PYTHONPATH``)."""

DEFAULT_PORT = 8770
"""Where ``turk turkle serve`` listens unless told otherwise."""

DEFAULT_ADMIN = "turk-admin"
"""The admin account turk creates and whose API token it uses."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nothing listens on now at ``host``.

    Args:
        host: The address to bind.

    Returns:
        The port number.
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class TurkleServer:
    """A Turkle server in a child process; :meth:`start` it, :meth:`stop` it.

    Attributes:
        state_dir: Folder of its database and secrets (created when missing).
        port: TCP port.
        host: Address to listen on (``127.0.0.1``; ``0.0.0.0`` for a lab's network).
        media_dir: Folder served at ``/media/``, or None.
        admin: Name of the admin account turk creates.
        hosts: Extra host names the server answers to (beyond loopback).
        log_path: Where the server's output goes (default ``<state_dir>/server.log``).
    """

    state_dir: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    media_dir: Path | None = None
    admin: str = DEFAULT_ADMIN
    hosts: tuple[str, ...] = ()
    log_path: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The server's base URL (loopback when it listens on every address)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def token_path(self) -> Path:
        """The owner-only file holding the admin's API token."""
        return self.state_dir / "token"

    @property
    def password_path(self) -> Path:
        """The owner-only file holding the admin's password (for Turkle's admin pages)."""
        return self.state_dir / "admin-password"

    def token(self) -> str:
        """Return the admin's API token (once the server has started).

        Raises:
            CrowdError: The server has not written it yet.
        """
        if not self.token_path.is_file():
            raise CrowdError(f"{self.token_path}: no Turkle token yet; start the server first")
        return self.token_path.read_text(encoding="utf-8").strip()

    def start(self, timeout: float = 60.0) -> TurkleServer:
        """Start the server and wait until it answers.

        Args:
            timeout: Seconds to wait for migrations and the first answer.

        Returns:
            This server.

        Raises:
            ConfigError: Turkle is not installed, or the port is taken.
            CrowdError: The server exited or did not answer in time (its log is named).
        """
        import importlib.util

        if importlib.util.find_spec("turkle") is None:
            raise ConfigError(
                "Turkle is not installed: pip install 'turk[turkle]' (or turkle==3.1.0)"
            )
        probe = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if listening(probe, self.port):
            raise ConfigError(
                f"port {self.port}: something already listens there; pass --port with a free one"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SITE_DIR), env.get("PYTHONPATH", "")) if p
        )
        env["DJANGO_SETTINGS_MODULE"] = "turk_turkle_settings"
        env["TURK_TURKLE_STATE"] = str(self.state_dir.resolve())
        env["TURK_TURKLE_MEDIA"] = str(self.media_dir.resolve()) if self.media_dir else ""
        env["TURK_TURKLE_HOSTS"] = ",".join(self.hosts)
        log = self.log_path or self.state_dir / "server.log"
        with open(log, "ab") as out:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    str(SITE_DIR / "turk_turkle_serve.py"),
                    self.host,
                    str(self.port),
                    self.admin,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise CrowdError(
                    f"the Turkle server exited with status {self._process.returncode}; see {log}"
                )
            if self.token_path.is_file() and listening(probe, self.port):
                return self
            time.sleep(0.1)
        self.stop()
        raise CrowdError(f"the Turkle server did not answer within {timeout:.0f} s; see {log}")

    def wait(self) -> int:
        """Wait until the server exits (for ``turk turkle serve``); return its status."""
        import signal

        if self._process is None:
            return 0

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        # A terminated 'turk turkle serve' takes its server down with it.
        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            return self._process.wait()
        except KeyboardInterrupt:
            self.stop()
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous)

    def stop(self) -> None:
        """Stop the server (the state folder keeps everything)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
