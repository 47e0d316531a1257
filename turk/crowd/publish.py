"""Publish planned HITs to a crowd target: safely, idempotently and within budget.

The order of work is what makes a crash harmless:

1. the cost of what is left to publish is estimated with MTurk's fees, checked against
   ``--budget`` and the account balance, and (on production) confirmed by the caller;
2. each HIT's intent is written to the ledger (``hits`` + ``hit_items``) before any call;
3. each HIT is created with a deterministic UniqueRequestToken (a hash of target and
   HIT key) and a RequesterAnnotation naming its batch and key; a "duplicate request"
   answer counts as success and the existing HIT is read back;
4. a rerun first reconciles HITs that may have been sent by an earlier run with ListHITs
   (by annotation), so even past MTurk's 24-hour token window nothing is published twice.

Calls run on a thread pool (``concurrency``) under the backend's rate limit; the ledger
is written only from the calling thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from turk.crowd.backend import (
    LOCAL,
    MTURK,
    PAGE_TARGETS,
    QUAL_LOCALE,
    QUAL_NUMBER_APPROVED,
    QUAL_PERCENT_APPROVED,
    TURKLE,
    CrowdBackend,
    DuplicateRequestError,
    HitInfo,
    HitPage,
    HitTypeSpec,
    QualificationRequirement,
    pays_workers,
)
from turk.crowd.hit_type import (
    check_hit_type,
    default_total_assignments,
)
from turk.crowd.lock import crowd_lock
from turk.crowd.records import annotation, iso, parse_annotation, request_token, rows
from turk.crowd.spend import NOT_PAID, BudgetGuard, TargetSpend, target_spend
from turk.errors import ConfigError, CrowdError, InputError, MoneyError, StageError
from turk.hits.batch import batch_templates
from turk.hits.language import DEFAULT_LANGUAGE
from turk.hits.plan import HitPlan
from turk.ledger import Ledger, utc_now
from turk.money import estimate_cost, format_usd, parse_amount

BINARY_LABELS = ("yes", "no")
"""The values a binary HIT offers for each item."""


# -- configuration ---------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object, what: str) -> int:
    """Parse a duration given as seconds or with a unit (``90``, ``20m``, ``3d``).

    Args:
        value: The value from a config file or option.
        what: The key or option, named in errors.

    Returns:
        Seconds.

    Raises:
        ConfigError: Not a duration.
    """
    match = _DURATION.match(str(value))
    if not match or isinstance(value, bool):
        raise ConfigError(f"{what}: {value!r} is not a duration; write seconds or e.g. 20m, 3d")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class HitTypeConfig:
    """The HIT type and HIT properties of a publish.

    Attributes:
        title: Title shown to workers; ``{concept}`` is replaced per binary HIT and
            ``{items}`` by the number of photos in the HIT.
        description: Description shown to workers; ``{concept}`` and ``{items}`` as in
            the title.
        keywords: Comma-separated search keywords.
        reward: Pay per assignment.
        assignment_duration_s: Time a worker has to finish once accepted.
        auto_approval_delay_s: Time after submission before MTurk approves by itself.
        lifetime_s: Time the HIT is offered.
        max_assignments: Workers per HIT at publication.
        max_total_assignments: Workers per HIT that ``review --extend`` may reach.
    """

    title: str = "Does each photo show a {concept}?"
    description: str = (
        "Look at {items} photos and answer one quick question about each. "
        "Some photos have known answers and are checked."
    )
    keywords: str = "image, photo, labeling, classification, quick"
    reward: Decimal = Decimal("0.05")
    assignment_duration_s: int = 20 * 60
    auto_approval_delay_s: int = 3 * 86400
    lifetime_s: int = 7 * 86400
    max_assignments: int = 3
    max_total_assignments: int = 5


@dataclass(frozen=True)
class QualificationConfig:
    """Who may work on the HITs.

    Attributes:
        locales: Worker countries allowed (ISO 3166 codes), empty for anywhere.
        min_approval_rate: Lowest approval rate in percent, or None.
        min_approved_hits: Fewest approved HITs, or None.
        require: Names of this requester's qualification types a worker must have.
        exclude: Names of qualification types a worker must not have.
        exclude_blocked: Apply the ledger's worker blocks on the target before publishing.
        actions_guarded: What the requirements guard (``Accept``, ``PreviewAndAccept``,
            ``DiscoverPreviewAndAccept``).
    """

    locales: tuple[str, ...] = ()
    min_approval_rate: int | None = None
    min_approved_hits: int | None = None
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_blocked: bool = True
    actions_guarded: str = "Accept"


@dataclass(frozen=True)
class PublishConfig:
    """Everything a publish needs besides the plan.

    Attributes:
        hit_type: HIT type and HIT properties.
        qualifications: Worker requirements.
        source: The config file it came from, or None for the defaults.
    """

    hit_type: HitTypeConfig = field(default_factory=HitTypeConfig)
    qualifications: QualificationConfig = field(default_factory=QualificationConfig)
    source: str | None = None


_HIT_TYPE_KEYS = {
    "title",
    "description",
    "keywords",
    "reward",
    "assignment_duration",
    "auto_approval_delay",
    "lifetime",
    "max_assignments",
    "max_total_assignments",
}
_REQUIRED_HIT_TYPE_KEYS = ("title", "description", "reward")
_QUAL_KEYS = {
    "locale",
    "approval_rate",
    "approved_hits",
    "require",
    "exclude",
    "exclude_blocked",
    "actions_guarded",
}


def _names(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{what}: expected a list of names, got {value!r}")
    return tuple(v.strip() for v in value)


def _int(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{what}: {value!r} is not a whole number from {low} to {high}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise ConfigError(f"{what}: {number} is out of range; use {low} to {high}")
    return number


def load_publish_config(
    path: str | os.PathLike[str] | None = None,
    *,
    reward: str | None = None,
    max_assignments: int | None = None,
    max_total_assignments: int | None = None,
    title: str | None = None,
    lifetime: str | None = None,
) -> PublishConfig:
    """Read a publish config file (YAML) and apply command-line overrides.

    The file has two mappings, ``hit_type`` (``title``, ``description`` and ``reward``
    required; ``keywords``, ``assignment_duration``, ``auto_approval_delay``,
    ``lifetime``, ``max_assignments``, ``max_total_assignments`` optional) and
    ``qualifications`` (``locale``, ``approval_rate``, ``approved_hits``, ``require``,
    ``exclude``, ``exclude_blocked``, ``actions_guarded``). Without a file the defaults
    of :class:`HitTypeConfig` apply.

    Args:
        path: The config file, or None.
        reward: ``--reward`` (dollars), overriding the file.
        max_assignments: ``--max-assignments``, overriding the file.
        max_total_assignments: ``--extend-to``, overriding the file.
        title: ``--title``, overriding the file.
        lifetime: ``--lifetime``, overriding the file.

    Returns:
        The :class:`PublishConfig`.

    Raises:
        ConfigError: Unreadable file, unknown or missing key, bad value, or an extension
            limit that crosses MTurk's 10-assignment boundary.
        MoneyError: A reward that is not a valid amount.
    """
    hit: dict[str, Any] = {}
    quals: dict[str, Any] = {}
    source = None
    if path is not None:
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror}); pass --config FILE") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc}); fix the file") from exc
        if not isinstance(data, dict) or not isinstance(data.get("hit_type"), dict):
            raise ConfigError(f"{path}: needs a 'hit_type' mapping (title, description, reward)")
        # A project file (turk.yaml) also serves: its other sections are not ours to
        # check, and its missing hit_type keys take the project's defaults.
        project_file = "version" in data
        unknown = set(data) - {"hit_type", "qualifications"}
        if unknown and not project_file:
            raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}; see README")
        hit = dict(data["hit_type"])
        quals = dict(data.get("qualifications") or {})
        for key in _REQUIRED_HIT_TYPE_KEYS if not project_file else ():
            if hit.get(key) in (None, ""):
                raise ConfigError(f"{path}: hit_type.{key} is missing; add it to the file")
        for key in sorted(set(hit) - _HIT_TYPE_KEYS):
            raise ConfigError(f"{path}: unknown key hit_type.{key}; see README")
        for key in sorted(set(quals) - _QUAL_KEYS):
            raise ConfigError(f"{path}: unknown key qualifications.{key}; see README")
    where = source or "config"
    defaults = HitTypeConfig()
    if reward is not None:
        hit["reward"] = reward
    if title is not None:
        hit["title"] = title
    if lifetime is not None:
        hit["lifetime"] = lifetime
    amount = (
        parse_amount(str(hit["reward"]), "--reward" if reward is not None else f"{where}: reward")
        if "reward" in hit
        else defaults.reward
    )
    n = (
        max_assignments
        if max_assignments is not None
        else _int(hit.get("max_assignments", defaults.max_assignments), "max_assignments", 1, 1000)
    )
    if not 1 <= n <= 1000:
        raise ConfigError(f"--max-assignments {n}: use 1 to 1000")
    if max_total_assignments is not None:
        total = max_total_assignments
    elif "max_total_assignments" in hit:
        total = _int(hit["max_total_assignments"], "max_total_assignments", 1, 1000)
    else:
        total = default_total_assignments(n)
    keywords = hit.get("keywords", defaults.keywords)
    if isinstance(keywords, list):
        keywords = ", ".join(str(k) for k in keywords)
    hit_type = HitTypeConfig(
        title=str(hit.get("title", defaults.title)),
        description=str(hit.get("description", defaults.description)),
        keywords=str(keywords),
        reward=amount,
        assignment_duration_s=parse_duration(
            hit.get("assignment_duration", defaults.assignment_duration_s), "assignment_duration"
        ),
        auto_approval_delay_s=parse_duration(
            hit.get("auto_approval_delay", defaults.auto_approval_delay_s), "auto_approval_delay"
        ),
        lifetime_s=parse_duration(hit.get("lifetime", defaults.lifetime_s), "--lifetime"),
        max_assignments=n,
        max_total_assignments=total,
    )
    guard = str(quals.get("actions_guarded", "Accept"))
    options = {
        "reward": "--reward",
        "max_assignments": "--max-assignments",
        "max_total_assignments": "--extend-to",
    }

    def fail(key: str, message: str) -> Exception:
        if key == "reward":
            return MoneyError(f"--reward {message}")
        return ConfigError(f"{options.get(key) or f'{where}: {key}'} {message}")

    check_hit_type(
        reward=amount,
        max_assignments=n,
        max_total_assignments=total,
        durations={
            "assignment_duration": hit_type.assignment_duration_s,
            "lifetime": hit_type.lifetime_s,
            "auto_approval_delay": hit_type.auto_approval_delay_s,
        },
        actions_guarded=guard,
        name=lambda key: options.get(key, key),
        fail=fail,
    )
    qualifications = QualificationConfig(
        locales=tuple(c.upper() for c in _names(quals.get("locale"), "qualifications.locale")),
        min_approval_rate=(
            _int(quals["approval_rate"], "qualifications.approval_rate", 0, 100)
            if quals.get("approval_rate") is not None
            else None
        ),
        min_approved_hits=(
            _int(quals["approved_hits"], "qualifications.approved_hits", 0, 10**9)
            if quals.get("approved_hits") is not None
            else None
        ),
        require=_names(quals.get("require"), "qualifications.require"),
        exclude=_names(quals.get("exclude"), "qualifications.exclude"),
        exclude_blocked=bool(quals.get("exclude_blocked", True)),
        actions_guarded=guard,
    )
    return PublishConfig(hit_type=hit_type, qualifications=qualifications, source=source)


# -- qualifications ----------------------------------------------------------------------


def qualification_id(ledger: Ledger, backend: CrowdBackend, name: str) -> str | None:
    """Return the id of the qualification type ``name`` on the backend's target.

    Looks in the ledger first (ids recorded for this target only), then asks the target.

    Args:
        ledger: The open ledger.
        backend: The target's backend.
        name: The qualification type's name.

    Returns:
        Its id, or None when the target has no such type.
    """
    target = backend.target
    found = ledger.conn.execute(
        "SELECT qualification_type_id FROM qualifications WHERE target=? AND name=?",
        (target, name),
    ).fetchone()
    if found:
        return str(found[0])
    type_id = backend.find_qualification_type(name)
    if type_id is not None:
        with ledger.conn:
            ledger.conn.execute(
                "INSERT OR REPLACE INTO qualifications (target, name, qualification_type_id, "
                "created_at) VALUES (?, ?, ?, ?)",
                (target, name, type_id, utc_now()),
            )
    return type_id


def resolve_qualifications(
    ledger: Ledger, backend: CrowdBackend, config: QualificationConfig
) -> tuple[QualificationRequirement, ...]:
    """Turn the qualification config into requirements with ids of the target.

    Args:
        ledger: The open ledger.
        backend: The target's backend.
        config: The requirements by name.

    Returns:
        The requirements, in a stable order.

    Raises:
        CrowdError: A named qualification type does not exist on the target.
    """
    guard = config.actions_guarded
    out: list[QualificationRequirement] = []
    if config.locales:
        out.append(
            QualificationRequirement(
                QUAL_LOCALE,
                "In",
                locale_values=tuple((("Country", c),) for c in config.locales),
                actions_guarded=guard,
            )
        )
    if config.min_approval_rate is not None:
        out.append(
            QualificationRequirement(
                QUAL_PERCENT_APPROVED,
                "GreaterThanOrEqualTo",
                (config.min_approval_rate,),
                actions_guarded=guard,
            )
        )
    if config.min_approved_hits is not None:
        out.append(
            QualificationRequirement(
                QUAL_NUMBER_APPROVED,
                "GreaterThanOrEqualTo",
                (config.min_approved_hits,),
                actions_guarded=guard,
            )
        )
    for names, comparator in ((config.require, "Exists"), (config.exclude, "DoesNotExist")):
        for name in names:
            type_id = qualification_id(ledger, backend, name)
            if type_id is None:
                raise CrowdError(
                    f"qualification {name!r} does not exist on target {backend.target}; "
                    "create it there (e.g. 'turk review --trusted NAME') or fix the config"
                )
            out.append(QualificationRequirement(type_id, comparator, actions_guarded=guard))
    return tuple(out)


def apply_worker_blocks(ledger: Ledger, backend: CrowdBackend) -> int:
    """Send the ledger's worker blocks for the target that are not yet applied.

    Args:
        ledger: The open ledger.
        backend: The target's backend.

    Returns:
        Blocks sent.
    """
    todo = rows(
        ledger.conn,
        "SELECT worker_id, reason FROM worker_blocks WHERE target=? AND status='intent'",
        (backend.target,),
    )
    for row in todo:
        backend.block_worker(row["worker_id"], row["reason"])
        with ledger.conn:
            ledger.conn.execute(
                "UPDATE worker_blocks SET status='done', done_at=? WHERE target=? AND worker_id=?",
                (utc_now(), backend.target, row["worker_id"]),
            )
    return len(todo)


# -- planning and estimate ----------------------------------------------------------------


def image_base_url(target: str, endpoint_url: str, given: str | None) -> str:
    """Return the URL prefix workers fetch item images from.

    Args:
        target: The crowd target.
        endpoint_url: The backend's endpoint.
        given: ``--image-base-url``, if any.

    Returns:
        The prefix, ending in ``/``.

    Raises:
        ConfigError: An MTurk target without ``--image-base-url``, or one that is not https.
    """
    if given:
        base = given
    elif target in (LOCAL, TURKLE):
        # The local sandbox and 'turk turkle serve --media' serve the media folder.
        base = endpoint_url.rstrip("/") + "/media/"
    else:
        raise ConfigError(
            f"--image-base-url is required for target {target}: sync the ledger's media/ "
            "folder to a public https location (e.g. an S3 bucket) and pass its URL"
        )
    if target not in (LOCAL, TURKLE) and not base.startswith("https://"):
        raise ConfigError(
            f"--image-base-url {base}: MTurk pages load only https images; use an https URL"
        )
    return base if base.endswith("/") else base + "/"


def labels_of(plan: HitPlan) -> list[str]:
    """Return the values a HIT offers for each item: yes/no, or the multi-select classes.

    Args:
        plan: The planned HIT.

    Returns:
        The labels.
    """
    return list(plan.classes) if plan.task == "multi" else list(BINARY_LABELS)


def hit_cost(config: HitTypeConfig) -> Decimal:
    """Return the most one HIT can cost: every assignment paid, with MTurk's fees."""
    return estimate_cost(1, config.reward, config.max_assignments).total


@dataclass
class PublishPlan:
    """A publish, reconciled with the target, checked and costed, before anything is sent.

    Attributes:
        target: The crowd target.
        plans: Every planned HIT.
        config: The publish config.
        hit_keys_done: Planned HITs already published on this target (the ledger's and
            those found on the target by reconciliation).
        to_publish: Planned HITs still to publish.
        per_hit: Most one HIT can cost, fees included.
        spend: Committed and spent on the target before this publish
            (:func:`turk.crowd.spend.target_spend`, after reconciliation).
        budget: The cap on everything committed on the target, or None.
        affordable: How many of ``to_publish`` fit under the budget.
        reconciled: Planned HITs the ledger did not know as published but the target
            holds (created by an earlier run or a ledger restored from a copy): adopted.
        balance: The account balance, when checked.
        media_dir: Where item images are written for workers.
        live: Production was explicitly asked for.
        calls: API calls made while preparing (reconciliation, balance), by operation.
    """

    target: str
    plans: list[HitPlan]
    config: PublishConfig
    hit_keys_done: set[str]
    to_publish: list[HitPlan]
    per_hit: Decimal
    spend: TargetSpend
    budget: Decimal | None
    affordable: int
    reconciled: int
    balance: Decimal | None
    media_dir: Path
    live: bool
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def cost_now(self) -> Decimal:
        """Most this publish can commit: the affordable HITs, fees included."""
        return self.per_hit * self.affordable

    def describe(self) -> list[str]:
        """Return the estimate as lines for the caller to show before anything is sent."""
        ht = self.config.hit_type
        est = estimate_cost(self.affordable, ht.reward, ht.max_assignments)
        head = (
            f"target {self.target}: {len(self.plans)} HITs planned, "
            f"{len(self.hit_keys_done)} already published"
            + (f" ({self.reconciled} found on the target)" if self.reconciled else "")
            + f", {len(self.to_publish)} to publish"
        )
        if not pays_workers(self.target):
            return [
                head,
                f"{ht.max_assignments} assignments per HIT; {NOT_PAID}: no reward, fee or "
                "budget applies",
            ]
        lines = [
            head,
            f"reward {format_usd(ht.reward)} x {ht.max_assignments} assignments per HIT, "
            f"fee {est.fee_rate * 100:.0f}% (min $0.01): {format_usd(self.per_hit)} per HIT",
            f"cost of this publish: {format_usd(est.rewards)} rewards + "
            f"{format_usd(est.fees)} fees = {format_usd(est.total)} for {self.affordable} HITs",
            self.spend.describe(self.budget),
        ]
        if self.balance is not None:
            lines.append(f"account balance {format_usd(self.balance)}")
        if self.affordable < len(self.to_publish):
            lines.append(
                f"budget stops publishing after {self.affordable} of "
                f"{len(self.to_publish)} HITs; {len(self.to_publish) - self.affordable} "
                "will not be sent"
            )
        return lines


def check_production(
    target: str,
    *,
    live: bool,
    budget: Decimal | None,
    live_hint: str = "pass --live, a --budget, and confirm",
    budget_hint: str = "pass --budget USD, a hard cap on spending",
) -> None:
    """Refuse production without an explicit ``live`` and a budget (the one guard).

    Args:
        target: The crowd target.
        live: Production was explicitly asked for (``--live``, ``crowd.live``).
        budget: The cap, or None.
        live_hint: How the caller's user asks for production (named in the error).
        budget_hint: How the caller's user sets a budget (named in the error).

    Raises:
        MoneyError: Target ``mturk`` without ``live`` or without a budget; a budget of 0
            or less on any target.
    """
    if target == MTURK and not live:
        raise MoneyError(f"target mturk is production (real money): {live_hint}")
    if target == MTURK and budget is None:
        raise MoneyError(f"target mturk (production) needs a budget: {budget_hint}")
    if budget is not None and budget <= 0:
        raise MoneyError(f"budget {budget}: must be more than 0")


def _published_keys(ledger: Ledger, target: str) -> set[str]:
    return {
        str(r["hit_key"])
        for r in rows(
            ledger.conn, "SELECT hit_key FROM hits WHERE target=? AND hit_id IS NOT NULL", (target,)
        )
    }


def reconcile_hits(
    ledger: Ledger,
    backend: CrowdBackend,
    plans: Sequence[HitPlan],
    config: PublishConfig,
) -> int:
    """Adopt planned HITs the target holds but the ledger does not know as published.

    One ListHITs scan (every page, stopping once every planned key is found) looks for
    turk's RequesterAnnotation of each HIT left to publish, whatever the ledger says of
    it: sent by a run killed before it recorded the answer, past MTurk's 24-hour token
    window, or never recorded at all because the ledger was restored from an older copy.
    Found HITs are recorded as published; intents marked as sent that the target does
    not hold are marked as not sent, so they no longer count as committed.

    Args:
        ledger: The open ledger (the target's lock held).
        backend: The target's backend.
        plans: The planned HITs.
        config: The publish config (for the intents of adopted HITs).

    Returns:
        HITs adopted.
    """
    target = backend.target
    done = _published_keys(ledger, target)
    todo = [p for p in plans if p.hit_key not in done]
    if not todo:
        return 0
    found = _scan_existing(backend, {p.hit_key for p in todo})
    if found:
        _write_intents(ledger, config, [p for p in todo if p.hit_key in found], target)
        for hit_key, info in found.items():
            _record_hit(ledger, target, hit_key, info)
    missing = [p.hit_key for p in todo if p.hit_key not in found]
    with ledger.conn:
        ledger.conn.executemany(
            "UPDATE hits SET sent_at=NULL WHERE target=? AND hit_key=? AND hit_id IS NULL",
            [(target, k) for k in missing],
        )
    return len(found)


def prepare_publish(
    ledger: Ledger,
    backend: CrowdBackend,
    plans: Sequence[HitPlan],
    config: PublishConfig,
    *,
    budget: Decimal | None = None,
    live: bool = False,
    media_dir: Path | None = None,
) -> PublishPlan:
    """Reconcile with the target, then check and cost a publish; create nothing.

    The calls made are one ListHITs scan (:func:`reconcile_hits`) and the balance
    check. Hold the target's lock (:func:`turk.crowd.lock.crowd_lock`) from here until
    :func:`execute_publish` ends, as :func:`publish` does.

    Args:
        ledger: The open ledger.
        backend: The target's backend.
        plans: The planned HITs (from :func:`turk.hits.plan.plan_hits`).
        config: The publish config.
        budget: Cap on everything committed on the target, fees included
            (:mod:`turk.crowd.spend`).
        live: Production was explicitly asked for (``--live``).
        media_dir: Where to write item images (default ``<ledger root>/media``).

    Returns:
        The :class:`PublishPlan` to show, confirm and pass to :func:`execute_publish`.

    Raises:
        StageError: No HITs planned (no candidates).
        MoneyError: Production without ``--live`` or ``--budget``; a budget too small for
            one HIT; a balance too small for what would be published.
    """
    target = backend.target
    if not plans:
        raise StageError("no HITs to publish: no candidates; run 'turk rank' first")
    check_production(target, live=live, budget=budget)
    keys = [p.hit_key for p in plans]
    if len(set(keys)) != len(keys):
        raise StageError("the plan holds the same HIT key twice; rerun 'turk rank'")
    before = dict(backend.stats.calls)
    reconciled = reconcile_hits(ledger, backend, plans, config)
    published = _published_keys(ledger, target)
    done = {k for k in keys if k in published}
    todo = [p for p in plans if p.hit_key not in done]
    per_hit = hit_cost(config.hit_type) if pays_workers(target) else Decimal("0")
    spend = target_spend(ledger, target)
    affordable = len(todo)
    if budget is not None and per_hit > 0:
        room = budget - spend.committed
        affordable = min(len(todo), int(room // per_hit) if room > 0 else 0)
        if todo and affordable == 0:
            raise MoneyError(
                f"--budget {format_usd(budget)} is too small for one more HIT "
                f"({format_usd(per_hit)} with fees; {format_usd(spend.committed)} already "
                f"committed on target {target}): raise --budget or lower "
                "--reward/--max-assignments"
            )
    balance = None
    if todo:
        balance = backend.balance()
        need = per_hit * affordable
        if balance is not None and balance < need:
            raise MoneyError(
                f"target {target}: account balance {format_usd(balance)} is below the "
                f"{format_usd(need)} this publish commits; add funds or lower --budget"
            )
    return PublishPlan(
        target=target,
        plans=list(plans),
        config=config,
        hit_keys_done=done,
        to_publish=todo,
        per_hit=per_hit,
        spend=spend,
        budget=budget,
        affordable=affordable,
        reconciled=reconciled,
        balance=balance,
        media_dir=media_dir or (ledger.root / "media"),
        live=live,
        calls=_calls_since(backend, before),
    )


def _calls_since(backend: CrowdBackend, before: dict[str, int]) -> dict[str, int]:
    return {
        op: n - before.get(op, 0) for op, n in backend.stats.calls.items() if n != before.get(op, 0)
    }


# -- execution -------------------------------------------------------------------------


@dataclass
class PublishReport:
    """What one publish run did (counts of this process only).

    Attributes:
        target: The crowd target.
        planned: HITs planned.
        already: HITs found published before this run (in the ledger or on the target).
        published: HITs created by this run.
        reconciled: HITs the target held that the ledger did not know: adopted.
        duplicates: Creates answered "already processed" and read back.
        not_sent_budget: HITs left unsent because the budget would be crossed.
        not_sent_error: HITs left unsent because an earlier call failed (rerun).
        failed: HITs whose call failed (their intent stays; rerun to resume).
        cost_now: What this run committed, fees included.
        committed: Everything committed on the target after this run.
        spent: Everything spent on the target (unchanged by publishing).
        budget: The cap, or None.
        hit_type_ids: HIT types used.
        calls: API calls made, by operation (preparation included).
        errors: First error messages.
    """

    target: str
    planned: int = 0
    already: int = 0
    published: int = 0
    reconciled: int = 0
    duplicates: int = 0
    not_sent_budget: int = 0
    not_sent_error: int = 0
    failed: int = 0
    cost_now: Decimal = Decimal("0")
    committed: Decimal = Decimal("0")
    spent: Decimal = Decimal("0")
    budget: Decimal | None = None
    hit_type_ids: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def money_line(self) -> str:
        """Committed now, and committed, spent and left on the target, as one line."""
        if not pays_workers(self.target):
            return f"target {self.target}: {NOT_PAID}"
        left = (
            f", {format_usd(max(Decimal('0'), self.budget - self.committed))} left of "
            f"{format_usd(self.budget)}"
            if self.budget is not None
            else ""
        )
        return (
            f"this run committed {format_usd(self.cost_now)}; target {self.target}: "
            f"{format_usd(self.committed)} committed, {format_usd(self.spent)} spent{left}"
        )


def _spec_hash(spec: HitTypeSpec) -> str:
    return request_token("spec", spec.canonical())[:32]


def _hit_type_for(
    ledger: Ledger,
    backend: CrowdBackend,
    config: HitTypeConfig,
    quals: tuple[QualificationRequirement, ...],
    concept: str | None,
    items: int,
    cache: dict[str, str],
) -> str:
    fill = concept or "an object"

    def filled(text: str) -> str:
        return text.replace("{concept}", fill).replace("{items}", str(items))

    spec = HitTypeSpec(
        title=filled(config.title),
        description=filled(config.description),
        keywords=config.keywords,
        reward=config.reward,
        assignment_duration_s=config.assignment_duration_s,
        auto_approval_delay_s=config.auto_approval_delay_s,
        qualifications=quals,
    )
    key = _spec_hash(spec)
    if key in cache:
        return cache[key]
    # CreateHITType answers the same id for the same properties: asked once per run.
    hit_type_id = backend.create_hit_type(spec)
    with ledger.conn:
        ledger.conn.execute(
            "INSERT OR REPLACE INTO hit_types (target, spec_hash, hit_type_id, title, "
            "description, keywords, reward, assignment_duration_s, auto_approval_delay_s, "
            "qualifications, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                backend.target,
                key,
                hit_type_id,
                spec.title,
                spec.description,
                spec.keywords,
                str(spec.reward),
                spec.assignment_duration_s,
                spec.auto_approval_delay_s,
                json.dumps([q.to_api() for q in quals], sort_keys=True),
                utc_now(),
            ),
        )
    cache[key] = hit_type_id
    return hit_type_id


def stage_media(plan: HitPlan, media_dir: Path) -> int:
    """Put every file a HIT's page loads into ``media_dir`` (hard link, else copy).

    Item images go to ``<token>.jpg``; instruction examples keep their own names.

    Args:
        plan: The planned HIT.
        media_dir: The folder served to workers.

    Returns:
        Files written (0 when all were there).

    Raises:
        InputError: An item's image file is missing.
    """
    written = 0
    with_file = {f"{item.token}.jpg" for item in plan.items if item.local_path}
    for item in plan.items:
        if f"{item.token}.jpg" not in with_file:
            raise InputError(
                f"image {item.image_id}: the ledger has no image file for it; "
                "rerun 'turk ingest' with the images folder"
            )
    for media in plan.media:
        dest = media_dir / media.name
        if dest.exists():
            continue
        if not media.source.is_file():
            raise InputError(
                f"{media.source}: image file is missing (needed for HIT {plan.hit_key}); "
                "restore it or rerun 'turk ingest' with the images folder"
            )
        media_dir.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        partial.unlink(missing_ok=True)
        try:
            os.link(media.source, partial)
        except OSError:
            shutil.copyfile(media.source, partial)
        os.replace(partial, dest)
        written += 1
    return written


def hit_page(plan: HitPlan) -> HitPage:
    """Return a HIT's page as a batch server takes it: its batch's template and its row.

    Args:
        plan: The planned HIT.

    Returns:
        The bare fragment with ``${image_url_<k>}`` placeholders and the HIT's escaped
        values (:func:`turk.hits.batch.batch_templates`).

    Raises:
        TemplateError: The page cannot be made a safe template.
    """
    (template,) = batch_templates([plan])
    return HitPage(name=template.name, template=template.html, row=template.rows[0])


def _write_intents(
    ledger: Ledger, config: PublishConfig, todo: Sequence[HitPlan], target: str
) -> None:
    ht = config.hit_type
    cost = str(hit_cost(ht))
    now = utc_now()
    with ledger.conn:
        for plan in todo:
            values = (
                plan.batch_id,
                plan.task,
                plan.concept,
                plan.bucket,
                json.dumps(labels_of(plan)),
                str(ht.reward),
                ht.max_assignments,
                ht.max_total_assignments,
                ht.lifetime_s,
                ht.auto_approval_delay_s,
                cost,
                plan.question_xml,
                plan.language,
            )
            ledger.conn.execute(
                "INSERT OR IGNORE INTO hits (target, batch_id, hit_key, token, annotation, "
                "task, concept, bucket, labels, reward, max_assignments, "
                "max_total_assignments, lifetime_s, auto_approval_delay_s, cost, "
                "question_xml, language, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    target,
                    plan.batch_id,
                    plan.hit_key,
                    request_token(target, "hit", plan.hit_key),
                    annotation(plan.batch_id, plan.hit_key),
                    *values[1:],
                    now,
                ),
            )
            # An intent never sent may still take the current settings.
            ledger.conn.execute(
                "UPDATE hits SET batch_id=?, task=?, concept=?, bucket=?, labels=?, reward=?, "
                "max_assignments=?, max_total_assignments=?, lifetime_s=?, "
                "auto_approval_delay_s=?, cost=?, question_xml=?, language=? "
                "WHERE target=? AND hit_key=? AND sent_at IS NULL AND hit_id IS NULL",
                (*values, target, plan.hit_key),
            )
            ledger.conn.executemany(
                "INSERT OR IGNORE INTO hit_items (target, hit_key, position, field, image_id, "
                "concept, is_gold, expected, media_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        target,
                        plan.hit_key,
                        item.position,
                        item.field,
                        item.image_id,
                        item.concept,
                        int(item.is_gold),
                        item.expected,
                        item.token,
                    )
                    for item in plan.items
                ],
            )


def _record_hit(ledger: Ledger, target: str, hit_key: str, info: HitInfo) -> None:
    with ledger.conn:
        ledger.conn.execute(
            "UPDATE hits SET status='published', hit_id=?, hit_type_id=?, published_at=?, "
            "expires_at=?, hit_status=?, max_assignments=MAX(max_assignments, ?), "
            "assignments_available=?, assignments_pending=?, assignments_completed=?, "
            "error=NULL, sent_at=COALESCE(sent_at, ?) WHERE target=? AND hit_key=?",
            (
                info.hit_id,
                info.hit_type_id,
                utc_now(),
                iso(info.expiration),
                info.status,
                info.max_assignments,
                info.available,
                info.pending,
                info.completed,
                utc_now(),
                target,
                hit_key,
            ),
        )


def _scan_existing(backend: CrowdBackend, wanted: set[str]) -> dict[str, HitInfo]:
    """Find HITs turk created for ``wanted`` HIT keys, by their RequesterAnnotation."""
    found: dict[str, HitInfo] = {}
    for info in backend.list_hits():
        parsed = parse_annotation(info.annotation)
        if parsed and parsed[1] in wanted and info.status != "Disposed":
            found[parsed[1]] = info
            if len(found) == len(wanted):
                break
    return found


def execute_publish(
    ledger: Ledger,
    backend: CrowdBackend,
    prepared: PublishPlan,
    *,
    concurrency: int = 8,
    on_progress: Callable[[int], None] | None = None,
) -> PublishReport:
    """Publish what :func:`prepare_publish` found left to publish.

    The budget is checked again before every CreateHIT against everything committed on
    the target (read from the ledger when this starts, under the target's lock).

    Args:
        ledger: The open ledger.
        backend: The target's backend (the one ``prepared`` was made with).
        prepared: The reconciled, costed and (on production) confirmed publish.
        concurrency: HITs created in parallel (the backend's rate limit still holds).
        on_progress: Called with the number of HITs just settled.

    Returns:
        The :class:`PublishReport`. Failures are counted, not raised, unless nothing
        could be published at all.

    Raises:
        CrowdError: Every attempted HIT failed (e.g. the endpoint is down); the
            ledger keeps every intent for a rerun.
        BusyError: Another command holds the target's lock.
    """
    target = backend.target
    if target != prepared.target:
        raise CrowdError(f"publish prepared for {prepared.target} cannot run on {target}")
    with crowd_lock(ledger, target, "publish"):
        return _execute(ledger, backend, prepared, concurrency, on_progress)


def _execute(
    ledger: Ledger,
    backend: CrowdBackend,
    prepared: PublishPlan,
    concurrency: int,
    on_progress: Callable[[int], None] | None,
) -> PublishReport:
    target = backend.target
    report = PublishReport(target=target, planned=len(prepared.plans), budget=prepared.budget)
    report.already = len(prepared.hit_keys_done)
    report.reconciled = prepared.reconciled
    report.calls = dict(prepared.calls)
    before = dict(backend.stats.calls)
    guard = BudgetGuard.start(ledger, target, prepared.budget)
    report.spent = target_spend(ledger, target).spent

    def finish() -> PublishReport:
        report.cost_now = guard.taken
        report.committed = guard.committed
        report.hit_type_ids = sorted(set(type_cache.values()))
        for op, n in _calls_since(backend, before).items():
            report.calls[op] = report.calls.get(op, 0) + n
        return report

    type_cache: dict[str, str] = {}
    published = _published_keys(ledger, target)
    queue = [p for p in prepared.to_publish if p.hit_key not in published]
    if not queue:
        return finish()
    if prepared.config.qualifications.exclude_blocked:
        apply_worker_blocks(ledger, backend)
    quals = resolve_qualifications(ledger, backend, prepared.config.qualifications)
    _write_intents(ledger, prepared.config, queue, target)
    intents = {
        str(r["hit_key"]): r
        for r in rows(
            ledger.conn,
            "SELECT hit_key, token, annotation, max_assignments, lifetime_s, question_xml "
            "FROM hits WHERE target=? AND hit_id IS NULL",
            (target,),
        )
    }
    per_hit = prepared.per_hit
    stop_error: str | None = None
    counter_lock = threading.Lock()

    def send(plan: HitPlan, hit_type_id: str, page: HitPage | None) -> HitInfo:
        row = intents[plan.hit_key]
        try:
            return backend.create_hit(
                hit_type_id=hit_type_id,
                question_xml=str(row["question_xml"]),
                max_assignments=int(row["max_assignments"]),
                lifetime_s=int(row["lifetime_s"]),
                annotation=str(row["annotation"]),
                token=str(row["token"]),
                page=page,
            )
        except DuplicateRequestError as exc:
            with counter_lock:
                report.duplicates += 1
            if exc.existing_id:
                return backend.get_hit(exc.existing_id)
            found = _scan_existing(backend, {plan.hit_key})
            if plan.hit_key not in found:
                raise CrowdError(
                    f"{target}: HIT {plan.hit_key} was created by an earlier request but "
                    "cannot be found by its annotation; check the requester site"
                ) from exc
            return found[plan.hit_key]

    workers = max(1, concurrency)
    in_flight: dict[Future[HitInfo], HitPlan] = {}
    position = 0
    budget_stop = False
    fatal: Exception | None = None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while True:
            while (
                stop_error is None
                and fatal is None
                and not budget_stop
                and position < len(queue)
                and len(in_flight) < workers
            ):
                plan = queue[position]
                if not guard.fits(per_hit):
                    budget_stop = True
                    break
                try:
                    stage_media(plan, prepared.media_dir)
                    page = hit_page(plan) if target in PAGE_TARGETS else None
                    hit_type_id = _hit_type_for(
                        ledger,
                        backend,
                        prepared.config.hit_type,
                        quals,
                        plan.concept,
                        len(plan.items),
                        type_cache,
                    )
                # Any failure here: stop queuing, let the HITs in flight land in the ledger,
                # then raise it (below); nothing is swallowed.
                except Exception as exc:  # noqa: BLE001 (kept and re-raised after the wait)
                    fatal = exc
                    break
                guard.take(per_hit)
                # From here the HIT counts as committed in the ledger (sent, outcome unknown).
                with ledger.conn:
                    ledger.conn.execute(
                        "UPDATE hits SET sent_at=COALESCE(sent_at, ?), hit_type_id=? "
                        "WHERE target=? AND hit_key=?",
                        (utc_now(), hit_type_id, target, plan.hit_key),
                    )
                in_flight[pool.submit(send, plan, hit_type_id, page)] = plan
                position += 1
            if not in_flight:
                break
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in finished:
                plan = in_flight.pop(future)
                try:
                    info = future.result()
                except CrowdError as exc:
                    report.failed += 1
                    if len(report.errors) < 5:
                        report.errors.append(str(exc))
                    stop_error = stop_error or str(exc)
                    with ledger.conn:
                        ledger.conn.execute(
                            "UPDATE hits SET error=? WHERE target=? AND hit_key=?",
                            (str(exc), target, plan.hit_key),
                        )
                    continue
                _record_hit(ledger, target, plan.hit_key, info)
                report.published += 1
                if on_progress:
                    on_progress(1)
    if fatal is not None:
        raise fatal
    if stop_error is not None:
        report.not_sent_error = len(queue) - position
    else:
        report.not_sent_budget = len(queue) - position
    if stop_error is not None and report.published == 0 and report.reconciled == 0:
        raise CrowdError(f"{stop_error} (nothing published; every intent is kept, rerun)")
    return finish()


ConfirmPublish = Callable[[PublishPlan], bool]
"""Shown a production publish's plan (its ``describe()`` lines); answers whether to send."""

ProgressFactory = Callable[[str, int | None, str], AbstractContextManager[Callable[[int], None]]]
"""``(description, total, unit)`` -> a context yielding ``advance(n)`` (a progress bar)."""


def publish(
    ledger: Ledger,
    backend: CrowdBackend,
    plans: Sequence[HitPlan],
    config: PublishConfig,
    *,
    budget: Decimal | None = None,
    live: bool = False,
    confirm: ConfirmPublish | None = None,
    media_dir: Path | None = None,
    concurrency: int = 8,
    on_plan: Callable[[PublishPlan], None] | None = None,
    progress: ProgressFactory | None = None,
) -> PublishReport:
    """Publish planned HITs: lock, reconcile, price, confirm, send (the one entry point).

    Args:
        ledger: The open ledger.
        backend: The target's backend.
        plans: The validated plans (:func:`plan_for_publish`).
        config: The publish config.
        budget: Cap on everything committed on the target (:mod:`turk.crowd.spend`).
        live: Production was explicitly asked for.
        confirm: Asked before sending on production; None refuses production.
        media_dir: Where to write item images (default ``<ledger root>/media``).
        concurrency: HITs created in parallel.
        on_plan: Called with the reconciled, costed plan before anything is sent (to
            show the cost).
        progress: Progress bar factory, started with the HITs to send.

    Returns:
        The :class:`PublishReport`.

    Raises:
        MoneyError: A guard refused, or production was not confirmed.
        BusyError: Another command holds the target's lock.
    """
    target = backend.target
    with crowd_lock(ledger, target, "publish"):
        prepared = prepare_publish(
            ledger, backend, plans, config, budget=budget, live=live, media_dir=media_dir
        )
        if on_plan is not None:
            on_plan(prepared)
        if target == MTURK and prepared.affordable and (confirm is None or not confirm(prepared)):
            raise MoneyError("publish on production not confirmed; nothing was sent")
        bar = progress or _no_progress
        with bar("publish", prepared.affordable, "HITs") as advance:
            return execute_publish(
                ledger, backend, prepared, concurrency=concurrency, on_progress=advance
            )


@contextlib.contextmanager
def _no_progress(description: str, total: int | None, unit: str) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


def plan_for_publish(
    ledger: Ledger,
    backend: CrowdBackend,
    *,
    image_base: str | None = None,
    task: str = "binary",
    items_per_hit: int = 12,
    gold: Path | None = None,
    gold_rate: float = 0.1,
    seed: int = 0,
    instruction_set: str | Path | None = None,
    concepts: list[str] | None = None,
    buckets: list[int] | None = None,
    template_dir: Path | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> list[HitPlan]:
    """Plan the HITs for a target and validate each as MTurk would; call no service.

    Args:
        ledger: The open ledger.
        backend: The target's backend (its target and endpoint pick the image URLs).
        image_base: ``--image-base-url`` (required for the MTurk targets).
        task: See :func:`turk.hits.plan.plan_hits` for this and the remaining options.
        items_per_hit: Most images per HIT, gold included.
        gold: Gold CSV, or None.
        gold_rate: Share of gold items.
        seed: Planning seed.
        instruction_set: Instruction set name or folder.
        concepts: Only these concepts.
        buckets: Only these buckets.
        template_dir: Folder overriding the packaged templates.
        language: Language of the pages' own words (BCP 47 tag, e.g. ``zh-Hans``).

    Returns:
        The validated plans.
    """
    from turk.hits.plan import plan_hits
    from turk.hits.render import validate_plan

    plans = plan_hits(
        ledger,
        task=task,
        items_per_hit=items_per_hit,
        gold=gold,
        gold_rate=gold_rate,
        seed=seed,
        image_base_url=image_base_url(backend.target, backend.endpoint_url, image_base),
        instruction_set=instruction_set,
        concepts=concepts,
        buckets=buckets,
        template_dir=template_dir,
        language=language,
    )
    for plan in plans:
        validate_plan(plan)
    return plans
