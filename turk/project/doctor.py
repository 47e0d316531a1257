"""``turk doctor``: check the machine and the project before work starts.

Each check gives one :class:`Finding` (``ok``, ``warn`` or ``fail``) with a line saying
what was found and, when something is wrong, the fix. ``fail`` means a ``turk run``
would stop on it; the command exits non-zero when any check fails. Nothing is
downloaded: when the configured weights are not cached and the model hub cannot be
reached, the check says so instead of trying.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from turk.crowd.backend import TURKLE
from turk.errors import USER_ERRORS, ConfigError, LedgerError
from turk.project.config import ProjectConfig, load_project, missing_files

OK, WARN, FAIL = "ok", "warn", "fail"

REQUIRED_PACKAGES: tuple[tuple[str, str], ...] = (
    ("torch", "2.1"),
    ("open_clip_torch", "2.24"),
    ("boto3", "1.34"),
    ("numpy", "1.26"),
    ("pandas", "2.1"),
    ("pillow", "10"),
    ("jinja2", "3.1"),
    ("sqlite-utils", "3.36"),
    ("typer", "0.12"),
    ("pyyaml", "6"),
    ("starlette", "0.37"),
    ("uvicorn", "0.29"),
    ("scipy", "1.11"),
    ("defusedxml", "0.7"),
)
"""Distributions turk needs, with the oldest version it supports."""

MIN_PYTHON = (3, 11)

EMBED_BYTES_PER_IMAGE = 2 * 1024
"""Embedding bytes per image, float16, up to 1024 dimensions (ViT-B-32 uses 512)."""

LEDGER_BYTES_PER_IMAGE = 1500
"""Ledger bytes per ingested image (metadata row and indexes), measured on YFCC rows."""

METADATA_BYTES_PER_ROW = 1000
"""Average size of one uncompressed YFCC100M metadata line."""


@dataclass(frozen=True)
class Finding:
    """One check's result.

    Attributes:
        check: What was checked, e.g. ``python``.
        status: ``ok``, ``warn`` or ``fail``.
        message: What was found.
        fix: What to do about it (empty when nothing is needed).
    """

    check: str
    status: str
    message: str
    fix: str = ""

    def line(self) -> str:
        """The finding as one line: ``[status] check: message; fix``."""
        text = f"[{self.status}] {self.check}: {self.message}"
        return f"{text}; {self.fix}" if self.fix else text


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
        if not piece.isdigit():
            break
    return tuple(parts)


def check_python() -> list[Finding]:
    """Check the Python version and the installed packages.

    Returns:
        One finding for Python and one per missing or too old package (or one for all).
    """
    found = []
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        found.append(
            Finding(
                "python",
                FAIL,
                f"Python {version} is too old",
                f"use Python {'.'.join(map(str, MIN_PYTHON))} or newer",
            )
        )
    else:
        found.append(Finding("python", OK, f"Python {version} at {sys.executable}"))
    problems = []
    versions = []
    for name, oldest in REQUIRED_PACKAGES:
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        if _version_tuple(have) < _version_tuple(oldest):
            problems.append(f"{name} {have} is older than {oldest}")
        versions.append(f"{name} {have}")
    if problems:
        found.append(
            Finding(
                "packages",
                FAIL,
                "; ".join(problems),
                "run 'make install' (or 'pip install -e .') in the turk checkout",
            )
        )
    else:
        found.append(Finding("packages", OK, ", ".join(versions[:4]) + ", ..."))
    return found


def check_device(device: str) -> Finding:
    """Check that torch can use the configured device.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        The finding.
    """
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        name = torch.cuda.get_device_name(0)
        return Finding("device", OK, f"torch {torch.__version__}: CUDA available ({name})")
    if device == "cuda":
        return Finding(
            "device",
            FAIL,
            f"model.device is cuda but torch {torch.__version__} sees no CUDA device",
            "set model.device: auto (or cpu), or install a CUDA build of torch",
        )
    return Finding(
        "device",
        OK if device == "cpu" else WARN,
        f"torch {torch.__version__}: CPU only",
        "" if device == "cpu" else "embedding a large collection on CPU is slow; use a GPU",
    )


def check_model(config: ProjectConfig) -> Finding:
    """Check that the configured open_clip model and weights load, without downloading.

    Args:
        config: The project.

    Returns:
        The finding.
    """
    from retrieval.encoder import _hub_reachable, cached_pretrained, load_encoder, model_name_for

    m = config.model
    label = f"{config.rel(Path(m.name)) if m.name_is_file() else m.name}"
    try:
        name = model_name_for(m.name)
        if m.pretrained is not None and not m.pretrained_is_file():
            import open_clip

            if open_clip.get_pretrained_cfg(name, m.pretrained) and (
                cached_pretrained(name, m.pretrained) is None
            ):
                if not _hub_reachable():
                    return Finding(
                        "model",
                        FAIL,
                        f"{label} weights {m.pretrained!r} are not in the local cache and the "
                        "model hub cannot be reached (offline); no download was attempted",
                        "connect once and run 'turk doctor' again, or set model.pretrained to "
                        "a weights file",
                    )
                return Finding(
                    "model",
                    WARN,
                    f"{label} weights {m.pretrained!r} are not cached yet; 'turk run' will "
                    "download them",
                    "",
                )
        encoder = load_encoder(m.name, m.pretrained, device="cpu")
    except USER_ERRORS as exc:
        return Finding("model", FAIL, str(exc), "fix model.name / model.pretrained in turk.yaml")
    from retrieval.demomodel import DEMO_MODEL_LABEL, is_demo_weights

    weights = m.pretrained if m.pretrained is not None else "random weights"
    if m.pretrained is not None and m.pretrained_is_file():
        weights = config.rel(Path(m.pretrained))
    what = f"{label} with {weights} loads ({encoder.embed_dim}-d embeddings, "
    what += f"{encoder.image_size}px input)"
    if is_demo_weights(m.pretrained):
        return Finding(
            "model",
            OK,
            f"{DEMO_MODEL_LABEL}: {what}",
            "fine for the sample; for real photos set model.name / model.pretrained to CLIP",
        )
    return Finding(
        "model",
        OK if m.pretrained is not None else WARN,
        what,
        "" if m.pretrained is not None else "random weights rank at random; set model.pretrained",
    )


def check_ledger(path: Path, *, shown: str | None = None) -> Finding:
    """Check that the ledger is a turk ledger SQLite can read whole (``quick_check``).

    The file is only read: a damaged ledger is reported, never repaired or migrated.

    Args:
        path: The ledger file.
        shown: How to name the file in the finding (default: the path as given).

    Returns:
        The finding: ok for a sound ledger or none yet; fail with the first problems
        and the fix otherwise.
    """
    from turk.ledger import quick_check

    name = shown or str(path)
    if not path.exists():
        return Finding("ledger", OK, f"{name} does not exist yet; the first stage creates it")
    try:
        problems = quick_check(path)
    except LedgerError as exc:
        return Finding("ledger", FAIL, str(exc).replace(str(path), name, 1))
    if not problems:
        size = path.stat().st_size / 1024**2
        return Finding("ledger", OK, f"{name} ({size:,.1f} MiB) passes SQLite's quick_check")
    more = " (and more)" if len(problems) > 1 else ""
    return Finding(
        "ledger",
        FAIL,
        f"{name} is damaged; SQLite's quick_check says: {problems[0]}{more}",
        f"restore {name} from a backup, or copy what is readable with "
        f"'sqlite3 {name} .recover | sqlite3 recovered.db' and use recovered.db",
    )


def _estimated_rows(config: ProjectConfig) -> int:
    from turk.collection.tables import image_count
    from turk.ledger import Ledger

    if config.ledger.exists():
        try:
            with Ledger(config.ledger) as ledger:
                n = image_count(ledger)
                if n:
                    return n
        except LedgerError:
            pass  # check_ledger reports it; estimate from the metadata instead
    rows = 0
    for path in config.collection.metadata:
        if path.is_file():
            factor = 4 if path.suffix in {".bz2", ".gz"} else 1
            rows += path.stat().st_size * factor // METADATA_BYTES_PER_ROW
    return rows


def check_disk(config: ProjectConfig, *, free_bytes: int | None = None) -> Finding:
    """Check free disk space beside the ledger for embeddings and the ledger itself.

    Args:
        config: The project.
        free_bytes: Free bytes to assume (for tests); None asks the file system.

    Returns:
        The finding.
    """
    folder = config.ledger.parent
    probe = folder if folder.exists() else config.root
    free = shutil.disk_usage(probe).free if free_bytes is None else free_bytes
    rows = _estimated_rows(config)
    need = rows * (EMBED_BYTES_PER_IMAGE + LEDGER_BYTES_PER_IMAGE)
    gib = 1024**3
    text = (
        f"{free / gib:,.1f} GiB free in {probe}; about {rows:,} images need "
        f"{need / gib:,.2f} GiB for the ledger and embeddings"
    )
    if free < need * 1.2:
        return Finding(
            "disk",
            FAIL,
            text,
            "free space there, or set ledger: to a path on a larger disk",
        )
    return Finding("disk", OK, text)


def check_credentials(config: ProjectConfig) -> Finding:
    """Check AWS credentials for the target and which endpoint they reach.

    The local target needs none. For Amazon targets the credentials' source is named
    (never the keys) and GetAccountBalance tells which account and endpoint they reach.

    Args:
        config: The project.

    Returns:
        The finding.
    """
    import configparser

    import boto3
    from botocore.exceptions import BotoCoreError

    from turk.crowd.boto import connect
    from turk.money import format_usd

    crowd = config.crowd
    if crowd.target == "local":
        return Finding("aws", OK, "target local needs no AWS credentials")
    if crowd.target == TURKLE:
        return _check_turkle(config)
    try:
        session = boto3.Session(profile_name=crowd.profile)
        credentials = session.get_credentials()
    except (BotoCoreError, configparser.Error, OSError) as exc:  # bad profile or config file
        return Finding(
            "aws", FAIL, f"AWS profile {crowd.profile!r}: {type(exc).__name__}", "fix crowd.profile"
        )
    if credentials is None:
        return Finding(
            "aws",
            FAIL,
            f"target {crowd.target}: no AWS credentials found",
            "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, for an IAM user "
            "with AmazonMechanicalTurkFullAccess (docs/mturk.md)",
        )
    source = getattr(credentials, "method", "unknown source")
    try:
        backend = connect(
            crowd.target,
            endpoint_url=crowd.endpoint,
            profile=crowd.profile,
            max_attempts=2,
            connect_timeout=3,
            read_timeout=10,
        )
        balance = backend.balance()
    except USER_ERRORS as exc:
        return Finding(
            "aws",
            FAIL,
            f"credentials from {source} do not reach {crowd.target}: {exc}",
            "check the keys, the IAM policy and that the account is linked to MTurk",
        )
    where = backend.endpoint_url
    shown = format_usd(balance) if balance is not None else "unknown"
    return Finding(
        "aws",
        OK,
        f"credentials from {source} reach {crowd.target} at {where} (account balance {shown})",
    )


def _check_turkle(config: ProjectConfig) -> Finding:
    """Check the Turkle server answers with the token from the environment (never shown)."""
    from turk.crowd.targets import open_backend

    crowd = config.crowd
    try:
        backend = open_backend(
            TURKLE, endpoint_url=crowd.endpoint, token_env=crowd.token_env, read_timeout=10
        )
        backend.balance()
    except USER_ERRORS as exc:
        return Finding(
            "turkle",
            FAIL,
            str(exc),
            "start it ('turk turkle serve') and export its token (docs/turkle.md)",
        )
    return Finding(
        "turkle",
        OK,
        f"Turkle at {backend.endpoint_url} accepts the token (nobody is paid through turk)",
    )


def check_sandbox(config: ProjectConfig) -> Finding:
    """Check the local sandbox at ``crowd.endpoint`` answers the Requester API.

    Args:
        config: The project.

    Returns:
        The finding (a sandbox that is not running is fine: ``turk run`` starts one).
    """
    from turk.crowd.boto import connect
    from turk.crowd.local import listening

    crowd = config.crowd
    if crowd.target != "local":
        return Finding("sandbox", OK, f"target {crowd.target}: the local sandbox is not used")
    from urllib.parse import urlparse

    parsed = urlparse(crowd.endpoint or "")
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    if not listening(host, port):
        return Finding(
            "sandbox",
            OK,
            f"nothing listens at {crowd.endpoint}; 'turk run' will start the sandbox there "
            f"(state in {config.rel(config.sandbox_state)})",
        )
    try:
        backend = connect("local", endpoint_url=crowd.endpoint, max_attempts=1, read_timeout=5)
        balance = backend.balance()
        problem = "" if balance is not None else "no account balance in its answer"
    except USER_ERRORS as exc:
        problem = str(exc)
    if problem:
        return Finding(
            "sandbox",
            FAIL,
            f"something listens at {crowd.endpoint} but does not answer as the sandbox ({problem})",
            "stop it, or run 'turk sandbox serve' on another port and set crowd.endpoint",
        )
    return Finding("sandbox", OK, f"the local sandbox answers at {crowd.endpoint}")


def _concept_names(config: ProjectConfig) -> list[str]:
    try:
        data = yaml.safe_load(config.concepts.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{config.concepts}: unreadable ({exc}); fix the concepts file") from exc
    concepts = data.get("concepts") if isinstance(data, dict) else None
    if not isinstance(concepts, list) or not concepts:
        raise ConfigError(f"{config.concepts}: needs a 'concepts' list; see docs/prompts.md")
    names = []
    for entry in concepts:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{config.concepts}: every concept needs a name")
        names.append(entry["name"])
    return names


def check_templates(config: ProjectConfig) -> Finding:
    """Check the instruction set covers every concept and the HIT templates render.

    Args:
        config: The project.

    Returns:
        The finding.
    """
    from turk.hits.html import render_hit
    from turk.hits.instructions import load_instruction_set, resolve_set
    from turk.hits.language import load_strings

    try:
        concepts = _concept_names(config)
        folder = resolve_set(config.hits.instructions, concepts)
        instructions = load_instruction_set(folder, concepts)
        first = concepts[0]
        urls = [(f"item-{i}", f"http://127.0.0.1/media/check-{i}.jpg") for i in range(2)]
        page = render_hit(
            task=config.hits.task,
            concept=first if config.hits.task == "binary" else None,
            classes=concepts if config.hits.task == "multi" else [],
            instructions=[instructions[first]]
            if config.hits.task == "binary"
            else list(instructions.values()),
            item_urls=urls,
            image_base_url="http://127.0.0.1/media/",
            template_dir=config.hits.templates,
            strings=load_strings(config.hits.language, config.hits.templates),
        )
    except USER_ERRORS as exc:
        return Finding(
            "templates",
            FAIL,
            str(exc),
            "write instructions/<concept>.md for every concept (see instructions/ in a new "
            "'turk init' project)",
        )
    if 'id="turk-form"' not in page.document:
        return Finding(
            "templates",
            FAIL,
            "the rendered HIT page has no form with id turk-form",
            "keep the form of base.html.j2 in overridden templates (docs/design.md)",
        )
    return Finding(
        "templates",
        OK,
        f"{len(concepts)} concepts have instructions in {config.rel(folder)}; "
        f"{config.hits.task} HIT pages render in {config.hits.language}",
    )


def check_project(config: ProjectConfig) -> list[Finding]:
    """Check the files the project names and its consistency with the ledger.

    Args:
        config: The project (loaded without requiring its files).

    Returns:
        One finding per missing file, then gold, budget and stage findings.
    """
    from decimal import Decimal

    from turk.crowd.spend import target_spend
    from turk.project.pipeline import staleness

    found = []
    for key, path in missing_files(config):
        found.append(
            Finding(
                "config",
                FAIL,
                f"{key}: {config.rel(path)} does not exist",
                f"create it or fix {key} in {config.path.name}",
            )
        )
    if config.gold.file is not None and config.gold.file.is_file():
        found.append(_check_gold(config))
    if config.ledger.exists():
        from turk.ledger import Ledger

        try:
            with Ledger(config.ledger) as ledger:
                published = target_spend(ledger, config.crowd.target).committed
                stale = staleness(config, ledger)
        except LedgerError:
            return found  # check_ledger reports it
        if config.budget is not None and published > config.budget:
            found.append(
                Finding(
                    "budget",
                    FAIL,
                    f"budget ${config.budget} is lower than the ${published} already committed "
                    f"on {config.crowd.target}",
                    f"raise budget to at least {published}",
                )
            )
        elif published > Decimal("0"):
            found.append(
                Finding("budget", OK, f"${published} of ${config.budget} committed so far")
            )
        if stale.changed:
            found.append(Finding("stages", WARN, stale.message()))
    if not any(f.status == FAIL for f in found):
        found.append(Finding("config", OK, f"{config.rel(config.path)} is consistent"))
    return found


def _check_gold(config: ProjectConfig) -> Finding:
    from turk.hits.plan import load_gold

    assert config.gold.file is not None
    try:
        rows = load_gold(config.gold.file)
        concepts = set(_concept_names(config))
    except USER_ERRORS as exc:
        return Finding("gold", FAIL, str(exc), "fix the gold file")
    if not rows:
        return Finding(
            "gold",
            FAIL,
            f"{config.rel(config.gold.file)} has no rows; gold items measure each worker",
            "add image,concept,label rows for images you know (docs/tutorial.md), or remove "
            "gold.file",
        )
    unknown = sorted({r.concept for r in rows if r.concept and r.concept not in concepts})
    if unknown:
        return Finding(
            "gold",
            FAIL,
            f"{config.rel(config.gold.file)} names concept(s) not in the concepts file: "
            f"{', '.join(unknown)}",
            "fix the gold rows or add the concepts",
        )
    return Finding(
        "gold", OK, f"{len(rows)} gold rows for {len({r.concept for r in rows})} concepts"
    )


def run_doctor(
    project_file: Path | None,
    *,
    model: bool = True,
    on_finding: Callable[[Finding], None] | None = None,
    free_bytes: int | None = None,
    ledger: Path | None = None,
) -> list[Finding]:
    """Run every check.

    Args:
        project_file: The project's ``turk.yaml``, or None to check only the machine
            (and ``ledger``).
        ledger: A ledger to check when there is no project (a project checks its own).
        model: Load the configured model (the slowest check).
        on_finding: Called with each finding as it is made.
        free_bytes: Free disk bytes to assume (for tests); None asks the file system.

    Returns:
        Every finding, in order.
    """
    findings: list[Finding] = []

    def add(items: Finding | list[Finding]) -> None:
        for item in items if isinstance(items, list) else [items]:
            findings.append(item)
            if on_finding is not None:
                on_finding(item)

    add(check_python())
    config: ProjectConfig | None = None
    if project_file is not None:
        try:
            config = load_project(project_file, check_files=False)
        except ConfigError as exc:
            add(Finding("config", FAIL, str(exc), "fix the key named; 'turk init' shows each key"))
    add(check_device(config.model.device if config is not None else "auto"))
    if config is None:
        if ledger is not None:
            add(check_ledger(ledger))
        if project_file is None:
            checked = "the machine and the ledger" if ledger is not None else "the machine"
            add(
                Finding(
                    "project",
                    WARN,
                    f"no turk.yaml here or above; only {checked} was checked",
                    "run 'turk init DIR' or pass --project PATH",
                )
            )
        return findings
    checks: list[Callable[[], Any]] = [
        lambda: check_ledger(config.ledger, shown=config.rel(config.ledger)),
        lambda: check_project(config),
    ]
    if model:
        checks.append(lambda: check_model(config))
    checks += [
        lambda: check_disk(config, free_bytes=free_bytes),
        lambda: check_credentials(config),
        lambda: check_sandbox(config),
        lambda: check_templates(config),
    ]
    for check in checks:
        add(check())
    return findings
