"""``turk run``: the pipeline from ``turk.yaml``, stage by stage, resumable and guarded.

The stages, in order: ingest -> buckets -> embed -> rank -> publish -> collect -> review
-> report -> export. Each stage calls the library function of its area. The ledger's
``stages`` table remembers, per stage, the fingerprint of the settings and inputs it ran
with (and the fingerprints of the stages it read from), so that:

- a stage already done with the same fingerprint is skipped (ingest .. publish); the
  crowd stages (collect .. export) are cheap, idempotent and see new work every day, so
  they run whenever asked (report and export are skipped when nothing they read changed);
- a stage killed half-way is left ``running`` and simply runs again (every library
  function resumes where it stopped);
- a change to ``turk.yaml`` or to a file it names that invalidates a finished stage is
  refused with the keys that changed, the stages it invalidates and the command that
  redoes them (``turk run --from rank``), instead of mixing old and new results;
- a stage asked for before the stages it reads from have run raises
  :class:`~turk.errors.StageError` naming the stage and the command to run first.

Money: the local target spends nothing real; ``mturk-sandbox`` needs AWS credentials;
``mturk`` (production) needs ``crowd.live: true`` in the project, ``live=True`` (the
``--live`` flag) and the caller's confirmation of the cost estimate.

On the local target, when nothing listens at ``crowd.endpoint``, the run starts the
project's sandbox itself (state in ``sandbox.db`` beside ``turk.yaml``, media from the
ledger's ``media/`` folder) for the stages that talk to it, and stops it at the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from turk.crowd.backend import TURKLE, pays_workers
from turk.errors import ConfigError, CrowdError, MoneyError, StageError
from turk.ledger import Ledger, utc_now
from turk.project.config import ProjectConfig, check_budget
from turk.text import counted

STAGES: tuple[str, ...] = (
    "ingest",
    "buckets",
    "embed",
    "rank",
    "publish",
    "collect",
    "review",
    "rounds",
    "report",
    "export",
)
"""Every stage of ``turk run``, in order."""

NEEDS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "buckets": ("ingest",),
    "embed": ("ingest",),
    "rank": ("buckets", "embed"),
    "publish": ("rank",),
    "collect": ("publish",),
    "review": ("collect",),
    "rounds": ("review",),
    "report": ("review",),
    "export": ("report",),
}
"""The stages each stage reads from."""

RECURRING = frozenset({"collect", "review", "rounds", "report", "export"})
"""Stages that run whenever asked: new work may have arrived since they last ran."""

ProgressFactory = Callable[[str, int | None, str], AbstractContextManager[Callable[[int], None]]]
"""Makes a progress callback for a stage: ``(description, total, unit)`` -> context."""

ConfirmFn = Callable[[list[str]], bool]
"""Shown the cost lines of a production publish; answers whether to go ahead."""


@dataclass
class StageOutcome:
    """What one stage of a run did.

    Attributes:
        name: The stage.
        status: ``done``, ``skipped`` (already done), ``partial`` (stopped on purpose
            with work left, e.g. the budget) or ``waiting`` (for workers).
        lines: The stage's one-screen summary.
    """

    name: str
    status: str
    lines: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """What ``turk run`` did.

    Attributes:
        outcomes: One per stage considered, in order.
        stopped: Why the run stopped before its last stage, or None.
        notes: Lines for the end of the run (stages now out of date, what to run next).
    """

    outcomes: list[StageOutcome] = field(default_factory=list)
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)


# -- fingerprints ------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path | Decimal):
        return str(value)
    return value


def _file_digest(path: Path | None, *, content: bool = True) -> Any:
    """Identify a file (content hash) or a large file (size and time), or a folder."""
    if path is None:
        return None
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(item.relative_to(path)).encode())
            digest.update(item.read_bytes())
        return {"path": str(path), "sha256": digest.hexdigest()[:16]}
    if not path.exists():
        return {"path": str(path), "missing": True}
    if not content:
        stat = path.stat()
        return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}


def stage_settings(config: ProjectConfig, name: str) -> dict[str, Any]:
    """Return what a stage's results depend on, keyed by the ``turk.yaml`` key.

    Args:
        config: The project.
        name: The stage.

    Returns:
        JSON-serialisable settings (files identified by content or size and time).
    """
    c = config
    if name == "ingest":
        return {
            "collection.metadata": [_file_digest(p, content=False) for p in c.collection.metadata],
            "collection.images": str(c.collection.images) if c.collection.images else None,
            "collection.filters": {
                "photos_only": c.collection.photos_only,
                "valid_date": c.collection.valid_date,
                "min_bytes": c.collection.min_bytes,
                "min_edge": c.collection.min_edge,
                "max_aspect": c.collection.max_aspect,
            },
        }
    if name == "buckets":
        return {
            "buckets.scheme": c.buckets.scheme,
            "buckets.count": c.buckets.count if c.buckets.scheme == "count" else None,
            "buckets.ranges": _file_digest(c.buckets.ranges),
            "buckets.reserve": list(c.buckets.reserve),
        }
    if name == "embed":
        return {
            "model.name": _file_digest(Path(c.model.name))
            if c.model.name_is_file()
            else c.model.name,
            "model.pretrained": _file_digest(Path(c.model.pretrained), content=False)
            if c.model.pretrained is not None and c.model.pretrained_is_file()
            else c.model.pretrained,
        }
    if name == "rank":
        return {"concepts": _file_digest(c.concepts)}
    if name == "publish":
        from turk.hits.language import DEFAULT_LANGUAGE

        instructions = Path(c.hits.instructions)
        return {
            "crowd.target": c.crowd.target,
            "crowd.image_base_url": c.crowd.image_base_url,
            "hits.task": c.hits.task,
            "hits.items_per_hit": c.hits.items_per_hit,
            "hits.instructions": _file_digest(instructions)
            if instructions.is_absolute()
            else c.hits.instructions,
            "hits.templates": _file_digest(c.hits.templates),
            "hits.seed": c.hits.seed,
            # Named only when not English, so projects from before HITs had a language
            # keep their fingerprint (and their stages done).
            **({"hits.language": c.hits.language} if c.hits.language != DEFAULT_LANGUAGE else {}),
            "gold.file": _file_digest(c.gold.file),
            "gold.rate": c.gold.rate,
            "hit_type": _jsonable(c.hit_type),
            "qualifications": _jsonable(c.qualifications),
        }
    if name == "collect":
        return {"crowd.target": c.crowd.target}
    if name == "review":
        return {"review": _jsonable(c.review)}
    if name == "rounds":
        return {"rounds": _jsonable(c.rounds)}
    if name == "report":
        return {"certification": _jsonable(c.certification), "report.dir": str(c.report_dir)}
    if name == "export":
        return {
            "export.dir": str(c.export_dir),
            "export.link": c.export_link,
            "export.test_fraction": c.export_test_fraction,
            "certification": _jsonable(c.certification),
        }
    raise ConfigError(f"unknown stage {name!r}")


def _fingerprint(settings: dict[str, Any], upstream: dict[str, str | None]) -> str:
    text = json.dumps({"settings": settings, "upstream": upstream}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class StageRecord:
    """A stage's row in the ``stages`` table."""

    name: str
    fingerprint: str
    settings: dict[str, Any]
    status: str
    outputs: dict[str, Any]
    finished_at: str | None


def read_stages(ledger: Ledger) -> dict[str, StageRecord]:
    """Return the ``stages`` table by stage name.

    Args:
        ledger: The open ledger.

    Returns:
        The recorded stages.
    """
    out: dict[str, StageRecord] = {}
    for row in ledger.conn.execute(
        "SELECT name, fingerprint, settings, status, outputs, finished_at FROM stages"
    ):
        out[row[0]] = StageRecord(
            row[0], row[1], json.loads(row[2] or "{}"), row[3], json.loads(row[4] or "{}"), row[5]
        )
    return out


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Name each changed key, with old and new value when they are short."""
    out = []
    for key in sorted(set(old) | set(new)):
        before = json.dumps(old.get(key), sort_keys=True, default=str)
        after = json.dumps(new.get(key), sort_keys=True, default=str)
        if before == after:
            continue
        value = new.get(key)
        items = value if isinstance(value, list) else [value]
        if items and all(isinstance(v, dict) and "path" in v for v in items):
            out.append(f"{key} (file changed)")
        elif len(before) + len(after) <= 60:
            out.append(f"{key} ({before} -> {after})")
        else:
            out.append(key)
    return out


def _descendants(name: str) -> list[str]:
    found = {name}
    for stage in STAGES:
        if any(need in found for need in NEEDS[stage]):
            found.add(stage)
    return [s for s in STAGES if s in found]


def _ancestors(name: str) -> set[str]:
    found: set[str] = set()
    todo = list(NEEDS[name])
    while todo:
        stage = todo.pop()
        if stage not in found:
            found.add(stage)
            todo.extend(NEEDS[stage])
    return found


@dataclass
class Staleness:
    """Which finished stages no longer match the project, and why.

    Attributes:
        changed: Stage -> the ``turk.yaml`` keys (or upstream stages) that changed.
        invalid: Every stage out of date: the changed ones and all after them.
    """

    changed: dict[str, list[str]]
    invalid: set[str]

    def message(self) -> str:
        """Say what changed, what it invalidates and how to redo it."""
        first = min(self.changed, key=STAGES.index)
        parts = [
            f"{', '.join(keys)} changed since {stage} ran" for stage, keys in self.changed.items()
        ]
        hit = [s for s in STAGES if s in self.invalid]
        return (
            f"{'; '.join(parts)}: this invalidates {', '.join(hit)}; redo them with "
            f"'turk run --from {first}'"
        )


def staleness(config: ProjectConfig, ledger: Ledger) -> Staleness:
    """Compare the finished stages with the project as it is now.

    Args:
        config: The project.
        ledger: The open ledger.

    Returns:
        The :class:`Staleness` (empty when everything matches).
    """
    records = read_stages(ledger)
    changed: dict[str, list[str]] = {}
    for name in STAGES:
        record = records.get(name)
        if record is None or record.status not in ("done", "partial"):
            continue
        current = stage_settings(config, name)
        upstream = {n: records[n].fingerprint if n in records else None for n in NEEDS[name]}
        if _fingerprint(current, upstream) == record.fingerprint:
            continue
        then = {k: v for k, v in record.settings.get("settings", {}).items() if k != "state"}
        keys = _changed_keys(then, current)
        upstream_then = record.settings.get("upstream", {})
        keys += [f"{n} (rerun)" for n in NEEDS[name] if upstream_then.get(n) != upstream.get(n)]
        if name in RECURRING and not any(k.endswith("(rerun)") for k in keys):
            continue  # crowd stages recompute from scratch: their own settings may change
        changed[name] = keys or ["inputs"]
    invalid: set[str] = set()
    for name in changed:
        invalid.update(_descendants(name))
    # Only report a stage as the cause when no earlier stage explains it.
    causes = {n: k for n, k in changed.items() if not (_ancestors(n) & set(changed))}
    return Staleness(changed=causes, invalid=invalid)


# -- the run context ---------------------------------------------------------------------


@contextmanager
def _no_progress(description: str, total: int | None, unit: str) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


@dataclass
class _Context:
    config: ProjectConfig
    ledger: Ledger
    live: bool
    confirm: ConfirmFn | None
    progress: ProgressFactory
    round_limit: int | None = None
    done: set[str] = field(default_factory=set)
    backend_obj: Any = None
    sandbox: Any = None

    def backend(self) -> Any:
        """Connect to the target once; on local, start the sandbox when none listens."""
        from turk.crowd.targets import open_backend

        if self.backend_obj is not None:
            return self.backend_obj
        crowd = self.config.crowd
        if crowd.target == "local":
            self._ensure_sandbox()
        self.backend_obj = open_backend(
            crowd.target,
            endpoint_url=crowd.endpoint,
            profile=crowd.profile,
            live=self.live,
            token_env=crowd.token_env,
            ledger_root=self.ledger.root,
        )
        return self.backend_obj

    def _ensure_sandbox(self) -> None:
        from turk.crowd.local import start_local_sandbox

        try:
            self.sandbox = start_local_sandbox(
                self.config.crowd.endpoint or "",
                self.config.sandbox_state,
                self.ledger.root / "media",
            )
        except CrowdError as exc:
            raise StageError(str(exc)) from exc

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None


# -- the stages --------------------------------------------------------------------------


def _ingest(ctx: _Context) -> StageOutcome:
    from retrieval.collection import CollectionFilters
    from turk.collection.ingest import ingest_collection
    from turk.collection.tables import image_count

    c = ctx.config.collection
    filters = CollectionFilters(c.photos_only, c.valid_date, c.min_bytes, c.min_edge, c.max_aspect)
    with ctx.progress("ingest", None, "rows") as advance:
        summary = ingest_collection(
            ctx.ledger, list(c.metadata), filters=filters, images_dir=c.images, on_progress=advance
        )
    lines = []
    for f in summary.files:
        filtered = ", ".join(f"{n:,} {why}" for why, n in sorted(f.filtered.items())) or "none"
        lines.append(
            f"{ctx.config.rel(Path(f.path))} ({f.layout}): {f.lines:,} lines, {f.inserted:,} new, "
            f"{f.already_present:,} already present, {f.rejected:,} rejected, filtered: {filtered}"
        )
    total = image_count(ctx.ledger)
    lines.append(f"{total:,} images in the ledger")
    return StageOutcome("ingest", "done", lines)


def _buckets(ctx: _Context) -> StageOutcome:
    from turk.collection.buckets import format_bucket_table, make_buckets

    b = ctx.config.buckets
    result = make_buckets(
        ctx.ledger,
        count=b.count if b.scheme == "count" else None,
        by_year=b.scheme == "by-year",
        ranges_file=b.ranges if b.scheme == "ranges" else None,
        reserve=b.reserve,
    )
    lines = format_bucket_table(result.buckets).splitlines()
    lines.append(
        f"{len(result.buckets)} buckets ({result.scheme}) over {result.total_images:,} images"
        + (f"; {result.unassigned:,} outside every range" if result.unassigned else "")
    )
    return StageOutcome("buckets", "done", lines)


@contextmanager
def _weights_named_in(config: ProjectConfig) -> Iterator[None]:
    """Turn "weights cannot be fetched" into the turk.yaml key to change and what to."""
    from retrieval.demomodel import demo_model_paths
    from retrieval.errors import WeightsUnavailableError

    try:
        yield
    except WeightsUnavailableError as exc:
        demo_config, demo_weights = demo_model_paths()
        raise ConfigError(
            f"{config.path}: model.pretrained: {exc.pretrained!r}: {exc.model} weights are "
            "not in the local cache and cannot be downloaded (offline); set "
            f"model.pretrained to a {exc.model} weights file (.pt) copied to this machine, "
            f"or try the demo model (not CLIP): model.name: {demo_config} and "
            f"model.pretrained: {demo_weights}"
        ) from None


def _embed(ctx: _Context) -> StageOutcome:
    from retrieval.demomodel import describe_model
    from turk.candidates.embed import (
        plan_embedding,
        plan_ray_embedding,
        run_embedding,
        run_ray_embedding,
    )

    m, e = ctx.config.model, ctx.config.embed
    with _weights_named_in(ctx.config):
        if e.engine == "ray":
            ray_plan = plan_ray_embedding(
                ctx.ledger, model=m.name, pretrained=m.pretrained, out=e.out
            )
            folder = ray_plan.folder
            with ctx.progress("embed", ray_plan.total, "images") as advance:
                report = run_ray_embedding(
                    ctx.ledger,
                    ray_plan,
                    address=e.address,
                    device=m.device,
                    batch_size=m.batch_size,
                    workers=m.workers,
                    actors=e.actors,
                    on_progress=advance,
                )
        else:
            plan = plan_embedding(
                ctx.ledger, model=m.name, pretrained=m.pretrained, device=m.device, out=e.out
            )
            folder = plan.folder
            with ctx.progress("embed", plan.total, "images") as advance:
                report = run_embedding(
                    ctx.ledger,
                    plan,
                    batch_size=m.batch_size,
                    workers=m.workers,
                    on_progress=advance,
                )
    where = str(folder) if isinstance(folder, str) else ctx.config.rel(folder)
    lines = [
        f"model: {describe_model(m.name, m.pretrained)}",
        f"{report.images:,} images embedded, {report.failed:,} failed, "
        f"{report.already_done:,} done before; {counted(report.shards, 'new shard')} in {where}",
        f"{report.device}: {report.images_per_second:,.0f} images/s"
        + (" (engine ray)" if e.engine == "ray" else ""),
    ]
    return StageOutcome("embed", "done", lines)


def _rank(ctx: _Context) -> StageOutcome:
    from turk.candidates.rank import rank_ledger

    m = ctx.config.model
    with _weights_named_in(ctx.config), ctx.progress("rank", None, "embeddings") as advance:
        report = rank_ledger(
            ctx.ledger,
            ctx.config.concepts,
            model=m.name,
            pretrained=m.pretrained,
            device=m.device,
            on_progress=advance,
        )
    lines = [
        f"{len(report.concepts)} concepts x {len(report.buckets)} buckets "
        f"({len(report.reserved)} reserved skipped) over {report.embeddings:,} embeddings",
        f"{report.positives:,} positive and {report.background:,} background candidates; "
        f"table in {ctx.config.rel(report.csv)}",
    ]
    for concept, bucket, found in report.short[:3]:
        lines.append(f"short: {concept} in bucket {bucket} has only {found} candidates")
    if len(report.short) > 3:
        lines.append(f"... {len(report.short) - 3} more concept x bucket cells are short")
    lines.append("look at them with 'turk preview --out preview' before publishing")
    return StageOutcome("rank", "done", lines)


def _publish(ctx: _Context) -> StageOutcome:
    from turk.crowd.publish import (
        PublishConfig,
        PublishPlan,
        check_production,
        plan_for_publish,
        publish,
    )
    from turk.crowd.spend import target_spend

    config = ctx.config
    crowd = config.crowd
    live = ctx.live and crowd.live
    check_production(
        crowd.target,
        live=live,
        budget=config.budget,
        live_hint=f"set crowd.live: true in {config.path.name} and run 'turk run --live'",
        budget_hint=f"add budget: USD to {config.path.name}",
    )
    check_budget(config, target_spend(ctx.ledger, crowd.target).committed)
    backend = ctx.backend()
    plans = plan_for_publish(
        ctx.ledger,
        backend,
        image_base=crowd.image_base_url,
        task=config.hits.task,
        items_per_hit=config.hits.items_per_hit,
        gold=config.gold.file,
        gold_rate=config.gold.rate,
        seed=config.hits.seed,
        instruction_set=config.hits.instructions,
        template_dir=config.hits.templates,
        language=config.hits.language,
    )
    publish_config = PublishConfig(
        hit_type=config.hit_type, qualifications=config.qualifications, source=str(config.path)
    )
    lines: list[str] = []

    def show(prepared: PublishPlan) -> None:
        lines.extend(prepared.describe())

    def confirm(prepared: PublishPlan) -> bool:
        return ctx.confirm is not None and ctx.confirm(prepared.describe())

    try:
        report = publish(
            ctx.ledger,
            backend,
            plans,
            publish_config,
            budget=config.budget,
            live=live,
            confirm=confirm,
            media_dir=ctx.ledger.root / "media",
            on_plan=show,
            progress=ctx.progress,
        )
    except MoneyError as exc:
        if "not confirmed" in str(exc):
            raise MoneyError(
                "publish: not confirmed; nothing was sent (rerun and confirm, or --yes)"
            ) from exc
        raise
    lines.append(
        f"published {report.published} HITs now ({report.already} before, {report.reconciled} "
        f"found on the target); {report.money_line()}"
    )
    left = report.not_sent_budget + report.not_sent_error + report.failed
    if report.errors:
        lines.extend(f"error: {e}" for e in report.errors[:3])
    if left:
        why = "the budget" if report.not_sent_budget else "errors"
        lines.append(f"{left} HITs not sent because of {why}; fix and rerun 'turk run publish'")
        return StageOutcome("publish", "partial", lines)
    return StageOutcome("publish", "done", lines)


def _collect(ctx: _Context) -> StageOutcome:
    from turk.crowd.collect import collect
    from turk.crowd.tables import answer_count, published_hit_count

    config = ctx.config
    backend = ctx.backend()
    lines: list[str] = []
    workers = config.crowd.simulated_workers
    if workers is not None:
        from turk.crowd.local import run_simulated_workers

        token = None
        if config.crowd.target == TURKLE:
            from turk.crowd.turkle import turkle_token

            token = turkle_token(config.crowd.token_env)
        with ctx.progress("simulated workers", None, "HITs") as advance:
            result = run_simulated_workers(
                backend.endpoint_url,
                workers.truth,
                n=workers.n,
                seed=workers.seed,
                accuracy=workers.accuracy,
                spammers=workers.spammers,
                clickers=workers.clickers,
                on_progress=advance,
                turkle_token=token,
            )
        lines.append(
            f"{result.workers} simulated workers submitted {result.submitted} assignments "
            f"(truth: {config.rel(workers.truth)})"
        )
    hits = published_hit_count(ctx.ledger, config.crowd.target)
    with ctx.progress("collect", hits, "HITs") as advance:
        report = collect(ctx.ledger, backend, on_progress=advance)
    lines.append(
        f"checked {report.hits_checked} HITs: {report.assignments_new} new assignments, "
        f"{report.answers} answers, {report.flagged + report.refused} flagged"
    )
    lines.extend(report.flags[:3])
    answers = answer_count(ctx.ledger, config.crowd.target)
    open_hits = published_hit_count(ctx.ledger, config.crowd.target, open_only=True)
    lines.append(f"{answers:,} answers in the ledger; {open_hits} HITs still open to workers")
    if answers == 0:
        lines.append("waiting for workers: rerun 'turk run collect review report export' later")
        return StageOutcome("collect", "waiting", lines)
    return StageOutcome("collect", "done", lines)


def _review(ctx: _Context) -> StageOutcome:
    from turk.crowd.review import GoldRule, ReviewOptions, review
    from turk.money import format_usd

    r = ctx.config.review
    options = ReviewOptions(
        rule=GoldRule(min_gold=r.min_gold, min_accuracy=r.min_accuracy),
        approve_all=r.approve_all,
        block_after=r.block_after,
        trusted=r.trusted,
        bonus=r.bonus,
        bonus_accuracy=r.bonus_accuracy,
        extend=r.extend,
        extend_step=r.extend_step,
        budget=ctx.config.budget,
    )
    report = review(ctx.ledger, ctx.backend(), options)
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(report.workers.items())) or "none"
    lines = [
        f"workers: {verdicts}",
        f"approved {report.approved}, rejected {report.rejected}, left {report.left} "
        f"(too little gold seen), blocked {report.blocked}",
    ]
    if report.bonuses and not pays_workers(ctx.config.crowd.target):
        lines.append(f"{report.bonuses} bonus decisions recorded (not paid through turk)")
    elif report.bonuses or report.extended:
        lines.append(
            f"bonuses {report.bonuses} ({format_usd(report.bonus_total)}), extended "
            f"{report.extended} HITs ({format_usd(report.extension_total)})"
        )
    if report.failed:
        lines.append(f"{report.failed} actions failed; rerun 'turk run review' to resume")
        return StageOutcome("review", "partial", lines)
    return StageOutcome("review", "done", lines)


def _finish_round(ctx: _Context) -> StageOutcome | None:
    """Send what the last round chose, collect and review it; None when it is all in."""
    from turk.crowd.tables import published_hit_count

    for step in (_publish, _collect, _review):
        outcome = step(ctx)
        if outcome.status in ("partial", "waiting"):
            return StageOutcome("rounds", outcome.status, outcome.lines)
    # Extra assignments bought by review --extend open HITs again: answer and review them
    # while workers answer at once (the local sandbox's simulated workers), once per
    # extension a HIT may still get.
    r, hit_type = ctx.config.review, ctx.config.hit_type
    room = hit_type.max_total_assignments - hit_type.max_assignments
    for _ in range(-(-room // r.extend_step) if r.extend else 0):
        if published_hit_count(ctx.ledger, ctx.config.crowd.target, open_only=True) == 0:
            break
        for step in (_collect, _review):
            outcome = step(ctx)
            if outcome.status in ("partial", "waiting"):
                return StageOutcome("rounds", outcome.status, outcome.lines)
    open_hits = published_hit_count(ctx.ledger, ctx.config.crowd.target, open_only=True)
    if open_hits:
        return StageOutcome(
            "rounds",
            "waiting",
            [f"{open_hits} HITs of this round still open to workers; rerun 'turk run' later"],
        )
    return None


def _rounds(ctx: _Context) -> StageOutcome:
    """Curation rounds until every cell stops (or ``round_limit`` more rounds ran)."""
    from turk.candidates.pool import latest_round
    from turk.crowd.spend import NOT_PAID, target_spend
    from turk.crowd.tables import published_hit_count
    from turk.dataset.results import crowd_results
    from turk.dataset.rounds import plan_round, record_round
    from turk.dataset.rules import STOP_REASONS
    from turk.money import estimate_cost, format_usd, round_cents

    config = ctx.config
    if config.hits.task != "binary":
        return StageOutcome(
            "rounds", "done", ["multi-select HITs ask every class at once: one pass, no rounds"]
        )
    quota = int(_curation(config)["quota"])
    regular = max(1, round(config.hits.items_per_hit * (1 - config.gold.rate)))
    paid = pays_workers(config.crowd.target)
    per_item = Decimal("0")
    if paid:
        per_item = estimate_cost(
            1, config.hit_type.reward, config.hit_type.max_assignments, items=regular
        ).per_item or Decimal("0")
    lines: list[str] = []
    sent = 0
    # Right after this run's own publish, collect and review (and with nothing left open,
    # as review --extend can leave) the last round is all in: no second pass over it.
    just_reviewed = {"publish", "collect", "review"} <= ctx.done and not published_hit_count(
        ctx.ledger, config.crowd.target, open_only=True
    )
    while True:
        waiting = None if just_reviewed else _finish_round(ctx)
        just_reviewed = False
        if waiting is not None:
            return StageOutcome("rounds", waiting.status, [*lines, *waiting.lines])
        if ctx.round_limit is not None and sent >= ctx.round_limit:
            break
        cert = config.certification
        results = crowd_results(
            ctx.ledger,
            target=config.crowd.target,
            aggregator=cert.aggregator,
            min_posterior=cert.min_posterior,
        )
        left = target_spend(ctx.ledger, config.crowd.target).left(config.budget)
        plan = plan_round(
            ctx.ledger,
            results,
            quota=quota,
            settings=config.rounds,
            budget_left=left,
            cost_per_item=per_item,
        )
        record_round(ctx.ledger, plan)
        open_cells = [c for c in plan.cells if c.picks]
        if not open_cells:
            stops: dict[str, int] = {}
            for cell in plan.cells:
                if cell.stop:
                    stops[cell.stop] = stops.get(cell.stop, 0) + 1
            told = "; ".join(f"{n} {STOP_REASONS[s]}" for s, n in sorted(stops.items()))
            lines.append(f"after {latest_round(ctx.ledger)} rounds every cell stopped: {told}")
            break
        reranked = sum(1 for c in open_cells if c.method == "rerank")
        lines.append(
            f"round {plan.number}: {len(open_cells)} cells short, {plan.picks} candidates "
            f"sent ({reranked} cells re-ranked), {sum(c.expected for c in open_cells):.0f} "
            f"accepted expected, "
            + (f"about {format_usd(round_cents(per_item * plan.picks))}" if paid else NOT_PAID)
        )
        sent += 1
    return StageOutcome("rounds", "done", lines or ["no round needed"])


def _audit(ctx: _Context) -> str | None:
    """Draw and mark the audit from a file when the project names one; say what was done."""
    from turk.dataset.audit import apply_answers_file, apply_truth_file, draw_audit, latest_audit
    from turk.dataset.results import crowd_results

    cert = ctx.config.certification
    if cert.audit_source == "requester" or cert.audit_file is None:
        return None
    target = ctx.config.crowd.target
    results = crowd_results(
        ctx.ledger, target=target, aggregator=cert.aggregator, min_posterior=cert.min_posterior
    )
    population = len(results.accepted)
    if population == 0:
        return "audit: no accepted items yet"
    found = latest_audit(
        ctx.ledger,
        target,
        source=cert.audit_source,
        population=population,
        aggregator=cert.aggregator,
        target_precision=cert.target,
        confidence=cert.confidence,
    )
    if found is None:
        audit_id = draw_audit(
            ctx.ledger,
            results,
            size=cert.audit_size,
            target=cert.target,
            confidence=cert.confidence,
            seed=cert.audit_seed,
            source=cert.audit_source,
        )
    else:
        audit_id = found
    apply = apply_truth_file if cert.audit_source == "truth" else apply_answers_file
    marked, unmarked = apply(ctx.ledger, audit_id, cert.audit_file)
    return (
        f"audit {audit_id}: {marked} of {population} accepted items checked against "
        f"{ctx.config.rel(cert.audit_file)} ({cert.audit_source}); {unmarked} left unmarked"
    )


def _how_certified(summary: dict[str, Any]) -> str:
    """How the dataset's precision statement was reached, in a few words."""
    estimate = f"model estimate {summary['dataset_estimated_precision']:.2%}"
    audited, errors = summary["audited"], summary["audit_errors"]
    if not audited:
        return f"nothing audited yet; {estimate}"
    if audited == summary["accepted"]:
        return f"all {audited} accepted images audited, {errors} wrong; {estimate}"
    return (
        f"certified lower bound {summary['dataset_certified_lower']:.2%} from {audited} "
        f"audited, {errors} wrong; {estimate}"
    )


def _curation(config: ProjectConfig) -> dict[str, Any]:
    """What the report and datasheet measure the curation against: quota, sample truth."""
    from retrieval.concepts import load_concepts

    cert = config.certification
    truth = cert.audit_file if cert.audit_source == "truth" else None
    settings = load_concepts(config.concepts).settings
    return {"quota": settings.images_per_class, "asked": settings.candidates, "truth_file": truth}


def _report(ctx: _Context) -> StageOutcome:
    from analysis.report import write_report
    from turk.dataset.report import ledger_report

    config = ctx.config
    cert = config.certification
    audit_line = _audit(ctx)
    report, _ = ledger_report(
        ctx.ledger,
        target=config.crowd.target,
        aggregator=cert.aggregator,
        min_posterior=cert.min_posterior,
        target_precision=cert.target,
        confidence=cert.confidence,
        title=f"{config.root.name}: dataset report",
        **_curation(config),
    )
    files = write_report(report, config.report_dir)
    s = report.summary
    lines = [audit_line] if audit_line else []
    lines += [
        f"{s['verified']:,} items verified, {s['accepted']:,} accepted, {s['answers']:,} answers "
        f"from {s['workers']} workers",
        f"dataset precision: {s['dataset_status']} at {cert.target:.0%} ({_how_certified(s)})",
        *(
            [f"{s['cells_at_quota']} of {s['cells']} cells hold their quota of {s['quota']}"]
            if "cells" in s
            else []
        ),
        *(
            [f"against the sample's truth: {s['truth_precision']:.2%} of the accepted are right"]
            if "truth_precision" in s
            else []
        ),
        f"report: {config.rel(files.html)}",
    ]
    if cert.audit_source == "requester" and s["audited"] == 0:
        lines.append(
            f"to certify, audit a sample: 'turk audit' (about {s['zero_error_sample_needed']} "
            "items), then 'turk run report'"
        )
    return StageOutcome("report", "done", lines)


def _export(ctx: _Context) -> StageOutcome:
    from turk.crowd.tables import published_hit_count
    from turk.dataset.export import export_from_ledger

    config = ctx.config
    open_hits = published_hit_count(ctx.ledger, config.crowd.target, open_only=True)
    if open_hits:
        return StageOutcome(
            "export",
            "waiting",
            [
                f"{open_hits} HITs are still open to workers; export waits until they are "
                "done (rerun 'turk run collect review report export' later, or run "
                "'turk export' for a partial dataset now)"
            ],
        )
    cert = config.certification
    with ctx.progress("export", None, "images") as advance:
        summary, report = export_from_ledger(
            ctx.ledger,
            config.export_dir,
            target=config.crowd.target,
            aggregator=cert.aggregator,
            min_posterior=cert.min_posterior,
            mode=config.export_link,  # type: ignore[arg-type]
            test_fraction=config.export_test_fraction,
            target_precision=cert.target,
            confidence=cert.confidence,
            title=config.root.name,
            on_progress=advance,
            **_curation(config),
        )
    per_bucket = ", ".join(f"b{b}: {sum(c.values())}" for b, c in sorted(summary.counts.items()))
    return StageOutcome(
        "export",
        "done",
        [
            f"{summary.images:,} labeled images in {len(summary.class_names)} classes "
            f"({', '.join(summary.class_names)}) written to {config.rel(summary.out_dir)}",
            f"per bucket: {per_bucket}",
            f"precision: {report.summary['dataset_status']} at {cert.target:.0%}",
        ],
    )


StageFn = Callable[[_Context], StageOutcome]

STAGE_FUNCTIONS: dict[str, StageFn] = {
    "ingest": _ingest,
    "buckets": _buckets,
    "embed": _embed,
    "rank": _rank,
    "publish": _publish,
    "collect": _collect,
    "review": _review,
    "rounds": _rounds,
    "report": _report,
    "export": _export,
}
"""The library call behind each stage."""


def _state_digest(ctx: _Context, name: str) -> dict[str, Any]:
    """Ledger state a recurring stage reads, so it is skipped when nothing changed."""
    from turk.crowd.tables import action_count, answer_count
    from turk.dataset.audit import marked_item_count

    target = ctx.config.crowd.target
    state: dict[str, Any] = {}
    if name in ("report", "export"):
        state["answers"] = answer_count(ctx.ledger, target)
        state["actions"] = action_count(ctx.ledger, target)
        state["audit_marks"] = marked_item_count(ctx.ledger)
        state["audit_files"] = _file_digest(ctx.config.certification.audit_file)
    return state


# -- planning and running ----------------------------------------------------------------


def _check_name(name: str) -> str:
    if name not in STAGES:
        import difflib

        close = difflib.get_close_matches(name, STAGES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown stage {name!r}{hint}; stages: {', '.join(STAGES)}")
    return name


def select_stages(
    names: list[str] | tuple[str, ...] = (), *, start: str | None = None, until: str | None = None
) -> tuple[list[str], set[str]]:
    """Pick the stages of a run and those to redo even when done.

    Args:
        names: Stages named on the command line (run in pipeline order; redone, except
            the recurring ones, which rebuild only when new work arrived).
        start: ``--from``: redo this stage and every later one.
        until: ``--until``: stop after this stage.

    Returns:
        ``(stages in order, stages forced to run)``.

    Raises:
        ConfigError: An unknown stage, or ``--from`` after ``--until``.
    """
    for n in (*names, start, until):
        if n is not None:
            _check_name(n)
    if names and (start or until):
        raise ConfigError("name stages, or use --from/--until, not both")
    if names:
        chosen = [s for s in STAGES if s in set(names)]
        # A named stage that looks for new work (collect ... export) redoes nothing when
        # nothing arrived; --from redoes every stage it covers.
        return chosen, {s for s in chosen if s not in RECURRING}
    first = STAGES.index(start) if start else 0
    last = STAGES.index(until) if until else len(STAGES) - 1
    if first > last:
        raise ConfigError(f"--from {start} comes after --until {until}; swap them")
    chosen = list(STAGES[first : last + 1])
    return chosen, set(chosen) if start else set()


def run_pipeline(
    config: ProjectConfig,
    *,
    stages: list[str] | tuple[str, ...] = (),
    start: str | None = None,
    until: str | None = None,
    live: bool = False,
    confirm: ConfirmFn | None = None,
    progress: ProgressFactory | None = None,
    on_stage: Callable[[StageOutcome], None] | None = None,
    round_limit: int | None = None,
) -> RunResult:
    """Run the project's pipeline, doing only what is missing.

    Args:
        config: The loaded project.
        stages: Stages to run (empty: all, or the ``start``/``until`` range).
        start: Redo this stage and all later ones (``--from``).
        until: Stop after this stage (``--until``).
        live: Production publishing was asked for (``--live``).
        confirm: Asked to confirm the cost of a production publish; None refuses it.
        progress: Makes progress callbacks for long stages.
        on_stage: Called with each stage's outcome as it finishes.
        round_limit: The ``rounds`` stage runs at most this many more rounds (``turk
            round``: 1); None runs them until every cell stops.

    Returns:
        The :class:`RunResult`.

    Raises:
        StageError: A stage asked for before its inputs exist, or results out of date
            with the project (the message names the changed keys and the fix).
        ConfigError: Bad stage names, or a budget below what is already published.
        MoneyError: A production publish without ``crowd.live``, ``--live`` or
            confirmation.
    """
    chosen, forced = select_stages(stages, start=start, until=until)
    ledger = Ledger(config.ledger)
    ctx = _Context(config, ledger, live, confirm, progress or _no_progress, round_limit=round_limit)
    result = RunResult()
    with ledger, closing(ctx):
        _check_plan(config, ledger, chosen, forced)
        with ledger.run("run", {"stages": chosen, "forced": sorted(forced)}) as run:
            for name in chosen:
                outcome = _run_stage(ctx, name, name in forced, run.id)
                if outcome.status == "done":
                    ctx.done.add(name)
                run.add(outcome.status)
                result.outcomes.append(outcome)
                if on_stage is not None:
                    on_stage(outcome)
                if outcome.status in ("partial", "waiting"):
                    later = chosen[chosen.index(name) + 1 :]
                    if later:
                        result.stopped = (
                            f"stopped after {name} ({outcome.status}); not run: {', '.join(later)}"
                        )
                    break
        stale = staleness(config, ledger)
        if stale.changed:
            result.notes.append("out of date now: " + stale.message())
    return result


def _check_plan(config: ProjectConfig, ledger: Ledger, chosen: list[str], forced: set[str]) -> None:
    """Refuse a run that would read missing or out-of-date results, before anything runs."""
    records = read_stages(ledger)
    stale = staleness(config, ledger)
    will_run: set[str] = set()
    for name in chosen:
        if name not in STAGE_FUNCTIONS:
            raise StageError(
                f"stage {name}: not available in this version of turk; run 'turk {name}' "
                "by hand, then 'turk run' for the later stages"
            )
        for need in sorted(_ancestors(name), key=STAGES.index):
            if need in will_run:
                continue
            record = records.get(need)
            if record is None or record.status not in ("done", "partial"):
                state = "has not run" if record is None else f"did not finish ({record.status})"
                raise StageError(
                    f"stage {name} needs {need}, which {state}; run 'turk run --until {name}' "
                    f"(or 'turk run {need}') first"
                )
            if need in stale.invalid:
                raise StageError(f"stage {name} would read out-of-date results: {stale.message()}")
        record = records.get(name)
        done = record is not None and record.status == "done"
        if done and name in stale.invalid and name not in forced and name not in RECURRING:
            raise StageError(stale.message())
        will_run.add(name)


def _run_stage(ctx: _Context, name: str, forced: bool, run_id: int) -> StageOutcome:
    ledger = ctx.ledger
    records = read_stages(ledger)
    settings = stage_settings(ctx.config, name)
    upstream = {n: records[n].fingerprint if n in records else None for n in NEEDS[name]}
    if name in RECURRING:
        settings = {**settings, "state": _state_digest(ctx, name)}
    fingerprint = _fingerprint(settings, upstream)
    record = records.get(name)
    if record is not None and record.status == "done" and record.fingerprint == fingerprint:
        outputs_there = name not in ("report", "export") or (
            (ctx.config.report_dir / "report.html").is_file()
            if name == "report"
            else ctx.config.export_dir.is_dir()
        )
        if (name not in RECURRING or name in ("report", "export")) and outputs_there and not forced:
            lines = [f"already done ({record.finished_at}); nothing changed"]
            lines += [str(v) for v in record.outputs.get("lines", [])]
            return StageOutcome(name, "skipped", lines)
    with ledger.conn:
        ledger.conn.execute(
            "INSERT INTO stages (name, fingerprint, settings, status, outputs, run_id, "
            "started_at, finished_at, error) VALUES (?, ?, ?, 'running', '{}', ?, ?, NULL, NULL) "
            "ON CONFLICT(name) DO UPDATE SET fingerprint=excluded.fingerprint, "
            "settings=excluded.settings, status='running', run_id=excluded.run_id, "
            "started_at=excluded.started_at, finished_at=NULL, error=NULL",
            (
                name,
                fingerprint,
                json.dumps(
                    {"settings": settings, "upstream": upstream}, sort_keys=True, default=str
                ),
                run_id,
                utc_now(),
            ),
        )
    try:
        outcome = STAGE_FUNCTIONS[name](ctx)
    # Every failure, Ctrl-C too (as interrupted), is recorded on the stage, then re-raised:
    # nothing is swallowed. (RUF100: ruff lets a re-raising handler pass BLE001.)
    except BaseException as exc:  # noqa: BLE001, RUF100
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        with ledger.conn:
            ledger.conn.execute(
                "UPDATE stages SET status=?, error=?, finished_at=? WHERE name=?",
                (status, str(exc)[:2000], utc_now(), name),
            )
        raise
    if name in RECURRING:
        # The stage changes what it reads (a report marks its audit): remember the state
        # it left, so the next run skips it when nothing new arrived.
        settings = {**stage_settings(ctx.config, name), "state": _state_digest(ctx, name)}
        fingerprint = _fingerprint(settings, upstream)
    recorded = json.dumps({"settings": settings, "upstream": upstream}, sort_keys=True, default=str)
    with ledger.conn:
        ledger.conn.execute(
            "UPDATE stages SET status=?, outputs=?, finished_at=?, fingerprint=?, settings=? "
            "WHERE name=?",
            (
                outcome.status,
                json.dumps({"lines": outcome.lines}),
                utc_now(),
                fingerprint,
                recorded,
                name,
            ),
        )
    return outcome


def stage_table(config: ProjectConfig) -> list[tuple[str, str, str]]:
    """Return each stage's state for display: ``(stage, status, detail)``.

    Args:
        config: The project.

    Returns:
        One row per stage, in order.
    """
    if not config.ledger.exists():
        return [(s, "not run", "") for s in STAGES]
    with Ledger(config.ledger) as ledger:
        records = read_stages(ledger)
        stale = staleness(config, ledger)
    rows = []
    for name in STAGES:
        record = records.get(name)
        if record is None:
            rows.append((name, "not run", ""))
            continue
        status = "out of date" if name in stale.invalid else record.status
        rows.append((name, status, record.finished_at or ""))
    return rows
