"""Commands of the sandbox area: ``turk sandbox serve``, ``workers`` and ``clock``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from turk.cli.app import app
from turk.cli.console import console, progress_bar
from turk.crowd.backend import DEFAULT_LOCAL_ENDPOINT, SANDBOX_STATE_FILE
from turk.errors import ConfigError

sandbox_app = typer.Typer(
    name="sandbox",
    help="A local MTurk-compatible server (Requester API + worker pages) and simulated workers.",
    no_args_is_help=True,
)
app.add_typer(sandbox_app)


def _range(text: str, option: str) -> tuple[float, float]:
    low, sep, high = text.partition("-")
    try:
        values = (float(low), float(high if sep else low))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected LO-HI, e.g. 0.8-0.95") from None
    return values


@sandbox_app.command("serve")
def serve_command(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port; 0 picks a free one.")
    ] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind; loopback by default.")
    ] = "127.0.0.1",
    state: Annotated[
        Path, typer.Option("--state", help="SQLite state file; kept across restarts.")
    ] = Path(SANDBOX_STATE_FILE),
    media: Annotated[
        Path | None,
        typer.Option(
            "--media",
            help="Folder served at /media/ (images the HITs show); created when missing.",
            show_default=False,
        ),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults",
            help="Faults to inject into the API: "
            "throttle=RATE,fault=RATE,lost=RATE,slow=SECONDS[,seed=N].",
            show_default=False,
        ),
    ] = None,
    balance: Annotated[
        str, typer.Option("--balance", help="Account balance of a new state file, USD.")
    ] = "10000.00",
    sweep_interval: Annotated[
        float,
        typer.Option(
            "--auto-approve-check-interval",
            min=0.0,
            help="Minimum seconds between checks for due auto-approvals and expired work; "
            "0 checks on every request.",
        ),
    ] = 0.0,
) -> None:
    """Serve the MTurk Requester API at URL/ and worker pages at URL/worker until Ctrl-C."""
    from turk.sandbox import SandboxConfig, SandboxError, serve_forever
    from turk.sandbox.faults import parse_faults

    try:
        amount = Decimal(balance)
    except InvalidOperation:
        raise ConfigError(f"--balance {balance!r}: not an amount; pass e.g. 10000.00") from None
    if media is not None and not media.exists():
        try:
            media.mkdir(parents=True)  # 'turk publish --media-dir' fills it later
        except OSError as exc:
            raise ConfigError(
                f"--media {media}: cannot create the folder ({exc.strerror}); pass a folder path"
            ) from None
    try:
        config = SandboxConfig(
            state_path=state,
            host=host,
            port=port,
            media_dir=media,
            faults=parse_faults(faults) if faults else None,
            balance=amount,
            sweep_interval=sweep_interval,
        )

        def ready(url: str) -> None:
            console.print(
                f"sandbox: serving {url} (API: endpoint_url={url}; workers: {url}/worker)"
            )
            console.file.flush()  # a parent process may wait for this line on a pipe

        serve_forever(config, on_ready=ready)
    except SandboxError as exc:
        raise ConfigError(str(exc)) from exc
    console.print("sandbox: stopped")


@sandbox_app.command("workers")
def workers_command(
    truth: Annotated[
        Path,
        typer.Option(
            "--truth",
            help="Truth file: image,concept,file (e.g. a sample's truth.csv).",
            show_default=False,
        ),
    ],
    endpoint_url: Annotated[
        str, typer.Option("--endpoint-url", help="Base URL of a running sandbox.")
    ] = DEFAULT_LOCAL_ENDPOINT,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of workers.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed; same seed, same answers.")] = 0,
    accuracy: Annotated[
        str, typer.Option("--accuracy", help="Honest workers' accuracy range LO-HI.")
    ] = "0.85-0.98",
    spammers: Annotated[
        float, typer.Option("--spammers", min=0.0, max=1.0, help="Share answering at random.")
    ] = 0.0,
    clickers: Annotated[
        float, typer.Option("--clickers", min=0.0, max=1.0, help="Share answering yes to all.")
    ] = 0.0,
    answer_time: Annotated[
        str, typer.Option("--answer-time", help="Seconds per HIT, range LO-HI.")
    ] = "0-0",
    max_hits: Annotated[
        int | None,
        typer.Option("--max-hits", min=1, help="Most HITs one worker submits.", show_default=False),
    ] = None,
) -> None:
    """Let simulated workers accept, answer (from the truth file) and submit the available HITs."""
    from turk.sandbox import SandboxError
    from turk.sandbox.workers import run_workers

    try:
        with progress_bar("workers", None, "HITs") as advance:
            result = run_workers(
                endpoint_url,
                truth,
                n=n,
                seed=seed,
                accuracy=_range(accuracy, "--accuracy"),
                spammers=spammers,
                clickers=clickers,
                answer_time=_range(answer_time, "--answer-time"),
                max_hits=max_hits,
                on_progress=advance,
            )
    except SandboxError as exc:
        raise ConfigError(str(exc)) from exc
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(result.by_kind.items()))
    console.print(
        f"workers: {result.workers} ({kinds}) submitted {result.submitted} HITs "
        f"({result.items_answered} items, {result.items_correct} correct, "
        f"{result.unknown_images} unknown images); {result.refused} refused"
    )


@sandbox_app.command("clock")
def clock_command(
    advance: Annotated[
        str,
        typer.Option(
            "--advance", help="How far to move the clock: seconds or e.g. 90s, 20m, 25h, 3d."
        ),
    ],
    endpoint_url: Annotated[
        str, typer.Option("--endpoint-url", help="Base URL of a running sandbox.")
    ] = DEFAULT_LOCAL_ENDPOINT,
) -> None:
    """Move a running sandbox's clock forward (deadlines, expiry, auto-approval come due)."""
    import time

    from turk.crowd.publish import parse_duration
    from turk.sandbox import SandboxError
    from turk.sandbox.clock import advance_clock

    seconds = parse_duration(advance, "--advance")
    try:
        now = advance_clock(endpoint_url, seconds)
    except SandboxError as exc:
        raise ConfigError(str(exc)) from exc
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    console.print(f"sandbox clock: {stamp} (moved on {seconds} s)")
