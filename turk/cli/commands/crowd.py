"""Commands of the crowd area: ``turk publish``, ``collect``, ``review``, ``status``, ``expire``.

Each opens the ledger and the target's backend (:func:`turk.crowd.targets.open_backend`), calls
the library (:mod:`turk.crowd.publish`, :mod:`turk.crowd.collect`, :mod:`turk.crowd.review`,
:mod:`turk.crowd.status`) and prints a summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from turk.cli.app import app, open_ledger
from turk.cli.app import state as app_state
from turk.cli.commands.hits import (
    BucketOption,
    ConceptOption,
    InstructionsOption,
    LanguageOption,
    TemplatesOption,
)
from turk.cli.console import console, err_console, progress_bar
from turk.crowd.backend import DEFAULT_LOCAL_ENDPOINT
from turk.errors import StageError

if TYPE_CHECKING:
    from turk.crowd.backend import CrowdBackend

TargetOption = Annotated[
    str,
    typer.Option(
        "--target",
        help="Crowd target: local (the 'turk sandbox serve' server), turkle (a Turkle "
        "server; nobody is paid through turk), mturk-sandbox (Amazon's sandbox, no money) "
        "or mturk (production, real money).",
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="Requester API endpoint overriding the target's (for local: where "
        f"'turk sandbox serve' listens; default {DEFAULT_LOCAL_ENDPOINT}; for turkle: "
        "the Turkle server, default $TURKLE_URL, token from $TURKLE_TOKEN).",
        show_default=False,
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="AWS profile for the MTurk targets (default: the standard AWS chain: "
        "AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws).",
        show_default=False,
    ),
]
RateOption = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help="Client-side limit on API requests per second (0 = none; default 5 for "
        "the MTurk targets, none for local).",
        show_default=False,
    ),
]
LiveOption = Annotated[
    bool,
    typer.Option(
        "--live", help="Allow changes on target mturk (production, real money); required there."
    ),
]
BatchOption = Annotated[
    str | None,
    typer.Option("--batch", help="Only this batch id (default: every batch).", show_default=False),
]


def _connect(
    target: str,
    endpoint_url: str | None,
    profile: str | None,
    rate: float | None,
    *,
    live: bool = False,
    pool: int = 32,
    ctx: typer.Context | None = None,
) -> CrowdBackend:
    from turk.crowd.targets import open_backend

    return open_backend(
        target,
        endpoint_url=endpoint_url,
        profile=profile,
        live=live,
        rate=rate,
        max_pool_connections=max(pool, 10),
        ledger_root=app_state(ctx).db.parent if ctx is not None else None,
    )


@app.command("publish")
def publish_command(
    ctx: typer.Context,
    target: TargetOption = "local",
    endpoint_url: EndpointOption = None,
    profile: ProfileOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Plan, validate and price the HITs and write their HTML (as 'turk render'); "
            "call no service.",
        ),
    ] = False,
    live: LiveOption = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Skip the confirmation on production (for scripts)."),
    ] = False,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Hard cap in USD on everything committed on the target by this ledger "
            "(rewards and fees of every HIT published, extensions, bonuses); publishing "
            "stops before the HIT that would cross it. Required for --target mturk.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file with hit_type (title, description, reward, ...) and "
            "qualifications (locale, approval_rate, approved_hits, require, exclude).",
            show_default=False,
        ),
    ] = None,
    reward: Annotated[
        str | None,
        typer.Option(
            "--reward",
            help="Reward per assignment in USD (overrides the config; default 0.05).",
            show_default=False,
        ),
    ] = None,
    max_assignments: Annotated[
        int | None,
        typer.Option(
            "--max-assignments",
            help="Workers per HIT (overrides the config; default 3; the fee rises at 10).",
            show_default=False,
        ),
    ] = None,
    extend_to: Annotated[
        int | None,
        typer.Option(
            "--extend-to",
            help="Most workers per HIT that 'turk review --extend' may reach (default "
            "--max-assignments + 2, kept under 10 when it starts under 10).",
            show_default=False,
        ),
    ] = None,
    lifetime: Annotated[
        str | None,
        typer.Option(
            "--lifetime",
            help="How long HITs are offered, seconds or e.g. 2h, 7d (overrides the config).",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="HITs created in parallel.")
    ] = 8,
    rate: RateOption = None,
    task: Annotated[
        str,
        typer.Option(
            "--task", help="binary: one concept per HIT, yes/no; multi: all classes per image."
        ),
    ] = "binary",
    items_per_hit: Annotated[
        int, typer.Option("--items-per-hit", help="Most images per HIT, gold included.")
    ] = 12,
    gold: Annotated[
        Path | None,
        typer.Option(
            "--gold", help="Gold CSV (image,concept,label) to mix in.", show_default=False
        ),
    ] = None,
    gold_rate: Annotated[
        float, typer.Option("--gold-rate", help="Share of items that are gold (0 to 0.5).")
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed for order and gold placement.")] = 0,
    instructions: InstructionsOption = None,
    templates: TemplatesOption = None,
    language: LanguageOption = "en",
    concept: ConceptOption = None,
    bucket: BucketOption = None,
    image_base_url: Annotated[
        str | None,
        typer.Option(
            "--image-base-url",
            help="https URL where the ledger's media/ folder is served (required for the "
            "MTurk targets; local uses <endpoint>/media/).",
            show_default=False,
        ),
    ] = None,
    media_dir: Annotated[
        Path | None,
        typer.Option(
            "--media-dir",
            help="Folder to put item images in (default <ledger folder>/media; for local it "
            "must be the folder 'turk sandbox serve --media' serves).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="With --dry-run: folder for the HTML files.")
    ] = Path("hits"),
) -> None:
    """Publish HITs for the ranked candidates (and gold) to a crowd target, within budget."""
    from turk.crowd.backend import check_target
    from turk.crowd.publish import PublishPlan, load_publish_config, plan_for_publish, publish
    from turk.money import format_usd, parse_amount

    check_target(target)
    cap = parse_amount(budget, "--budget") if budget is not None else None
    settings = load_publish_config(
        config,
        reward=reward,
        max_assignments=max_assignments,
        max_total_assignments=extend_to,
        lifetime=lifetime,
    )
    if dry_run:
        from turk.hits.render import dry_run as render_dry_run

        with open_ledger(ctx, create=False) as ledger:
            rendered = render_dry_run(
                ledger,
                reward=settings.hit_type.reward,
                max_assignments=settings.hit_type.max_assignments,
                out_dir=out,
                task=task,
                items_per_hit=items_per_hit,
                gold=gold,
                gold_rate=gold_rate,
                seed=seed,
                instruction_set=instructions,
                concepts=concept,
                buckets=bucket,
                template_dir=templates,
                language=language,
            )
        for line in rendered.lines():
            console.print(f"publish --dry-run: {line}")
        return
    backend = _connect(target, endpoint_url, profile, rate, live=live, pool=concurrency, ctx=ctx)
    with open_ledger(ctx, create=False) as ledger:
        plans = plan_for_publish(
            ledger,
            backend,
            image_base=image_base_url,
            task=task,
            items_per_hit=items_per_hit,
            gold=gold,
            gold_rate=gold_rate,
            seed=seed,
            instruction_set=instructions,
            concepts=concept,
            buckets=bucket,
            template_dir=templates,
            language=language,
        )

        def show(prepared: PublishPlan) -> None:
            for line in prepared.describe():
                console.print(f"publish: {line}")

        def confirm(prepared: PublishPlan) -> bool:
            return yes or typer.confirm(
                f"Publish {prepared.affordable} HITs on PRODUCTION MTurk, committing up to "
                f"{format_usd(prepared.cost_now)}?",
                err=True,
            )

        with ledger.run("publish", {"target": target, "budget": budget, "task": task}) as run:
            report = publish(
                ledger,
                backend,
                plans,
                settings,
                budget=cap,
                live=live,
                confirm=confirm,
                media_dir=media_dir,
                concurrency=concurrency,
                on_plan=show,
                progress=progress_bar,
            )
            run.add("published", report.published)
            run.add("reconciled", report.reconciled)
            run.add("failed", report.failed)
    console.print(
        f"publish: {report.published} HITs published to {target}, {report.already} already "
        f"there ({report.reconciled} found on the target), {report.duplicates} duplicate "
        f"requests read back; {report.money_line()}; {sum(report.calls.values())} API calls"
    )
    if report.not_sent_budget:
        err_console.print(
            f"publish: stopped by --budget {format_usd(cap) if cap is not None else ''}: "
            f"{report.not_sent_budget} HITs not published (the next would cross it)"
        )
    if report.failed:
        err_console.print(
            f"publish: {report.failed} HITs failed, {report.not_sent_error} not sent: "
            f"{report.errors[0]}; rerun to resume"
        )
        raise typer.Exit(1)


@app.command("collect")
def collect_command(
    ctx: typer.Context,
    target: TargetOption = "local",
    endpoint_url: EndpointOption = None,
    profile: ProfileOption = None,
    rate: RateOption = None,
    batch: BatchOption = None,
    reviewable_only: Annotated[
        bool,
        typer.Option(
            "--reviewable-only",
            help="Look only at HITs MTurk lists as Reviewable (skip the ListHITs scan of "
            "HITs still open).",
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="HITs listed in parallel.")
    ] = 4,
) -> None:
    """Fetch new assignments (submitted, approved, rejected) and store and parse answers."""
    from turk.crowd.collect import collect

    backend = _connect(target, endpoint_url, profile, rate, pool=concurrency, ctx=ctx)
    with (
        open_ledger(ctx, create=False) as ledger,
        ledger.run("collect", {"target": target, "batch": batch}) as run,
        progress_bar("collect", None, "HITs") as advance,
    ):
        report = collect(
            ledger,
            backend,
            batch_id=batch,
            include_open=not reviewable_only,
            concurrency=concurrency,
            on_progress=advance,
        )
        run.add("assignments_new", report.assignments_new)
        run.add("answers", report.answers)
    for line in report.flags[:20]:
        err_console.print(f"collect: flagged {line}")
    calls = sum(report.calls.values())
    console.print(
        f"collect: {report.assignments_new} new assignments ({report.answers} answers, "
        f"{report.flagged} flagged, {report.refused} unreadable kept raw), "
        f"{report.assignments_updated} status changes, from {report.hits_fetched} of "
        f"{report.hits_checked} HITs with possible work; {calls} API calls"
    )


@app.command("review")
def review_command(
    ctx: typer.Context,
    target: TargetOption = "local",
    endpoint_url: EndpointOption = None,
    profile: ProfileOption = None,
    rate: RateOption = None,
    live: LiveOption = False,
    batch: BatchOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be done; send and write nothing.")
    ] = False,
    min_gold: Annotated[
        int, typer.Option("--min-gold", min=1, help="Gold items a worker must answer to be judged.")
    ] = 3,
    min_accuracy: Annotated[
        float,
        typer.Option(
            "--min-accuracy", min=0.0, max=1.0, help="Share of gold right to pass (0 to 1)."
        ),
    ] = 0.8,
    approve_all_before_deadline: Annotated[
        bool,
        typer.Option(
            "--approve-all-before-deadline",
            help="Also approve submitted work of workers with too little gold seen, before "
            "MTurk's auto-approval deadline does.",
        ),
    ] = False,
    block_after: Annotated[
        int | None,
        typer.Option(
            "--block-after",
            min=1,
            help="Block workers with this many rejected assignments.",
            show_default=False,
        ),
    ] = None,
    trusted: Annotated[
        str | None,
        typer.Option(
            "--trusted",
            help="Grant this qualification (created if missing) to workers who pass.",
            show_default=False,
        ),
    ] = None,
    bonus: Annotated[
        str | None,
        typer.Option(
            "--bonus",
            help="Bonus in USD per approved assignment of workers with --bonus-accuracy.",
            show_default=False,
        ),
    ] = None,
    bonus_accuracy: Annotated[
        float,
        typer.Option("--bonus-accuracy", min=0.0, max=1.0, help="Gold share right for a bonus."),
    ] = 0.95,
    extend: Annotated[
        bool,
        typer.Option(
            "--extend",
            help="Add assignments to HITs with items still uncertain, up to --extend-to "
            "given at publish (see --extend-rule).",
        ),
    ] = False,
    extend_rule: Annotated[
        str,
        typer.Option(
            "--extend-rule",
            help="What makes an item uncertain: 'policy' (its posterior from gold-weighted "
            "answers is below --extend-threshold either way) or 'disagree' (answers differ).",
        ),
    ] = "policy",
    extend_threshold: Annotated[
        float,
        typer.Option(
            "--extend-threshold",
            min=0.5,
            max=0.999999,
            help="Posterior at which the policy stops asking for answers on an item.",
        ),
    ] = 0.99,
    extend_step: Annotated[
        int, typer.Option("--extend-step", min=1, help="Assignments added per HIT per review.")
    ] = 1,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Hard cap in USD on everything committed on the target by this ledger "
            "(as publish --budget); bonuses and extensions stop before one would cross it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Judge workers on gold and approve, reject, bonus, block, qualify and extend."""
    from turk.crowd.review import GoldRule, ReviewOptions, review
    from turk.crowd.spend import target_spend
    from turk.money import format_usd, parse_amount

    options = ReviewOptions(
        rule=GoldRule(min_gold=min_gold, min_accuracy=min_accuracy),
        approve_all=approve_all_before_deadline,
        block_after=block_after,
        trusted=trusted,
        bonus=parse_amount(bonus, "--bonus") if bonus is not None else None,
        bonus_accuracy=bonus_accuracy,
        extend=extend,
        extend_step=extend_step,
        budget=parse_amount(budget, "--budget") if budget is not None else None,
        batch_id=batch,
        dry_run=dry_run,
    )
    if extend_rule not in ("policy", "disagree"):
        from turk.errors import ConfigError

        raise ConfigError(f"--extend-rule {extend_rule!r}: use policy or disagree")
    backend = _connect(target, endpoint_url, profile, rate, live=live, ctx=ctx)
    with open_ledger(ctx, create=False) as ledger:
        if extend and extend_rule == "policy":
            from turk.crowd.adaptive import policy_rule

            options.uncertain = policy_rule(ledger, target, threshold=extend_threshold)
        spend = None
        if dry_run:
            report = review(ledger, backend, options)
        else:
            with ledger.run("review", {"target": target, "batch": batch}) as run:
                report = review(ledger, backend, options)
                run.add("approved", report.approved)
                run.add("rejected", report.rejected)
            spend = target_spend(ledger, target)
    prefix = "review --dry-run: would" if dry_run else "review:"
    if dry_run:
        for line in report.lines:
            console.print(f"{prefix} {line}")
    workers = ", ".join(f"{n} {v}" for v, n in sorted(report.workers.items())) or "none"
    console.print(
        f"{prefix} approve {report.approved}, reject {report.rejected} "
        f"({report.already} already done, {report.skipped} skipped, {report.left} left for "
        f"later); block {report.blocked}; grant {report.qualified}; bonus {report.bonuses} "
        f"({format_usd(report.bonus_total)}); extend {report.extended} HITs "
        f"({format_usd(report.extension_total)}); workers: {workers}"
    )
    if spend is not None:
        console.print(f"review: {spend.describe(options.budget)}")
    if report.budget_stopped:
        err_console.print(
            f"review: {report.budget_stopped} actions not taken: they would cross --budget "
            f"{format_usd(options.budget) if options.budget is not None else ''} on {target}"
        )
    if report.failed:
        err_console.print(f"review: {report.failed} actions failed; rerun to retry")
        raise typer.Exit(1)


@app.command("status")
def status_command(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Only this target (default: all).", show_default=False),
    ] = None,
    batch: BatchOption = None,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Also show what this budget (USD, as publish --budget) leaves on each target.",
            show_default=False,
        ),
    ] = None,
    cells: Annotated[
        bool,
        typer.Option(
            "--cells",
            help="Also show each concept x bucket cell: rounds, sent, answers, dollars, "
            "accepted, per accepted image, and why it stopped (aggregates the answers).",
        ),
    ] = False,
) -> None:
    """Show per batch and target: HITs, assignments, money committed, spent and left."""
    from turk.crowd.backend import check_target
    from turk.crowd.spend import spend_by_target
    from turk.crowd.status import batch_status, format_status_table
    from turk.money import parse_amount

    if target is not None:
        check_target(target)
    cap = parse_amount(budget, "--budget") if budget is not None else None
    with open_ledger(ctx, create=False) as ledger:
        found = batch_status(ledger, target=target, batch_id=batch)
        money = [m for m in spend_by_target(ledger) if target is None or m.target == target]
    if not found:
        console.print("status: nothing published yet; run 'turk publish'")
        return
    for spend in money:
        console.print(f"status: {spend.describe(cap)}")
    console.print(format_status_table(found), highlight=False, soft_wrap=True)
    if cells:
        from turk.crowd.backend import pays_workers
        from turk.dataset.rounds import cells_now, format_cell_table

        with open_ledger(ctx, create=False) as ledger:
            table = cells_now(ledger, target=target)
        paid = all(pays_workers(m.target) for m in money)
        console.print(format_cell_table(table, paid=paid), highlight=False, soft_wrap=True)


@app.command("expire")
def expire_command(
    ctx: typer.Context,
    target: TargetOption = "local",
    endpoint_url: EndpointOption = None,
    profile: ProfileOption = None,
    rate: RateOption = None,
    live: LiveOption = False,
    batch: BatchOption = None,
    delete: Annotated[
        bool,
        typer.Option(
            "--delete",
            help="Also delete finished HITs whose results are all collected and reviewed.",
        ),
    ] = False,
) -> None:
    """Stop offering open HITs; with --delete, remove finished ones once results are stored."""
    from turk.crowd.status import expire_hits

    backend = _connect(target, endpoint_url, profile, rate, live=live, ctx=ctx)
    with (
        open_ledger(ctx, create=False) as ledger,
        ledger.run("expire", {"target": target, "batch": batch}) as run,
    ):
        report = expire_hits(ledger, backend, batch_id=batch, delete_finished=delete)
        run.add("expired", report.expired)
        run.add("deleted", report.deleted)
    for line in report.kept[:20]:
        err_console.print(f"expire: kept {line}")
    console.print(
        f"expire: {report.expired} HITs expired, {report.deleted} deleted, "
        f"{len(report.kept)} kept on {target}"
    )


turkle_app = typer.Typer(
    name="turkle",
    help="A Turkle server for your own annotators (nobody is paid through turk).",
    no_args_is_help=True,
)
app.add_typer(turkle_app)


@turkle_app.command("serve")
def turkle_serve_command(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8770,
    host: Annotated[
        str,
        typer.Option("--host", help="Interface to bind: loopback, or 0.0.0.0 for the lab's LAN."),
    ] = "127.0.0.1",
    state: Annotated[
        Path,
        typer.Option(
            "--state", help="Folder of Turkle's database and secrets; kept across restarts."
        ),
    ] = Path("turkle-state"),
    media: Annotated[
        Path | None,
        typer.Option(
            "--media",
            help="Folder served at /media/: the project's media/ folder, which publish fills "
            "with the images the HITs show.",
            show_default=False,
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A host name annotators reach the server by (repeatable; loopback always).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run Turkle (turk's minimal Django site) until Ctrl-C; print where its token is.

    The first start creates the database and an admin account; the account's password
    and API token are written to owner-only files in the state folder, never printed.
    """
    from turk.crowd.turkle_server import TurkleServer

    if media is not None:
        media.mkdir(parents=True, exist_ok=True)
    server = TurkleServer(
        state, port=port, host=host, media_dir=media, hosts=tuple(allowed_host or ())
    ).start()
    console.print(f"Turkle at {server.url}/ (admin pages {server.url}/admin/)")
    console.print(
        f"admin account '{server.admin}': password in {server.password_path}, "
        f"API token in {server.token_path}"
    )
    console.print(
        f"point turk at it: crowd.target: turkle, crowd.turkle.url: {server.url}, and "
        f'export TURKLE_TOKEN="$(cat {server.token_path})"'
    )
    if media is not None:
        console.print(f"serving {media} at {server.url}/media/")
    console.print("Ctrl-C stops it.")
    raise typer.Exit(server.wait())


handoff_app = typer.Typer(
    name="handoff",
    help="HITs as files for a labelling vendor or MTurk's requester web UI, and their results.",
    no_args_is_help=True,
)
app.add_typer(handoff_app)

HandoffFolderOption = Annotated[
    Path | None,
    typer.Option(
        "--folder",
        help="The hand-off folder publish --target handoff wrote (default: handoff/ beside "
        "the ledger).",
        show_default=False,
    ),
]


@handoff_app.command("export")
def handoff_export_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")] = Path(
        "handoff-export"
    ),
    folder: HandoffFolderOption = None,
) -> None:
    """Write the HITs published to the handoff target as templates and MTurk batch CSVs.

    Publish first with 'turk publish --target handoff --image-base-url https://...'; then
    upload each <name>.html as the layout and <name>.csv as the batch, and host media/ at
    the image base URL.
    """
    from turk.crowd.handoff import export_handoff, open_handoff

    root = app_state(ctx).db.parent
    backend = open_handoff(folder, root)
    report = export_handoff(backend, out, media_dir=root / "media")
    if report.hits == 0:
        raise StageError(
            f"handoff export: no open HITs in {backend.folder}; run "
            "'turk publish --target handoff --image-base-url https://...' first"
        )
    console.print(
        f"handoff export: {report.hits} HITs ({report.assignments} results asked for) in "
        f"{len(report.templates)} templates, {report.media} media files, written to {out}"
    )
    if report.missing_media:
        err_console.print(
            f"handoff export: {len(report.missing_media)} media files not found in "
            f"{root / 'media'} (first: {report.missing_media[0]}); publish again to stage them"
        )


@handoff_app.command("import")
def handoff_import_command(
    ctx: typer.Context,
    results: Annotated[Path, typer.Argument(help="Results CSV in MTurk's layout.")],
    folder: HandoffFolderOption = None,
) -> None:
    """Read a results CSV (Input.*, Answer.*, WorkerId, AssignmentId) into the ledger.

    Every row is checked first; if any is unusable, each problem is printed with its line
    and nothing is imported. Importing the same file again adds nothing.
    """
    from turk.crowd.collect import collect
    from turk.crowd.handoff import ResultsError, import_results, open_handoff

    root = app_state(ctx).db.parent
    backend = open_handoff(folder, root)
    try:
        report = import_results(backend, results)
    except ResultsError as exc:
        for line in exc.problems[1:]:
            err_console.print(f"handoff import: {line}")
        raise
    with (
        open_ledger(ctx, create=False) as ledger,
        ledger.run("collect", {"target": backend.target, "batch": None}) as run,
    ):
        collected = collect(ledger, backend)
        run.add("assignments_new", collected.assignments_new)
        run.add("answers", collected.answers)
    for line in collected.flags[:20]:
        err_console.print(f"handoff import: flagged {line}")
    console.print(
        f"handoff import: {report.rows} rows, {report.added} new results, {report.known} "
        f"already imported; {collected.assignments_new} new assignments in the ledger "
        f"({collected.answers} answers, {collected.flagged} flagged)"
    )
