"""The project file, ``turk.yaml``: its schema, its defaults and its strict checks.

Every path in the file is relative to the file's folder. Loading checks the whole file
before anything runs: an unknown key (with the closest known key as a suggestion), a
value of the wrong type or out of range, a file that does not exist, or a budget that
cannot pay for one HIT raises :class:`~turk.errors.ConfigError` naming the file, the
line, the key and the fix. :func:`check_budget` compares the budget with what the
ledger has already published.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from retrieval.modelnames import DEFAULT_PRETRAINED, parse_pretrained
from turk.collection.buckets import DEFAULT_COUNT, DEFAULT_RESERVE
from turk.crowd.backend import (
    DEFAULT_LOCAL_ENDPOINT,
    LOCAL,
    SANDBOX_STATE_FILE,
    TARGETS,
    TURKLE,
    extend_refusal,
)
from turk.dataset.aggregators import AGGREGATORS, DEFAULT_AGGREGATOR
from turk.dataset.rules import RoundSettings
from turk.errors import ConfigError, MoneyError, TemplateError

PROJECT_FILE = "turk.yaml"
"""Name of the project file inside a project folder."""

BUCKET_SCHEMES = ("count", "by-year", "ranges")
DEVICES = ("auto", "cpu", "cuda")
TASKS = ("binary", "multi")
AUDIT_SOURCES = ("requester", "answers-file", "truth")

# -- the schema ------------------------------------------------------------------------
#
# Each section lists its keys; a key's value is the checker applied to it. The checkers
# know the dotted key (for messages) and never see raw YAML nodes.

_SCHEMA: dict[str, Any] = {
    "version": None,
    "ledger": None,
    "collection": {"metadata", "images", "filters"},
    "collection.filters": {"photos_only", "valid_date", "min_bytes", "min_edge", "max_aspect"},
    "buckets": {"scheme", "count", "ranges", "reserve"},
    "model": {"name", "pretrained", "device", "batch_size", "workers"},
    "embed": {"engine", "address", "actors", "out"},
    "concepts": None,
    "hits": {"task", "items_per_hit", "instructions", "templates", "seed", "language"},
    "hit_type": {
        "title",
        "description",
        "keywords",
        "reward",
        "assignment_duration",
        "auto_approval_delay",
        "lifetime",
        "max_assignments",
        "max_total_assignments",
    },
    "qualifications": {
        "locale",
        "approval_rate",
        "approved_hits",
        "require",
        "exclude",
        "exclude_blocked",
        "actions_guarded",
    },
    "budget": None,
    "crowd": {
        "target",
        "endpoint",
        "profile",
        "live",
        "image_base_url",
        "sandbox_state",
        "simulated_workers",
        "turkle",
    },
    "crowd.turkle": {"url", "token_env"},
    "crowd.simulated_workers": {"truth", "n", "seed", "accuracy", "spammers", "clickers"},
    "gold": {"file", "rate"},
    "review": {
        "min_gold",
        "min_accuracy",
        "approve_all",
        "block_after",
        "trusted",
        "bonus",
        "bonus_accuracy",
        "extend",
        "extend_step",
    },
    "certification": {"target", "confidence", "aggregator", "min_posterior", "audit"},
    "certification.audit": {"source", "file", "size", "seed"},
    "rounds": {"max_rounds", "min_yield", "fill_chance", "rerank", "min_labels"},
    "report": {"dir"},
    "export": {"dir", "link", "test_fraction"},
}
_TOP_KEYS = {k for k in _SCHEMA if "." not in k}


@dataclass(frozen=True)
class CollectionSettings:
    """Where the collection is and which rows to keep (``collection``).

    Attributes:
        metadata: YFCC100M metadata files or img2dataset folders.
        images: Folder of local image files named by photo id, or None.
        photos_only: Keep only photos (marker 0), as CLEAR did.
        valid_date: Drop rows whose date taken is after their upload time.
        min_bytes: Drop image files smaller than this, or None.
        min_edge: Drop images whose shorter side is below this many pixels, or None.
        max_aspect: Drop images whose long/short side ratio exceeds this, or None.
    """

    metadata: tuple[Path, ...]
    images: Path | None = None
    photos_only: bool = True
    valid_date: bool = False
    min_bytes: int | None = None
    min_edge: int | None = None
    max_aspect: float | None = None


@dataclass(frozen=True)
class BucketSettings:
    """The time bucket scheme (``buckets``).

    Attributes:
        scheme: ``count`` (equal-count buckets), ``by-year`` or ``ranges`` (a file).
        count: Buckets for the ``count`` scheme.
        ranges: CLEAR-style ranges file for the ``ranges`` scheme.
        reserve: Buckets kept unlabeled (pre-training only).
    """

    scheme: str = "count"
    count: int = DEFAULT_COUNT
    ranges: Path | None = None
    reserve: tuple[int, ...] = DEFAULT_RESERVE


@dataclass(frozen=True)
class ModelSettings:
    """The CLIP model (``model``).

    Attributes:
        name: open_clip model name, or the path of a model config JSON.
        pretrained: Pretrained tag or weights file path; None for random weights.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: Images per encoder call.
        workers: Image decoding processes.
    """

    name: str = "ViT-B-32"
    pretrained: str | None = "laion2b_s34b_b79k"
    device: str = "auto"
    batch_size: int = 256
    workers: int = 2

    def name_is_file(self) -> bool:
        """Whether ``name`` is a model config file rather than an open_clip name."""
        return self.name.endswith(".json")

    def pretrained_is_file(self) -> bool:
        """Whether ``pretrained`` is a weights file rather than a pretrained tag."""
        text = self.pretrained or ""
        return os.sep in text or Path(text).suffix in {".pt", ".pth", ".bin", ".safetensors"}


@dataclass(frozen=True)
class EmbedSettings:
    """Where ``turk embed`` runs and writes (``embed``; see docs/scale.md).

    Attributes:
        engine: ``local`` (this process) or ``ray`` (a Ray cluster; ``turk[ray]``).
        address: The Ray cluster (``auto``, ``ray://host:10001``), or None for
            Ray's default (``$RAY_ADDRESS``, a cluster started here with ``ray start``,
            else a new local cluster).
        actors: Ray actors (model copies) at once, or None for one per GPU / CPU.
        out: Folder or fsspec URL for the shards, or None for ``embeddings/`` beside
            the ledger.
    """

    engine: str = "local"
    address: str | None = None
    actors: int | None = None
    out: str | None = None


@dataclass(frozen=True)
class HitSettings:
    """How HITs are laid out (``hits``).

    Attributes:
        task: ``binary`` (one concept per HIT) or ``multi`` (all classes per image).
        items_per_hit: Most images per HIT, gold included.
        instructions: Instruction set folder or packaged set name.
        templates: Folder overriding the packaged HIT templates, or None.
        seed: Seed of item order and gold positions.
        language: BCP 47 tag of the language of the HIT pages' own words (``en``,
            ``zh-Hans``, or a ``strings/<code>.yaml`` of ``templates``).
    """

    task: str = "binary"
    items_per_hit: int = 12
    instructions: str = "instructions"
    templates: Path | None = None
    seed: int = 0
    language: str = "en"


QUALIFIED_ACCURACY = (0.85, 0.98)
"""Honest simulated workers' accuracy in a project: workers a qualification lets in.

The real crowds' unfiltered range (``turk.sandbox.workers.CROWD_ACCURACY``, 0.61-0.84,
what ``turk sandbox workers`` draws by default) fails a project's gold rule
(``review.min_accuracy`` 0.8) for nearly everyone, as unqualified MTurk workers would;
projects ask for an approval rate, and these are the workers it admits. Either way
workers err more on hard negatives, traps and small objects (``HARD_ERROR_FACTOR``).
"""


@dataclass(frozen=True)
class SimulatedWorkers:
    """Simulated workers on the local sandbox or Turkle (``crowd.simulated_workers``).

    Attributes:
        truth: Truth file (``image,concept,file``) they perceive images through.
        n: Number of workers.
        seed: Seed of their answers.
        accuracy: Range of honest workers' accuracy (default :data:`QUALIFIED_ACCURACY`).
        spammers: Share answering at random.
        clickers: Share answering yes to everything.
    """

    truth: Path
    n: int = 10
    seed: int = 0
    accuracy: tuple[float, float] = QUALIFIED_ACCURACY
    spammers: float = 0.0
    clickers: float = 0.0


@dataclass(frozen=True)
class CrowdSettings:
    """Where HITs go (``crowd``).

    Attributes:
        target: ``local``, ``turkle``, ``mturk-sandbox`` or ``mturk``.
        endpoint: Requester endpoint; for ``local`` the sandbox URL, for ``turkle`` the
            Turkle server's URL (``crowd.turkle.url``).
        profile: AWS profile, or None for the standard credential chain.
        live: Production allowed by the project (``turk run --live`` is needed too).
        image_base_url: Where the media folder is served (required for Amazon targets).
        sandbox_state: State file of the local sandbox ``turk run`` starts.
        simulated_workers: Simulated workers on the local sandbox or Turkle, or None.
        token_env: For ``turkle``: the environment variable holding the API token
            (None: ``TURKLE_TOKEN``). The token itself is never in the config.
    """

    target: str = "local"
    endpoint: str | None = DEFAULT_LOCAL_ENDPOINT
    profile: str | None = None
    live: bool = False
    image_base_url: str | None = None
    sandbox_state: Path | None = None
    simulated_workers: SimulatedWorkers | None = None
    token_env: str | None = None


@dataclass(frozen=True)
class GoldSettings:
    """Known-answer items mixed into HITs (``gold``).

    Attributes:
        file: Gold CSV (``image,concept,label``), or None for no gold.
        rate: Share of items that are gold.
    """

    file: Path | None = None
    rate: float = 0.1


@dataclass(frozen=True)
class ReviewSettings:
    """How collected work is judged (``review``); see :class:`turk.crowd.review.ReviewOptions`.

    Attributes:
        min_gold: Gold answers a worker needs before being judged.
        min_accuracy: Share of gold right needed to pass.
        approve_all: Approve all work the gold rule does not reject.
        block_after: Block workers after this many rejections, or None.
        trusted: Qualification granted to workers who pass, or None.
        bonus: Bonus per approved assignment of the best workers, or None.
        bonus_accuracy: Gold share right that earns the bonus.
        extend: Add assignments to HITs with uncertain items.
        extend_step: Assignments added per review.
    """

    min_gold: int = 3
    min_accuracy: float = 0.8
    approve_all: bool = True
    block_after: int | None = None
    trusted: str | None = None
    bonus: Decimal | None = None
    bonus_accuracy: float = 0.95
    extend: bool = False
    extend_step: int = 1


@dataclass(frozen=True)
class CertificationSettings:
    """The precision to certify and how it is audited (``certification``).

    Attributes:
        target: Precision to certify (CLEAR: 0.99).
        confidence: Confidence of the certificate.
        aggregator: Aggregation model (``ds``, ``majority``, ...).
        min_posterior: Posterior an item needs to be accepted into the dataset.
        audit_source: Who gives audit verdicts: ``requester`` (``turk audit``),
            ``answers-file`` (a CSV) or ``truth`` (a known truth file; samples only).
        audit_file: The answers or truth file for those sources.
        audit_size: Pooled audit sample size, or None to derive it.
        audit_seed: Seed of the audit sample.
    """

    target: float = 0.99
    confidence: float = 0.95
    aggregator: str = DEFAULT_AGGREGATOR
    min_posterior: float = 0.95
    audit_source: str = "requester"
    audit_file: Path | None = None
    audit_size: int | None = None
    audit_seed: int = 0


@dataclass(frozen=True)
class ProjectConfig:
    """A loaded and checked ``turk.yaml``.

    Attributes:
        path: The file.
        ledger: The ledger file.
        collection: Collection paths and filters.
        buckets: Time bucket scheme.
        model: CLIP model.
        concepts: Concepts file.
        embed: Where embedding runs and writes its shards.
        hits: HIT layout.
        hit_type: HIT type (title, reward, durations, assignments).
        qualifications: Worker requirements.
        budget: Cap on the cost of all HITs published on the target, or None.
        crowd: Target and endpoint.
        gold: Gold file and rate.
        review: Review rules.
        certification: Certification target and audit.
        report_dir: Folder of the report.
        export_dir: Folder of the exported dataset.
        export_link: How images are placed in the export (``hardlink``, ``symlink``,
            ``copy``).
        export_test_fraction: Share of each class and bucket kept for testing.
        rounds: How curation rounds fill the cells (:mod:`turk.dataset.rounds`).
        raw: The file's mapping as read, for fingerprints.
    """

    path: Path
    ledger: Path
    collection: CollectionSettings
    buckets: BucketSettings
    model: ModelSettings
    concepts: Path
    hits: HitSettings
    hit_type: Any
    qualifications: Any
    budget: Decimal | None
    crowd: CrowdSettings
    gold: GoldSettings
    review: ReviewSettings
    certification: CertificationSettings
    report_dir: Path
    export_dir: Path
    export_link: str = "hardlink"
    export_test_fraction: float = 0.33
    rounds: RoundSettings = field(default_factory=RoundSettings)
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The project folder (the file's folder)."""
        return self.path.parent

    @property
    def sandbox_state(self) -> Path:
        """State file of the local sandbox ``turk run`` starts when none is running."""
        return self.crowd.sandbox_state or (self.root / SANDBOX_STATE_FILE)

    def rel(self, path: Path) -> str:
        """Return ``path`` relative to the project folder when inside it, for messages."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


# -- reading ---------------------------------------------------------------------------


def find_project(start: str | os.PathLike[str] | None = None) -> Path:
    """Find ``turk.yaml`` in ``start`` (a file or folder) or the folders above it.

    Args:
        start: A project file, a folder, or None for the current folder.

    Returns:
        The project file.

    Raises:
        ConfigError: No project file found.
    """
    here = Path(start) if start is not None else Path.cwd()
    if here.is_file():
        return here
    if start is not None and here.suffix in {".yaml", ".yml"}:
        raise ConfigError(f"{here}: no such project file; run 'turk init DIR' to create one")
    for folder in [here, *here.resolve().parents]:
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"{here}: no {PROJECT_FILE} here or above; run 'turk init DIR' to create a "
        "project, or pass --project PATH"
    )


def _line_map(text: str) -> dict[str, int]:
    """Map dotted keys to their 1-based line in the YAML text."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}{key_node.value}"
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key + ".")

    if root is not None:
        walk(root, "")
    return lines


class _Reader:
    """Reads values out of the parsed file, raising errors that name file, line and key."""

    def __init__(self, path: Path, data: dict[str, Any], lines: dict[str, int]) -> None:
        self.file = path
        self.root = path.parent
        self.data = data
        self.lines = lines

    def fail(self, key: str, message: str) -> ConfigError:
        line, parent = self.lines.get(key), key
        while line is None and "." in parent:  # a missing key: point at its section
            parent = parent.rsplit(".", 1)[0]
            line = self.lines.get(parent)
        where = f"{self.file}: line {line}" if line else str(self.file)
        return ConfigError(f"{where}: {key}: {message}")

    def section(self, key: str) -> dict[str, Any]:
        value = _get(self.data, key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping of keys, got {_kind(value)}")
        return value

    def get(self, key: str) -> Any:
        return _get(self.data, key)

    def has(self, key: str) -> bool:
        return _get(self.data, key) is not None

    def string(self, key: str, default: str | None) -> str | None:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, f"expected text, got {_kind(value)}")
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int | None, low: int, high: int | None = None) -> Any:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"{low} to {high}" if high is not None else f"{low} or more"
            raise self.fail(key, f"{value} is out of range; use {bound}")
        return value

    def number(
        self, key: str, default: float | None, low: float, high: float, open_ends: bool = False
    ) -> Any:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, got {value!r}")
        inside = low < value < high if open_ends else low <= value <= high
        if not inside:
            how = "strictly between" if open_ends else "from"
            joint = "and" if open_ends else "to"
            raise self.fail(
                key, f"{value} is out of range; use a number {how} {low} {joint} {high}"
            )
        return float(value)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        assert value is not None
        if value not in choices:
            raise self.fail(
                key, f"{value!r} is not one of {', '.join(choices)}{_hint(value, choices)}"
            )
        return value

    def money(self, key: str, default: Decimal | None) -> Decimal | None:
        from turk.money import parse_amount

        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(key, f"expected an amount in USD such as 25.00, got {_kind(value)}")
        # YAML reads 0.05 as a float: go through its shortest repr, never binary fractions.
        try:
            return parse_amount(repr(value) if isinstance(value, float) else str(value), key)
        except MoneyError as exc:
            raise self.fail(key, f"{value!r} is not an amount in USD such as 25.00") from exc

    def path(self, key: str, default: str | None) -> Path | None:
        text = self.string(key, default)
        if text is None or text == "":
            return None
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else (self.root / path)

    def paths(self, key: str) -> tuple[Path, ...]:
        value = self.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"expected a file or a list of files, got {_kind(value)}")
        out = []
        for text in value:
            path = Path(os.path.expanduser(text))
            out.append(path if path.is_absolute() else self.root / path)
        return tuple(out)

    def names(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of names, got {_kind(value)}")
        return tuple(value)

    def duration(self, key: str, default: int) -> int:
        from turk.crowd.publish import parse_duration

        value = self.get(key)
        if value is None:
            return default
        try:
            return parse_duration(value, key)
        except ConfigError as exc:
            raise self.fail(
                key, f"{value!r} is not a duration; write seconds or e.g. 20m, 3d"
            ) from exc


def _get(data: dict[str, Any], key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _hint(word: str, choices: Iterator[str] | tuple[str, ...] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(reader: _Reader) -> None:
    for key in reader.data:
        if not isinstance(key, str) or key not in _TOP_KEYS:
            raise reader.fail(
                str(key), f"unknown key{_hint(str(key), _TOP_KEYS)}; see docs/tutorial.md"
            )
    for section, allowed in _SCHEMA.items():
        if allowed is None:
            continue
        value = reader.section(section)
        for key in value:
            if key not in allowed:
                raise reader.fail(
                    f"{section}.{key}",
                    f"unknown key{_hint(str(key), allowed)}; known keys of {section}: "
                    f"{', '.join(sorted(allowed))}",
                )


def load_project(path: str | os.PathLike[str], *, check_files: bool = True) -> ProjectConfig:
    """Read and check a project file.

    Args:
        path: The ``turk.yaml`` file.
        check_files: Require every named file and folder to exist (``turk doctor``
            passes false and reports them one by one with :func:`missing_files`).

    Returns:
        The checked :class:`ProjectConfig`; relative paths resolved against the file's
        folder.

    Raises:
        ConfigError: Unreadable file, bad YAML, an unknown key, a wrong type or range,
            a missing file, or a budget that cannot pay for one HIT.
    """
    from turk.crowd.publish import HitTypeConfig, QualificationConfig, hit_cost
    from turk.hits.instructions import available_sets

    file = Path(path).absolute()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: no such project file; run 'turk init DIR' to create one"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror}); check its permissions") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "bad syntax"
        raise ConfigError(f"{file}: {where}not valid YAML ({problem}); fix the file") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of keys at the top, got {_kind(data)}")
    r = _Reader(file, data, _line_map(text))
    _check_keys(r)
    version = r.integer("version", 1, 1, 1)
    del version

    metadata = r.paths("collection.metadata")
    if not metadata:
        raise r.fail(
            "collection.metadata",
            "missing; name the YFCC100M metadata file(s) of the collection",
        )
    collection = CollectionSettings(
        metadata=metadata,
        images=r.path("collection.images", None),
        photos_only=r.boolean("collection.filters.photos_only", True),
        valid_date=r.boolean("collection.filters.valid_date", False),
        min_bytes=r.integer("collection.filters.min_bytes", None, 0),
        min_edge=r.integer("collection.filters.min_edge", None, 0),
        max_aspect=r.number("collection.filters.max_aspect", None, 1.0, 1e9),
    )

    scheme = r.choice("buckets.scheme", "count", BUCKET_SCHEMES)
    buckets = BucketSettings(
        scheme=scheme,
        count=r.integer("buckets.count", 11, 1, 100_000),
        ranges=r.path("buckets.ranges", None),
        reserve=_reserve(r),
    )
    if scheme == "ranges" and buckets.ranges is None:
        raise r.fail("buckets.ranges", "missing; the ranges scheme needs a ranges file")
    if scheme != "ranges" and buckets.ranges is not None:
        raise r.fail(
            "buckets.ranges", f"given but buckets.scheme is {scheme!r}; set scheme: ranges"
        )

    model_section = r.section("model")
    raw_weights = model_section.get("pretrained", DEFAULT_PRETRAINED)
    no_weights = parse_pretrained(None if raw_weights is None else str(raw_weights)) is None
    model_name = r.string("model.name", "ViT-B-32") or "ViT-B-32"
    if model_name.endswith(".json"):
        model_name = str(r.path("model.name", None))
    model = ModelSettings(
        name=model_name,
        pretrained=None if no_weights else r.string("model.pretrained", "laion2b_s34b_b79k"),
        device=r.choice("model.device", "auto", DEVICES),
        batch_size=r.integer("model.batch_size", 256, 1, 65536),
        workers=r.integer("model.workers", 2, 0, 256),
    )
    if model.pretrained is not None and model.pretrained_is_file():
        model = _replace(model, pretrained=str(r.path("model.pretrained", None)))

    concepts = r.path("concepts", None)
    if concepts is None:
        raise r.fail("concepts", "missing; name the concepts file, e.g. concepts: concepts.yaml")

    instructions = r.string("hits.instructions", "instructions") or "instructions"
    folder = r.root / instructions
    if folder.is_dir() or instructions not in available_sets():
        instructions = str(folder)
    hits = HitSettings(
        task=r.choice("hits.task", "binary", TASKS),
        items_per_hit=r.integer("hits.items_per_hit", 12, 1, 500),
        instructions=instructions,
        templates=r.path("hits.templates", None),
        seed=r.integer("hits.seed", 0, 0),
        language=_language(r),
    )

    hit_type, qualifications = _hit_type(r, HitTypeConfig, QualificationConfig)
    budget = r.money("budget", None)
    if budget is not None and budget <= 0:
        raise r.fail("budget", f"{budget} must be more than 0; or remove it for no cap")

    crowd = _crowd(r)
    gold = GoldSettings(
        file=r.path("gold.file", None),
        rate=r.number("gold.rate", 0.1, 0.0, 0.5) if r.has("gold.file") else 0.0,
    )
    bonus = r.money("review.bonus", None)
    review = ReviewSettings(
        min_gold=r.integer("review.min_gold", 3, 1),
        min_accuracy=r.number("review.min_accuracy", 0.8, 0.0, 1.0),
        approve_all=r.boolean("review.approve_all", True),
        block_after=r.integer("review.block_after", None, 1),
        trusted=r.string("review.trusted", None),
        bonus=bonus,
        bonus_accuracy=r.number("review.bonus_accuracy", 0.95, 0.0, 1.0),
        extend=r.boolean("review.extend", False),
        extend_step=r.integer("review.extend_step", 1, 1, 1000),
    )
    if bonus is not None and bonus <= 0:
        raise r.fail("review.bonus", f"{bonus} must be more than 0; or remove it for no bonus")
    refusal = extend_refusal(crowd.target) if review.extend else None
    if refusal is not None:
        raise r.fail("review.extend", f"{refusal}, and remove review.extend")
    audit_source = r.choice("certification.audit.source", "requester", AUDIT_SOURCES)
    certification = CertificationSettings(
        target=r.number("certification.target", 0.99, 0.0, 1.0, open_ends=True),
        confidence=r.number("certification.confidence", 0.95, 0.0, 1.0, open_ends=True),
        aggregator=r.choice("certification.aggregator", DEFAULT_AGGREGATOR, tuple(AGGREGATORS)),
        min_posterior=r.number("certification.min_posterior", 0.95, 0.5, 1.0, open_ends=True),
        audit_source=audit_source,
        audit_file=r.path("certification.audit.file", None),
        audit_size=r.integer("certification.audit.size", None, 1),
        audit_seed=r.integer("certification.audit.seed", 0, 0),
    )
    if audit_source != "requester" and certification.audit_file is None:
        raise r.fail(
            "certification.audit.file",
            f"missing; audit source {audit_source!r} reads its verdicts from a file",
        )
    config = ProjectConfig(
        path=file,
        ledger=r.path("ledger", "turk.db") or file.parent / "turk.db",
        collection=collection,
        buckets=buckets,
        model=model,
        concepts=concepts,
        hits=hits,
        hit_type=hit_type,
        qualifications=qualifications,
        budget=budget,
        crowd=crowd,
        gold=gold,
        review=review,
        certification=certification,
        report_dir=r.path("report.dir", "report") or file.parent / "report",
        export_dir=r.path("export.dir", "dataset") or file.parent / "dataset",
        export_link=r.choice("export.link", "hardlink", ("hardlink", "symlink", "copy")),
        export_test_fraction=r.number("export.test_fraction", 0.33, 0.0, 0.9),
        rounds=_rounds(r),
        embed=_embed(r),
        raw=data,
    )
    if budget is not None:
        per_hit = hit_cost(hit_type)
        if budget < per_hit:
            raise r.fail(
                "budget",
                f"${budget} cannot pay for one HIT (${per_hit} with fees for "
                f"{hit_type.max_assignments} assignments at ${hit_type.reward}); raise "
                "budget or lower hit_type.reward / hit_type.max_assignments",
            )
    if check_files:
        for key, missing in missing_files(config):
            raise r.fail(key, f"{config.rel(missing)} does not exist; create it or fix the path")
    return config


def _embed(r: _Reader) -> EmbedSettings:
    from turk.candidates.embed import ENGINES

    engine = r.choice("embed.engine", "local", ENGINES)
    address = r.string("embed.address", None)
    actors = r.integer("embed.actors", None, 1, 100_000)
    if engine != "ray":
        for key, value in (("embed.address", address), ("embed.actors", actors)):
            if value is not None:
                raise r.fail(key, "applies to the ray engine only; set embed.engine: ray")
    out = r.string("embed.out", None)
    if out is not None and "://" not in out:
        out = str(r.path("embed.out", None))
    return EmbedSettings(engine=engine, address=address, actors=actors, out=out)


def _rounds(r: _Reader) -> RoundSettings:
    d = RoundSettings()
    return RoundSettings(
        max_rounds=r.integer("rounds.max_rounds", d.max_rounds, 1, 100),
        min_yield=r.number("rounds.min_yield", d.min_yield, 0.0, 1.0),
        fill_chance=r.number("rounds.fill_chance", d.fill_chance, 0.5, 1.0, open_ends=True),
        rerank=r.boolean("rounds.rerank", d.rerank),
        min_labels=r.integer("rounds.min_labels", d.min_labels, 1, 10_000),
    )


def _replace(model: ModelSettings, **changes: Any) -> ModelSettings:
    from dataclasses import replace

    return replace(model, **changes)


def _language(r: _Reader) -> str:
    """``hits.language``: a language with a complete strings catalogue, as its file spells it."""
    from turk.hits.language import DEFAULT_LANGUAGE, load_strings

    key = "hits.language"
    language = r.string(key, DEFAULT_LANGUAGE) or DEFAULT_LANGUAGE
    try:
        return load_strings(language, r.path("hits.templates", None), option=key).language
    except (ConfigError, TemplateError) as exc:
        raise r.fail(key, str(exc).removeprefix(f"{key}: ")) from None


def _reserve(r: _Reader) -> tuple[int, ...]:
    value = r.get("buckets.reserve")
    if value is None:
        return DEFAULT_RESERVE if "reserve" not in r.section("buckets") else ()
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise r.fail("buckets.reserve", f"expected a list of bucket numbers, got {_kind(value)}")
    return tuple(sorted(set(value)))


def _hit_type(r: _Reader, hit_type_cls: Callable[..., Any], qual_cls: Callable[..., Any]) -> Any:
    from turk.crowd.hit_type import check_hit_type, default_total_assignments

    d = hit_type_cls()
    reward = r.money("hit_type.reward", d.reward)
    assert reward is not None
    n = r.integer("hit_type.max_assignments", d.max_assignments, 1, 1000)
    total = r.integer("hit_type.max_total_assignments", default_total_assignments(n), 1, 1000)
    keywords = r.get("hit_type.keywords")
    if isinstance(keywords, list):
        keywords = ", ".join(str(k) for k in keywords)
    elif keywords is not None and not isinstance(keywords, str):
        raise r.fail("hit_type.keywords", f"expected text or a list, got {_kind(keywords)}")
    durations = {
        "assignment_duration": r.duration("hit_type.assignment_duration", d.assignment_duration_s),
        "lifetime": r.duration("hit_type.lifetime", d.lifetime_s),
        "auto_approval_delay": r.duration("hit_type.auto_approval_delay", d.auto_approval_delay_s),
    }
    guard = r.string("qualifications.actions_guarded", "Accept") or "Accept"

    def key_of(name: str) -> str:
        return f"{'qualifications' if name == 'actions_guarded' else 'hit_type'}.{name}"

    check_hit_type(
        reward=reward,
        max_assignments=n,
        max_total_assignments=total,
        durations=durations,
        actions_guarded=guard,
        name=key_of,
        fail=lambda name, message: r.fail(key_of(name), message),
    )
    hit_type = hit_type_cls(
        title=r.string("hit_type.title", d.title),
        description=r.string("hit_type.description", d.description),
        keywords=keywords if keywords is not None else d.keywords,
        reward=reward,
        assignment_duration_s=durations["assignment_duration"],
        auto_approval_delay_s=durations["auto_approval_delay"],
        lifetime_s=durations["lifetime"],
        max_assignments=n,
        max_total_assignments=total,
    )
    quals = qual_cls(
        locales=tuple(c.upper() for c in r.names("qualifications.locale")),
        min_approval_rate=r.integer("qualifications.approval_rate", None, 0, 100),
        min_approved_hits=r.integer("qualifications.approved_hits", None, 0),
        require=r.names("qualifications.require"),
        exclude=r.names("qualifications.exclude"),
        exclude_blocked=r.boolean("qualifications.exclude_blocked", True),
        actions_guarded=guard,
    )
    return hit_type, quals


def _crowd(r: _Reader) -> CrowdSettings:
    target = r.choice("crowd.target", "local", TARGETS)
    endpoint = r.string("crowd.endpoint", DEFAULT_LOCAL_ENDPOINT if target == "local" else None)
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise r.fail(
            "crowd.endpoint", f"{endpoint!r} is not a URL; write e.g. {DEFAULT_LOCAL_ENDPOINT}"
        )
    token_env = None
    if target == TURKLE:
        endpoint = r.string("crowd.turkle.url", None) or endpoint
        if endpoint is None or not endpoint.startswith(("http://", "https://")):
            raise r.fail(
                "crowd.turkle.url",
                "missing or not a URL; write the Turkle server's address, e.g. "
                "http://127.0.0.1:8770 ('turk turkle serve' prints it)",
            )
        token_env = r.string("crowd.turkle.token_env", None)
    elif r.has("crowd.turkle"):
        raise r.fail("crowd.turkle", f"only means something for target turkle, not {target!r}")
    live = r.boolean("crowd.live", False)
    if live and target != "mturk":
        raise r.fail(
            "crowd.live", f"only means something for target mturk, not {target!r}; remove it"
        )
    base = r.string("crowd.image_base_url", None)
    if target not in (LOCAL, TURKLE) and base is None:
        raise r.fail(
            "crowd.image_base_url",
            f"missing; target {target} loads images from a public https URL where the "
            "ledger's media/ folder is synced (see docs/mturk.md)",
        )
    if base is not None and target not in (LOCAL, TURKLE) and not base.startswith("https://"):
        raise r.fail("crowd.image_base_url", f"{base!r}: MTurk pages load only https images")
    workers = None
    if r.has("crowd.simulated_workers"):
        if target not in (LOCAL, TURKLE):
            raise r.fail(
                "crowd.simulated_workers",
                f"simulated workers answer only on the local sandbox or Turkle, not {target}; "
                "remove it",
            )
        truth = r.path("crowd.simulated_workers.truth", None)
        if truth is None:
            raise r.fail(
                "crowd.simulated_workers.truth", "missing; name the truth file (image,concept,file)"
            )
        accuracy = r.get("crowd.simulated_workers.accuracy")
        acc = QUALIFIED_ACCURACY
        if accuracy is not None:
            ok = (
                isinstance(accuracy, list)
                and len(accuracy) == 2
                and all(isinstance(a, int | float) and not isinstance(a, bool) for a in accuracy)
                and 0 <= accuracy[0] <= accuracy[1] <= 1
            )
            if not ok:
                raise r.fail(
                    "crowd.simulated_workers.accuracy", "expected [low, high] within 0 to 1"
                )
            acc = (float(accuracy[0]), float(accuracy[1]))
        workers = SimulatedWorkers(
            truth=truth,
            n=r.integer("crowd.simulated_workers.n", 10, 1, 10_000),
            seed=r.integer("crowd.simulated_workers.seed", 0, 0),
            accuracy=acc,
            spammers=r.number("crowd.simulated_workers.spammers", 0.0, 0.0, 1.0),
            clickers=r.number("crowd.simulated_workers.clickers", 0.0, 0.0, 1.0),
        )
    return CrowdSettings(
        target=target,
        endpoint=endpoint,
        profile=r.string("crowd.profile", None),
        live=live,
        image_base_url=base,
        sandbox_state=r.path("crowd.sandbox_state", None),
        simulated_workers=workers,
        token_env=token_env,
    )


def missing_files(config: ProjectConfig) -> list[tuple[str, Path]]:
    """List the files and folders the project names that do not exist.

    Args:
        config: The loaded project.

    Returns:
        ``(dotted key, path)`` for each missing one, in file order.
    """
    wanted: list[tuple[str, Path | None, bool]] = [
        *[("collection.metadata", p, False) for p in config.collection.metadata],
        ("collection.images", config.collection.images, True),
        ("buckets.ranges", config.buckets.ranges, False),
        ("concepts", config.concepts, False),
        ("hits.templates", config.hits.templates, True),
        ("gold.file", config.gold.file, False),
        ("certification.audit.file", config.certification.audit_file, False),
    ]
    if config.model.name_is_file():
        wanted.append(("model.name", Path(config.model.name), False))
    if config.model.pretrained is not None and config.model.pretrained_is_file():
        wanted.append(("model.pretrained", Path(config.model.pretrained), False))
    if config.crowd.simulated_workers is not None:
        wanted.append(
            ("crowd.simulated_workers.truth", config.crowd.simulated_workers.truth, False)
        )
    instructions = Path(config.hits.instructions)
    if instructions.is_absolute():
        wanted.append(("hits.instructions", instructions, True))
    out = []
    for key, path, folder in wanted:
        if path is None:
            continue
        if not (path.is_dir() if folder else path.exists()):
            out.append((key, path))
    return out


def check_budget(config: ProjectConfig, published_cost: Decimal) -> None:
    """Check that the budget covers what the ledger has already published.

    Args:
        config: The project.
        published_cost: Cost of the HITs already published on the target, fees included.

    Raises:
        ConfigError: The budget is below the published cost.
    """
    if config.budget is not None and config.budget < published_cost:
        raise ConfigError(
            f"{config.path}: budget: ${config.budget} is lower than the ${published_cost} "
            f"already committed on target {config.crowd.target}; raise budget to at "
            f"least {published_cost}"
        )
