"""Simulated workers: a population that takes and answers HITs over HTTP like a browser.

Each worker lists the HITs available to it, accepts one, opens the HIT page exactly as
the worker site frames it, reads the form (docs/design.md, "HIT HTML contract"),
downloads each item's image and recognises it only by the SHA-256 of its bytes among the
files of a truth file (``image,concept,file``). It then answers from the truth, subject
to its accuracy, or at random (spammers), or always yes (clickers), and posts the form
to ``/mturk/externalSubmit`` with its ``assignmentId``. Runs are deterministic for a seed.

Honest workers err the way real crowds do. Where a ``scenes.csv`` (``image,kind,...``,
written by ``turk sample``) lies beside the truth file, an item whose kind misleads
people (:data:`MISLEADING_KINDS`: hard negatives such as a poster of a bus, typographic
traps, small objects) is answered wrongly :data:`HARD_ERROR_FACTOR` times as often as a
plain one, up to :data:`HARD_ERROR_CAP`. These constants and :data:`CROWD_ACCURACY` come
from the real MTurk crowds of ``../shared/datasets/crowd`` (duck and dog, every item
with its truth), derived by ``scripts/crowd_constants.py``.
"""

from __future__ import annotations

import csv
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, unquote, urljoin, urlparse

import httpx

from turk.sandbox.errors import SandboxError

HONEST, SPAMMER, CLICKER = "honest", "spammer", "clicker"

CROWD_ACCURACY = (0.61, 0.84)
"""10th and 90th percentile of real honest workers' accuracy (duck and dog crowds, workers
with >= 20 answers and better than chance; median 0.73): the default accuracy range."""

HARD_ERROR_FACTOR = 2.2
"""How many times more often real workers err on the hardest fifth of items than on the
rest (duck 2.2, dog 3.3; the smaller is used)."""

HARD_ERROR_CAP = 0.64
"""Highest error rate of an honest worker on a misleading item: the real crowds' error on
their hardest fifth of items (duck 0.64, dog 0.66)."""

MISLEADING_KINDS = frozenset({"hard", "trap", "small"})
"""Kinds in ``scenes.csv`` that mislead people: hard negatives, typographic traps, small
objects."""

SCENES_FILE = "scenes.csv"
"""Side file beside a truth file naming each image's difficulty kind (``image,kind``)."""
_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
    "param",
}


@dataclass(frozen=True)
class TruthEntry:
    """What the truth file says about one image file."""

    image: str
    concept: str
    kind: str = ""


def load_truth(path: Path) -> dict[str, TruthEntry]:
    """Read a truth file and index its images by the SHA-256 of their bytes.

    Args:
        path: CSV with header ``image,concept,file`` (``file`` relative to its folder).

    The difficulty kinds of :data:`SCENES_FILE` beside it, when there, go with each entry.

    Returns:
        ``{sha256 hex: TruthEntry}``.

    Raises:
        SandboxError: Missing file, missing columns, or a listed image that cannot be read.
    """
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise SandboxError(f"{path}: cannot read the truth file ({exc.strerror})") from exc
    index: dict[str, TruthEntry] = {}
    kinds = _load_kinds(path.parent / SCENES_FILE)
    with handle:
        reader = csv.DictReader(handle)
        missing = {"image", "concept", "file"} - set(reader.fieldnames or [])
        if missing:
            raise SandboxError(
                f"{path}: line 1: missing column(s) {', '.join(sorted(missing))}; "
                "the header must be image,concept,file"
            )
        for line, row in enumerate(reader, start=2):
            file = path.parent / (row["file"] or "")
            try:
                digest = hashlib.sha256(file.read_bytes()).hexdigest()
            except OSError as exc:
                raise SandboxError(
                    f"{path}: line {line}: cannot read {file} ({exc.strerror}); fix the file column"
                ) from exc
            image = str(row["image"])
            entry = TruthEntry(image, str(row["concept"]).strip(), kinds.get(image, ""))
            index.setdefault(digest, entry)
    if not index:
        raise SandboxError(f"{path}: no images listed; add rows image,concept,file")
    return index


def _load_kinds(path: Path) -> dict[str, str]:
    """``{image: kind}`` from a scenes file; empty when there is none."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SandboxError(f"{path}: cannot read the scenes file ({exc.strerror})") from exc
    with handle:
        reader = csv.DictReader(handle)
        if not {"image", "kind"} <= set(reader.fieldnames or []):
            raise SandboxError(
                f"{path}: line 1: the header must start image,kind; fix or remove the file"
            )
        return {str(r["image"]): str(r["kind"] or "") for r in reader}


def error_rate(accuracy: float, kind: str) -> float:
    """Probability that an honest worker of ``accuracy`` answers an item of ``kind`` wrongly.

    Args:
        accuracy: The worker's accuracy on plain items.
        kind: The item's difficulty kind ("" when unknown).

    Returns:
        ``1 - accuracy``, times :data:`HARD_ERROR_FACTOR` (at most :data:`HARD_ERROR_CAP`,
        and never below the plain rate) for :data:`MISLEADING_KINDS`.
    """
    plain = 1.0 - accuracy
    if kind in MISLEADING_KINDS:
        return max(plain, min(HARD_ERROR_CAP, plain * HARD_ERROR_FACTOR))
    return plain


@dataclass
class HitForm:
    """What a worker reads from a HIT page."""

    task: str = ""
    concept: str = ""
    classes: list[str] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)  # (field, image src)
    hidden: list[tuple[str, str]] = field(default_factory=list)


class _FormReader(HTMLParser):
    """Reads the HIT HTML contract: task root, items with one image each, hidden fields."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form = HitForm()
        self._stack: list[str] = []
        self._item: str | None = None
        self._item_depth = 0
        self._item_img: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "data-task" in values and not self.form.task:
            self.form.task = values["data-task"]
            self.form.concept = values.get("data-concept", "")
            self.form.classes = [c for c in values.get("data-classes", "").split("|") if c]
        if "data-item" in values and self._item is None and tag not in _VOID:
            self._item = values["data-item"]
            self._item_depth = len(self._stack)
            self._item_img = None
        if tag == "img" and self._item is not None and self._item_img is None:
            self._item_img = values.get("src", "")
        hidden = tag == "input" and values.get("type", "").lower() == "hidden"
        if hidden and values.get("name") and values["name"] != self._item:
            self.form.hidden.append((values["name"], values.get("value", "")))
        if tag not in _VOID:
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or tag not in self._stack:
            return
        while self._stack:
            if self._stack.pop() == tag:
                break
        if self._item is not None and len(self._stack) <= self._item_depth:
            self.form.items.append((self._item, self._item_img or ""))
            self._item = None


def read_hit_form(html: str) -> HitForm:
    """Parse a HIT page per the HIT HTML contract.

    Args:
        html: The HTMLQuestion document.

    Returns:
        The task, its concept or classes, the items (field, image src) in page order and
        the hidden fields.
    """
    reader = _FormReader()
    reader.feed(html)
    reader.close()
    return reader.form


class _Links(HTMLParser):
    """Collects HIT ids (``tr.hit[data-hit-id]``) and iframe sources from worker pages."""

    def __init__(self) -> None:
        super().__init__()
        self.hit_ids: list[str] = []
        self.frames: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if values.get("data-hit-id"):
            self.hit_ids.append(values["data-hit-id"])
        if tag == "iframe" and values.get("src"):
            self.frames.append(values["src"])


def _links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser


@dataclass
class SimulatedWorker:
    """One member of the population."""

    worker_id: str
    kind: str
    accuracy: float
    answer_time: float
    done: int = 0


@dataclass
class WorkersResult:
    """Counts of one run of the population."""

    workers: int = 0
    accepted: int = 0
    submitted: int = 0
    refused: int = 0
    items_answered: int = 0
    items_correct: int = 0
    unknown_images: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    submitted_by_worker: dict[str, int] = field(default_factory=dict)


def make_population(
    n: int,
    seed: int,
    accuracy: tuple[float, float] = CROWD_ACCURACY,
    spammers: float = 0.0,
    clickers: float = 0.0,
    answer_time: tuple[float, float] = (0.0, 0.0),
) -> list[SimulatedWorker]:
    """Build a deterministic population.

    Args:
        n: Number of workers.
        seed: Seed: same seed, same ids, kinds and accuracies.
        accuracy: Range of honest workers' accuracy (probability of a correct answer).
        spammers: Share of workers answering at random.
        clickers: Share of workers answering yes to everything (first class in multi).
        answer_time: Range of seconds each worker spends on a HIT before submitting.

    Returns:
        The workers; ids are ``ASIM<seed>W<index>``.

    Raises:
        SandboxError: A share or range out of bounds.
    """
    if n < 1:
        raise SandboxError(f"--n {n}: need at least one worker")
    if not (0 <= spammers <= 1 and 0 <= clickers <= 1 and spammers + clickers <= 1):
        raise SandboxError("--spammers and --clickers are shares from 0 to 1 whose sum is <= 1")
    if not 0 <= accuracy[0] <= accuracy[1] <= 1:
        raise SandboxError(f"--accuracy {accuracy[0]}-{accuracy[1]}: need 0 <= LO <= HI <= 1")
    if not 0 <= answer_time[0] <= answer_time[1]:
        raise SandboxError(f"--answer-time {answer_time[0]}-{answer_time[1]}: need 0 <= LO <= HI")
    rng = random.Random(seed)
    n_spam, n_click = round(n * spammers), round(n * clickers)
    kinds = [SPAMMER] * n_spam + [CLICKER] * n_click + [HONEST] * (n - n_spam - n_click)
    rng.shuffle(kinds)
    return [
        SimulatedWorker(
            worker_id=f"ASIM{abs(seed)}W{index:04d}",
            kind=kind,
            accuracy=rng.uniform(*accuracy),
            answer_time=rng.uniform(*answer_time),
        )
        for index, kind in enumerate(kinds)
    ]


class _Session:
    """One population run against one sandbox URL."""

    def __init__(self, url: str, truth: dict[str, TruthEntry], rng: random.Random) -> None:
        self.base = url.rstrip("/")
        self.truth = truth
        self.rng = rng
        self.http = httpx.Client(timeout=30.0, follow_redirects=True)
        self.image_cache: dict[str, str | None] = {}

    def close(self) -> None:
        self.http.close()

    def _get(self, url: str, worker_id: str) -> httpx.Response:
        return self.http.get(url, params={"workerId": worker_id})

    def available(self, worker: SimulatedWorker) -> list[str]:
        response = self._get(f"{self.base}/worker", worker.worker_id)
        response.raise_for_status()
        return _links(response.text).hit_ids

    def image_digest(self, src: str, page_url: str) -> str | None:
        url = urljoin(page_url, src)
        if url in self.image_cache:
            return self.image_cache[url]
        parsed = urlparse(url)
        digest: str | None
        try:
            if parsed.scheme == "file":
                data = Path(unquote(parsed.path)).read_bytes()
            else:
                response = self.http.get(url)
                response.raise_for_status()
                data = response.content
            digest = hashlib.sha256(data).hexdigest()
        except (OSError, httpx.HTTPError):
            digest = None
        self.image_cache[url] = digest
        return digest

    def answer(
        self, worker: SimulatedWorker, form: HitForm, page_url: str, result: WorkersResult
    ) -> list[tuple[str, str]]:
        answers: list[tuple[str, str]] = []
        options = [*form.classes, "none"]
        for name, src in form.items:
            digest = self.image_digest(src, page_url) if src else None
            entry = self.truth.get(digest) if digest else None
            if entry is None:
                result.unknown_images += 1
            true_concept = entry.concept if entry else "none"
            kind = entry.kind if entry else ""
            if form.task == "binary":
                correct = "yes" if true_concept == form.concept else "no"
                if worker.kind == SPAMMER:
                    value = self.rng.choice(["yes", "no"])
                elif worker.kind == CLICKER:
                    value = "yes"
                elif self.rng.random() < 1.0 - error_rate(worker.accuracy, kind):
                    value = correct
                else:
                    value = "no" if correct == "yes" else "yes"
            else:
                correct = true_concept if true_concept in form.classes else "none"
                if worker.kind == SPAMMER:
                    value = self.rng.choice(options)
                elif worker.kind == CLICKER:
                    value = form.classes[0] if form.classes else "none"
                elif self.rng.random() < 1.0 - error_rate(worker.accuracy, kind):
                    value = correct
                else:
                    value = self.rng.choice([o for o in options if o != correct] or options)
            result.items_answered += 1
            result.items_correct += int(value == correct)
            answers.append((name, value))
        return answers

    def work_one(self, worker: SimulatedWorker, hit_id: str, result: WorkersResult) -> bool:
        """Accept, read, answer and submit one HIT; False when the site refused."""
        accepted = self.http.post(
            f"{self.base}/worker/hits/{hit_id}/accept", params={"workerId": worker.worker_id}
        )
        if accepted.status_code != 200:
            result.refused += 1
            return False
        result.accepted += 1
        frames = _links(accepted.text).frames
        if not frames:
            raise SandboxError(f"{accepted.url}: the work page has no HIT iframe")
        frame_url = urljoin(str(accepted.url), frames[0])
        query = parse_qs(urlparse(frame_url).query)
        assignment_id = query.get("assignmentId", [""])[0]
        submit_to = query.get("turkSubmitTo", [self.base])[0].rstrip("/")
        page = self.http.get(frame_url)
        page.raise_for_status()
        form = read_hit_form(page.text)
        if form.task not in ("binary", "multi") or not form.items:
            raise SandboxError(
                f"HIT {hit_id}: the page does not follow the HIT HTML contract "
                "(no data-task root or no data-item items)"
            )
        fields = [(k, v) for k, v in form.hidden if k != "assignmentId"]
        answered = {name for name, _ in form.items}
        fields = [(k, v) for k, v in fields if k not in answered]
        fields += self.answer(worker, form, frame_url, result)
        if worker.answer_time > 0:
            time.sleep(worker.answer_time)
        posted = self.http.post(
            f"{submit_to}/mturk/externalSubmit",
            data={"assignmentId": assignment_id, **dict(fields), "workerId": worker.worker_id},
        )
        if posted.status_code != 200:
            result.refused += 1
            return False
        result.submitted += 1
        result.submitted_by_worker[worker.worker_id] = (
            result.submitted_by_worker.get(worker.worker_id, 0) + 1
        )
        worker.done += 1
        return True


def run_workers(
    url: str,
    truth: Path,
    *,
    n: int = 10,
    seed: int = 0,
    accuracy: tuple[float, float] = CROWD_ACCURACY,
    spammers: float = 0.0,
    clickers: float = 0.0,
    answer_time: tuple[float, float] = (0.0, 0.0),
    max_hits: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> WorkersResult:
    """Let a simulated population work through the HITs available on a sandbox.

    Workers take turns (one HIT each per round, in id order) until none of them can take
    another HIT or each has done ``max_hits``.

    Args:
        url: Base URL of the sandbox (``turk sandbox serve`` prints it).
        truth: Truth file (``image,concept,file``), e.g. a sample collection's truth.csv.
        n: Number of workers.
        seed: Seed; the same seed on the same HITs gives the same answers.
        accuracy: Range of honest workers' accuracy.
        spammers: Share of workers answering at random.
        clickers: Share of workers answering yes to everything.
        answer_time: Range of seconds each worker spends per HIT.
        max_hits: Most HITs one worker submits; None for no limit.
        on_progress: Called with 1 after each submitted HIT.

    Returns:
        Counts: workers, accepted, submitted, refused, items answered and correct,
        unknown images, workers by kind, submissions by worker.

    Raises:
        SandboxError: Bad settings, unreadable truth file, unreachable sandbox, or a HIT
            page that does not follow the HIT HTML contract.
    """
    index = load_truth(Path(truth))
    population = make_population(n, seed, accuracy, spammers, clickers, answer_time)
    result = WorkersResult(workers=len(population))
    for worker in population:
        result.by_kind[worker.kind] = result.by_kind.get(worker.kind, 0) + 1
    session = _Session(url, index, random.Random(seed + 1))
    try:
        active = list(population)
        while active:
            still = []
            for worker in active:
                if max_hits is not None and worker.done >= max_hits:
                    continue
                worked = False
                for hit_id in session.available(worker):
                    if session.work_one(worker, hit_id, result):
                        worked = True
                        if on_progress is not None:
                            on_progress(1)
                        break
                if worked:
                    still.append(worker)
            active = still
    except httpx.HTTPError as exc:
        raise SandboxError(f"{url}: the sandbox did not answer ({exc}); is it running?") from exc
    finally:
        session.close()
    return result
