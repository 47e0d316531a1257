"""Audits: the requester checks a uniform random sample of the accepted images.

An audit draws its sample once (:func:`draw_audit`, through
:func:`analysis.certify.audit_sample`: one seeded random ranking of the accepted items
in scope; a pooled sample uniform over the whole scope, and optionally a sample per
concept x bucket) and stores it in the ledger in audit order. Verdicts are written one
item at a time, so an audit resumes where it stopped. They come from:

- the local audit page (:func:`audit_app`, served on 127.0.0.1 by :func:`serve_audit`):
  one image at a time with Right / Wrong buttons and keyboard shortcuts;
- an answers file (:func:`apply_answers_file`): CSV ``image,concept,correct``, for
  scripted audits;
- a known truth file (:func:`apply_truth_file`): the sample collection's ``truth.csv``,
  for demos and tests; such verdicts are labelled ``truth`` in the report.

With ``sprt`` the audit stops as soon as Wald's sequential test over the pooled sample
certifies or refutes the target (:class:`analysis.certify.PrecisionSPRT`).
"""

from __future__ import annotations

import csv
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import certify
from analysis.errors import AnalysisError
from turk.collection.ingest import image_metadata
from turk.collection.tables import image_files
from turk.dataset.results import CrowdResults
from turk.errors import ConfigError, InputError, StageError
from turk.ledger import Ledger, utc_now

SOURCES = ("requester", "answers-file", "truth")
"""Where an audit's verdicts come from (see the module docstring)."""

_TRUE = {"1", "true", "yes", "y", "right", "correct"}
_FALSE = {"0", "false", "no", "n", "wrong", "incorrect"}


@dataclass(frozen=True)
class AuditProgress:
    """Where an audit stands.

    Attributes:
        audit_id: The audit.
        scope: Human-readable scope (``whole dataset``, ``concept bus``...).
        sample_size: Items drawn.
        population: Accepted items in scope when drawn.
        marked: Items marked so far.
        errors: Of those, marked wrong.
        pooled_marked: Marked items of the pooled sample.
        pooled_errors: Of those, wrong.
        lower_bound: Clopper-Pearson lower bound from the pooled sample (exact
            precision when the whole scope was audited).
        certified: ``lower_bound >= target``.
        target: Precision target.
        confidence: Confidence.
        sprt: Whether the sequential test may stop the audit.
        decision: SPRT decision (``certified``, ``refuted``, ``continue``), or None
            without SPRT.
        status: ``open`` or ``done``.
        next_position: First unmarked position, or None when none is left.
    """

    audit_id: int
    scope: str
    sample_size: int
    population: int
    marked: int
    errors: int
    pooled_marked: int
    pooled_errors: int
    lower_bound: float
    certified: bool
    target: float
    confidence: float
    sprt: bool
    decision: str | None
    status: str
    next_position: int | None

    def to_json(self) -> dict[str, Any]:
        """Return the progress as JSON-serialisable data.

        Returns:
            A dict of the attributes.
        """
        return dict(self.__dict__)


def _scope_name(concept: str | None, bucket: int | None) -> str:
    if concept is None and bucket is None:
        return "whole dataset"
    parts = []
    if concept is not None:
        parts.append(f"concept {concept}")
    if bucket is not None:
        parts.append(f"bucket {bucket}")
    return ", ".join(parts)


def sprt_for(target: float, confidence: float) -> certify.PrecisionSPRT:
    """Return the sequential test an audit uses for ``target`` at ``confidence``.

    H0: precision <= target against H1: precision >= 1 - (1 - target) / 10, with both
    error rates ``1 - confidence``.

    Args:
        target: Precision target.
        confidence: Confidence.

    Returns:
        A fresh :class:`analysis.certify.PrecisionSPRT`.
    """
    alpha = 1 - confidence
    return certify.PrecisionSPRT(p0=target, p1=1 - (1 - target) / 10, alpha=alpha, beta=alpha)


def latest_audit(
    ledger: Ledger,
    target: str,
    *,
    source: str,
    population: int,
    aggregator: str,
    target_precision: float,
    confidence: float,
) -> int | None:
    """Return the newest dataset-wide audit drawn with these settings, open or finished.

    Args:
        ledger: The open ledger.
        target: Crowd target.
        source: Verdict source.
        population: Accepted items it was drawn from.
        aggregator: Aggregation model of the accepted items.
        target_precision: Precision it certifies.
        confidence: Confidence of the certification.

    Returns:
        The audit id, or None.
    """
    row = ledger.conn.execute(
        "SELECT id FROM audits WHERE target=? AND scope_concept IS NULL AND scope_bucket IS NULL "
        "AND source=? AND population=? AND aggregator=? AND target_precision=? AND confidence=? "
        "ORDER BY id DESC LIMIT 1",
        (target, source, population, aggregator, target_precision, confidence),
    ).fetchone()
    return None if row is None else int(row[0])


def marked_item_count(ledger: Ledger) -> int:
    """Count the audit items a person (or a truth file) has marked, over every audit.

    Args:
        ledger: The open ledger.

    Returns:
        The number of marked items.
    """
    (n,) = ledger.conn.execute(
        "SELECT COUNT(*) FROM audit_items WHERE correct IS NOT NULL"
    ).fetchone()
    return int(n)


def find_open_audit(
    ledger: Ledger, target: str, concept: str | None, bucket: int | None, source: str
) -> int | None:
    """Return the open audit with this scope and source, or None.

    Args:
        ledger: The open ledger.
        target: Crowd target.
        concept: Scope concept (None: all).
        bucket: Scope bucket (None: all).
        source: Verdict source.

    Returns:
        The audit id, or None.
    """
    row = ledger.conn.execute(
        "SELECT id FROM audits WHERE target = ? AND scope_concept IS ? AND scope_bucket IS ? "
        "AND source = ? AND status = 'open' ORDER BY id DESC LIMIT 1",
        (target, concept, bucket, source),
    ).fetchone()
    return None if row is None else int(row[0])


def draw_audit(
    ledger: Ledger,
    results: CrowdResults,
    *,
    concept: str | None = None,
    bucket: int | None = None,
    size: int | None = None,
    per_stratum: int = 0,
    target: float = 0.99,
    confidence: float = 0.95,
    sprt: bool = False,
    seed: int = 0,
    source: str = "requester",
) -> int:
    """Draw a new audit sample from the accepted items in scope and store it.

    Args:
        ledger: The open ledger.
        results: The aggregated crowd results (their accepted items are the population).
        concept: Audit only this concept (None: all).
        bucket: Audit only this bucket (None: all).
        size: Pooled sample size; None derives it from ``target`` and ``confidence``
            (the zero-error size, e.g. 299 for 99% at 95%; with ``sprt`` enough for the
            sequential test to decide) and audits the whole scope when it is smaller.
        per_stratum: Extra items per concept x bucket (strata smaller than this are
            audited in full).
        target: Precision target.
        confidence: Confidence.
        sprt: Stop early when the sequential test decides.
        seed: Seed of the random ranking.
        source: Verdict source (see :data:`SOURCES`).

    Returns:
        The new audit id.

    Raises:
        ConfigError: A bad option, or ``size`` larger than the accepted set in scope.
        StageError: No accepted item in scope.
    """
    if source not in SOURCES:
        raise ConfigError(f"audit source {source!r}: use one of {', '.join(SOURCES)}")
    if not 0 < target < 1 or not 0 < confidence < 1:
        raise ConfigError(
            f"--target {target} / --confidence {confidence}: both must lie strictly between 0 and 1"
        )
    if (size is not None and size < 1) or per_stratum < 0:
        raise ConfigError("--size must be 1 or more and --per-stratum 0 or more")
    accepted = results.accepted
    if concept is not None:
        accepted = accepted[accepted["concept"] == concept]
    if bucket is not None:
        accepted = accepted[accepted["bucket"] == bucket]
    scope = _scope_name(concept, bucket)
    if accepted.empty:
        known = ", ".join(sorted(results.accepted["concept"].astype(str).unique())) or "none"
        raise StageError(
            f"audit: no accepted items in scope ({scope}); accepted concepts: {known}. "
            "Collect and review answers first, or pick another --concept/--bucket"
        )
    population = len(accepted)
    if size is None:
        size = certify.required_sample_size(target, confidence, 0)
        if sprt:
            size = max(size, 4 * sprt_for(target, confidence).correct_needed_without_error())
        size = min(size, population)
    elif size > population:
        raise ConfigError(
            f"--size {size}: only {population} accepted item(s) in scope ({scope}); "
            f"pass --size {population} or less (that many audits the whole scope)"
        )
    try:
        sample = certify.audit_sample(
            accepted[["task", "concept", "bucket", "image_id", "posterior"]],
            per_stratum,
            size,
            seed=seed,
            allow_census=True,
        )
    except AnalysisError as exc:
        raise ConfigError(f"audit: {exc}") from exc
    with ledger.conn:
        cur = ledger.conn.execute(
            "INSERT INTO audits (target, scope_concept, scope_bucket, aggregator, "
            "target_precision, confidence, sprt, seed, population, sample_size, source, "
            "status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
            (
                results.target,
                concept,
                bucket,
                results.aggregator,
                target,
                confidence,
                int(sprt),
                seed,
                population,
                len(sample),
                source,
                utc_now(),
            ),
        )
        audit_id = int(cur.lastrowid or 0)
        ledger.conn.executemany(
            "INSERT INTO audit_items (audit_id, position, task, concept, bucket, image_id, "
            "posterior, in_stratum, in_pooled) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    audit_id,
                    position,
                    row["task"],
                    row["concept"],
                    int(row["bucket"]),
                    int(row["image_id"]),
                    float(row["posterior"]),
                    int(bool(row["in_stratum_sample"])),
                    int(bool(row["in_pooled_sample"])),
                )
                for position, row in enumerate(sample.to_dict(orient="records"))
            ],
        )
    return audit_id


def _audit_row(ledger: Ledger, audit_id: int) -> dict[str, Any]:
    cur = ledger.conn.execute("SELECT * FROM audits WHERE id = ?", (audit_id,))
    row = cur.fetchone()
    if row is None:
        raise InputError(f"audit {audit_id}: no such audit; run 'turk audit' to draw one")
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def audit_items(ledger: Ledger, audit_id: int) -> pd.DataFrame:
    """Return the items of an audit in audit order, with the image file of each.

    Args:
        ledger: The open ledger.
        audit_id: The audit.

    Returns:
        ``position, task, concept, bucket, image_id, posterior, in_stratum, in_pooled,
        correct, source, marked_at, local_path, title``.
    """
    items = pd.read_sql_query(
        "SELECT position, task, concept, bucket, image_id, posterior, in_stratum, in_pooled, "
        "correct, source, marked_at FROM audit_items WHERE audit_id = ? ORDER BY position",
        ledger.conn,
        params=(audit_id,),
    )
    ids = items["image_id"].dropna().astype(int).tolist()
    paths = image_files(ledger, ids)
    items["local_path"] = [paths.get(int(i)) if pd.notna(i) else None for i in items["image_id"]]
    # Titles are stored URL-encoded with the other YFCC text; the accessor decodes them.
    metadata = image_metadata(ledger, ids)
    items["title"] = [
        metadata.get(int(i), {}).get("title") if pd.notna(i) else None for i in items["image_id"]
    ]
    return items


def audit_progress(ledger: Ledger, audit_id: int) -> AuditProgress:
    """Compute where an audit stands, and close it when it is complete.

    Args:
        ledger: The open ledger.
        audit_id: The audit.

    Returns:
        The :class:`AuditProgress`.
    """
    audit = _audit_row(ledger, audit_id)
    rows = ledger.conn.execute(
        "SELECT position, in_pooled, correct FROM audit_items WHERE audit_id = ? ORDER BY position",
        (audit_id,),
    ).fetchall()
    marked = [r for r in rows if r[2] is not None]
    pooled = [r for r in marked if r[1]]
    pooled_total = sum(1 for r in rows if r[1])
    errors = sum(1 for r in marked if not r[2])
    pooled_errors = sum(1 for r in pooled if not r[2])
    target, confidence = float(audit["target_precision"]), float(audit["confidence"])
    population = int(audit["population"])
    # A pooled sample that covers the whole scope is a census: exact precision.
    cert = certify.certify_precision(
        len(pooled) - pooled_errors,
        len(pooled),
        target,
        confidence,
        population=population if pooled_total == population else None,
    )
    decision: str | None = None
    if audit["sprt"]:
        test = sprt_for(target, confidence)
        for _, in_pooled, correct in rows:
            if correct is None:
                break
            if in_pooled:
                test.update(bool(correct))
        decision = str(test.decision)
    next_position = next((int(r[0]) for r in rows if r[2] is None), None)
    done = next_position is None or decision in ("certified", "refuted")
    status = "done" if done else "open"
    if status != audit["status"] or decision != audit["decision"]:
        with ledger.conn:
            ledger.conn.execute(
                "UPDATE audits SET status = ?, decision = ?, finished_at = ? WHERE id = ?",
                (status, decision, utc_now() if done else None, audit_id),
            )
    return AuditProgress(
        audit_id=audit_id,
        scope=_scope_name(audit["scope_concept"], audit["scope_bucket"]),
        sample_size=len(rows),
        population=population,
        marked=len(marked),
        errors=errors,
        pooled_marked=len(pooled),
        pooled_errors=pooled_errors,
        lower_bound=cert.lower_bound,
        certified=cert.certified,
        target=target,
        confidence=confidence,
        sprt=bool(audit["sprt"]),
        decision=decision,
        status=status,
        next_position=None if done else next_position,
    )


def mark_item(
    ledger: Ledger, audit_id: int, position: int, correct: bool | None, source: str
) -> None:
    """Record (or, with ``correct=None``, clear) the verdict on one audited item.

    Args:
        ledger: The open ledger.
        audit_id: The audit.
        position: The item's position in the audit.
        correct: True (right), False (wrong), None (undo).
        source: Verdict source (see :data:`SOURCES`).

    Raises:
        InputError: No such item.
    """
    with ledger.conn:
        cur = ledger.conn.execute(
            "UPDATE audit_items SET correct = ?, source = ?, marked_at = ? "
            "WHERE audit_id = ? AND position = ?",
            (
                None if correct is None else int(correct),
                None if correct is None else source,
                None if correct is None else utc_now(),
                audit_id,
                position,
            ),
        )
    if cur.rowcount == 0:
        raise InputError(f"audit {audit_id}: no item at position {position}")


def _parse_verdict(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InputError(
        f"{where}: correct value {text!r} not understood; write 1/0, yes/no, true/false or "
        "right/wrong"
    )


def _read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise InputError(f"{path}: no such file; pass an existing CSV file")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(
                f"{path}: line 1: missing column(s) {', '.join(missing)}; the header must "
                f"name {','.join(required)}"
            )
        rows = []
        for row in reader:
            clean = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            rows.append((reader.line_num, clean))
    return rows


def _apply_verdicts(
    ledger: Ledger, audit_id: int, verdicts: dict[str, bool], source: str
) -> tuple[int, int]:
    """Write verdicts by task in audit order, stopping when an SPRT decides.

    Returns:
        ``(marked, left_unmarked)``.
    """
    items = audit_items(ledger, audit_id)
    audit = _audit_row(ledger, audit_id)
    test = sprt_for(float(audit["target_precision"]), float(audit["confidence"]))
    marked = 0
    for row in items.to_dict(orient="records"):
        if row["task"] not in verdicts:
            continue
        mark_item(ledger, audit_id, int(row["position"]), verdicts[row["task"]], source)
        marked += 1
        if (
            audit["sprt"]
            and row["in_pooled"]
            and test.update(verdicts[row["task"]]) != (certify.AuditDecision.CONTINUE)
        ):
            break
    unmarked = int(
        ledger.conn.execute(
            "SELECT COUNT(*) FROM audit_items WHERE audit_id = ? AND correct IS NULL",
            (audit_id,),
        ).fetchone()[0]
    )
    return marked, unmarked


def apply_answers_file(ledger: Ledger, audit_id: int, path: Path) -> tuple[int, int]:
    """Mark audit items from a CSV file with header ``image,concept,correct``.

    The whole file is checked before anything is written: a row naming an item that is
    not in the audit's sample, a bad verdict or a repeated item is an error naming the
    line. Sampled items the file does not mention stay unmarked.

    Args:
        ledger: The open ledger.
        audit_id: The audit.
        path: The CSV file.

    Returns:
        ``(marked, left_unmarked)``.

    Raises:
        InputError: Missing file or column, a bad line (named by number).
    """
    items = audit_items(ledger, audit_id)
    sampled = set(items["task"])
    verdicts: dict[str, bool] = {}
    for line, row in _read_csv(path, ("image", "concept", "correct")):
        where = f"{path}: line {line}"
        try:
            image_id = int(row["image"])
        except ValueError:
            raise InputError(f"{where}: image {row['image']!r} is not an image id") from None
        task = f"{row['concept']}/{image_id}"
        if task not in sampled:
            raise InputError(
                f"{where}: image {image_id} ({row['concept']}) is not in audit {audit_id}'s "
                "sample; mark only the sampled items (see 'turk audit --list')"
            )
        if task in verdicts:
            raise InputError(f"{where}: image {image_id} ({row['concept']}) is marked twice")
        verdicts[task] = _parse_verdict(row["correct"], where)
    return _apply_verdicts(ledger, audit_id, verdicts, "answers-file")


def apply_truth_file(ledger: Ledger, audit_id: int, path: Path) -> tuple[int, int]:
    """Mark audit items from a truth file (header ``image,concept``; concept or ``none``).

    An item is right when its image's true concept is the concept it was accepted as.
    For the sample collection and demos, where the truth is known; the report labels
    these verdicts as read from a truth file.

    Args:
        ledger: The open ledger.
        audit_id: The audit.
        path: The truth CSV (``turk sample`` writes ``truth.csv``).

    Returns:
        ``(marked, left_unmarked)``.

    Raises:
        InputError: Missing file or column, a bad image id, or a sampled image the
            file does not know.
    """
    from turk.collection.sample import load_truth

    truth = load_truth(path)
    items = audit_items(ledger, audit_id)
    unknown = [int(i) for i in items["image_id"] if int(i) not in truth]
    if unknown:
        raise InputError(
            f"{path}: no truth for {len(unknown)} sampled image(s) (e.g. image {unknown[0]}); "
            "pass the truth file of this collection"
        )
    verdicts = {
        str(task): truth[int(image_id)] == concept
        for task, image_id, concept in zip(
            items["task"], items["image_id"], items["concept"], strict=True
        )
    }
    return _apply_verdicts(ledger, audit_id, verdicts, "truth")


def _state(ledger: Ledger, audit_id: int) -> dict[str, Any]:
    progress = audit_progress(ledger, audit_id)
    items = audit_items(ledger, audit_id)
    return {
        "progress": progress.to_json(),
        "items": [
            {
                "position": int(r["position"]),
                "concept": r["concept"],
                "bucket": int(r["bucket"]),
                "image_id": int(r["image_id"]),
                "title": r["title"] if isinstance(r["title"], str) else "",
                "has_image": isinstance(r["local_path"], str) and Path(r["local_path"]).is_file(),
                "correct": None if pd.isna(r["correct"]) else bool(r["correct"]),
            }
            for r in items.to_dict(orient="records")
        ],
    }


def audit_app(ledger: Ledger, audit_id: int, *, token: str | None = None) -> Any:
    """Build the local audit page: a Starlette application.

    Routes: ``GET /`` (the page), ``GET /api/state`` (progress and items),
    ``POST /api/mark`` (JSON ``{"position": n, "correct": true|false|null}``, header
    ``X-Audit-Token``), ``GET /image/{position}`` (the sampled image, nothing else).

    Args:
        ledger: The open ledger (shared by the request threads under a lock).
        audit_id: The audit to serve.
        token: Token the page must send with each mark (random when None); other pages
            in the same browser cannot send it.

    Returns:
        The Starlette application; ``app.state.finished`` is a threading.Event set when
        the audit is complete.
    """
    import jinja2
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    token = token or secrets.token_urlsafe(24)
    lock = threading.Lock()
    finished = threading.Event()
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("turk.dataset", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("audit.html.j2")
    with lock:
        audit = _audit_row(ledger, audit_id)

    def page(request: Request) -> Response:
        html = template.render(
            audit_id=audit_id,
            token=token,
            scope=_scope_name(audit["scope_concept"], audit["scope_bucket"]),
            target=float(audit["target_precision"]),
            confidence=float(audit["confidence"]),
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    def state(request: Request) -> Response:
        with lock:
            data = _state(ledger, audit_id)
        if data["progress"]["status"] == "done":
            finished.set()
        return JSONResponse(data)

    async def mark(request: Request) -> Response:
        if request.headers.get("x-audit-token") != token:
            return JSONResponse({"error": "bad or missing X-Audit-Token"}, status_code=403)
        try:
            body = json.loads(await request.body())
            position = int(body["position"])
            correct = body["correct"]
            if correct is not None and not isinstance(correct, bool):
                raise ValueError("correct must be true, false or null")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        with lock:
            try:
                mark_item(ledger, audit_id, position, correct, "requester")
            except InputError as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            data = _state(ledger, audit_id)
        if data["progress"]["status"] == "done":
            finished.set()
        return JSONResponse(data)

    def image(request: Request) -> Response:
        position = int(request.path_params["position"])
        with lock:
            row = ledger.conn.execute(
                "SELECT image_id FROM audit_items WHERE audit_id = ? AND position = ?",
                (audit_id, position),
            ).fetchone()
            path = (
                None if row is None or row[0] is None else image_files(ledger, [row[0]]).get(row[0])
            )
        if not path or not Path(path).is_file():
            return Response("image file missing", status_code=404)
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/state", state),
            Route("/api/mark", mark, methods=["POST"]),
            Route("/image/{position:int}", image),
        ]
    )
    app.state.finished = finished
    app.state.token = token
    return app


def bind_port(host: str, port: int) -> socket.socket:
    """Open a listening TCP socket (port 0 picks a free one).

    Args:
        host: Address to bind (127.0.0.1 unless told otherwise).
        port: Port number.

    Returns:
        The bound socket.

    Raises:
        ConfigError: The port is taken or the address cannot be bound.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--port {port}: cannot listen on {host} ({exc}); pass another --port"
        ) from exc
    sock.listen(64)
    return sock


def serve_audit(
    ledger: Ledger,
    audit_id: int,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    on_ready: Callable[[str], None] | None = None,
    linger_s: float = 2.0,
) -> AuditProgress:
    """Serve the audit page until the audit is complete (or the process is interrupted).

    Args:
        ledger: The open ledger.
        audit_id: The audit.
        host: Address to listen on.
        port: Port (0: a free one).
        on_ready: Called with the page URL once the server listens.
        linger_s: Seconds the page stays up after the last verdict, so it can show
            the result.

    Returns:
        The audit's progress when the server stopped.
    """
    import asyncio

    import uvicorn

    app = audit_app(ledger, audit_id)
    sock = bind_port(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}/"
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    def watch() -> None:
        app.state.finished.wait()
        time.sleep(linger_s)
        server.should_exit = True

    threading.Thread(target=watch, daemon=True).start()
    if on_ready is not None:
        on_ready(url)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
    return audit_progress(ledger, audit_id)
