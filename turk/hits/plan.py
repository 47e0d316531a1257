"""Plan HITs: ranked candidates plus gold items, cut into batches and HITs, rendered.

Planning is deterministic: the same candidates, gold file, options and seed give the
same HITs, the same items in the same positions and the same keys, so ``publish`` can
be rerun after any crash and recognise what it already sent.

- *binary* batches: one per concept and bucket, over the concept's ``positive``
  candidates of curation round 1; each HIT asks about one concept. A later round's
  candidates make one batch per concept across buckets (``binary-<concept>-r<N>``).
- *multi* batches: one per bucket, over every candidate of the bucket (positives of
  the chosen concepts and the background picks, each image once); each image is shown
  with every class name.

Gold (known-answer) items are mixed in at ``gold_rate`` of all items, at random
positions, in an order that alternates yes and no answers for binary HITs (so an
always-yes clicker fails). A HIT's image URLs are ``<base>/<token>.jpg`` with an opaque
token (HMAC-SHA256 of ``<hit_key>|<position>`` with the ledger's secret): nothing in the
HTML, field names, order or URLs tells gold from regular items. Reserved buckets are
never planned.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jinja2

from turk.candidates.tables import candidate_rows
from turk.collection.tables import bucket_ids, image_files
from turk.errors import ConfigError, InputError, StageError
from turk.hits.html import environment, media_url, render_hit
from turk.hits.instructions import Instruction, load_instruction_set, resolve_set
from turk.hits.language import DEFAULT_LANGUAGE, Strings, load_strings
from turk.ledger import Ledger

TASKS = ("binary", "multi")
"""HIT kinds: one concept yes/no per image, or pick-all-that-apply over the classes."""

MAX_GOLD_RATE = 0.5
"""Highest share of gold items accepted (above it a HIT would be mostly known answers)."""

NONE_LABEL = "none"
"""Multi-select answer when an image shows none of the classes."""


@dataclass(frozen=True)
class HitItem:
    """One image slot of a HIT.

    Attributes:
        position: 0-based position in the HIT's page order.
        field: The form field name, ``item-<position>``.
        image_id: The image (``images.id``).
        concept: The concept asked about (binary), None for multi-select.
        is_gold: True for a known-answer item.
        expected: The known answer of a gold item (``yes``/``no``; for multi-select the
            ``|``-joined classes or ``none``), else None.
        token: Opaque name of the image for this HIT (URL ``<base>/<token>.jpg``).
        local_path: The image file, or None when the ledger has none.
    """

    position: int
    field: str
    image_id: int
    concept: str | None
    is_gold: bool
    expected: str | None
    token: str
    local_path: str | None


@dataclass(frozen=True)
class MediaFile:
    """A file a HIT's page loads from the media folder.

    Attributes:
        name: File name under the image base URL (``<token>.jpg`` or ``ex-<hash>.svg``).
        source: The file to host under that name.
    """

    name: str
    source: Path


@dataclass(frozen=True)
class HitPlan:
    """One HIT, ready to publish.

    Attributes:
        hit_key: Stable key, ``<batch_id>-<index:04d>``; unique in the ledger.
        batch_id: ``<task>-<concept slug>-b<bucket>-<digest>`` (binary) or
            ``multi-b<bucket>-<digest>``; the digest covers the batch's inputs, so a
            batch planned from other candidates, gold, options or language gets
            other keys.
        task: ``binary`` or ``multi``.
        concept: The concept asked about (binary), else None.
        bucket: The time bucket; None for a later curation round's HIT, which asks
            about the concept in several buckets.
        items: The image slots in page order.
        question_xml: HTMLQuestion XML to send as ``Question``.
        html: The complete HTML document inside ``question_xml``.
        fragment: The bare HTML fragment for annotation servers with their own form.
        classes: Class names offered (multi-select), else empty.
        media: Every file the page loads from the image base URL (items, examples).
        language: BCP 47 tag of the language the page's own words are in.
    """

    hit_key: str
    batch_id: str
    task: Literal["binary", "multi"]
    concept: str | None
    bucket: int | None
    items: tuple[HitItem, ...]
    question_xml: str
    html: str
    fragment: str
    classes: tuple[str, ...]
    media: tuple[MediaFile, ...]
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class GoldRow:
    """One line of a gold CSV (``image,concept,label``).

    Attributes:
        image_id: The image.
        concept: The concept the label is about (may be empty for class-name labels).
        label: ``yes``/``no``, or a class name / ``none`` naming the image's class.
        line: Line number in the file, for messages.
    """

    image_id: int
    concept: str
    label: str
    line: int


@dataclass(frozen=True)
class _Candidate:
    concept: str
    bucket: int
    image_id: int
    rank: int
    role: str
    local_path: str | None
    round: int = 1


def load_gold(path: Path) -> list[GoldRow]:
    """Read a gold CSV with header ``image,concept,label``.

    ``label`` is ``yes``/``no`` (is the image an example of ``concept``?) or, for
    multi-select, the image's class name or ``none``.

    Args:
        path: The CSV file.

    Returns:
        The rows in file order.

    Raises:
        InputError: The file is missing, lacks a column, or a row has a bad image id, an
            empty label, or contradicts an earlier row (message names file and line).
    """
    if not path.is_file():
        raise InputError(f"{path}: gold file not found; pass --gold with a CSV file")
    rows: list[GoldRow] = []
    seen: dict[tuple[int, str], GoldRow] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "concept", "label"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(
                f"{path}: line 1: missing column(s) {', '.join(sorted(missing))}; "
                "the header must be image,concept,label"
            )
        for record in reader:
            line = reader.line_num
            raw_id = (record.get("image") or "").strip()
            try:
                image_id = int(raw_id)
            except ValueError:
                raise InputError(
                    f"{path}: line {line}: image {raw_id!r} is not an image id"
                ) from None
            concept = (record.get("concept") or "").strip()
            label = (record.get("label") or "").strip()
            if label.lower() in {"yes", "no", NONE_LABEL}:
                label = label.lower()
            if not label:
                raise InputError(f"{path}: line {line}: empty label; use yes, no, a class or none")
            if label in {"yes", "no"} and not concept:
                raise InputError(f"{path}: line {line}: label {label!r} needs a concept")
            row = GoldRow(image_id, concept, label, line)
            if label in {"yes", "no"}:
                earlier = seen.get((image_id, concept))
                if earlier is not None and earlier.label != label:
                    raise InputError(
                        f"{path}: line {line}: image {image_id} is {label!r} for {concept!r} "
                        f"but line {earlier.line} says {earlier.label!r}; keep one"
                    )
                seen[(image_id, concept)] = row
            rows.append(row)
    return rows


def binary_gold(rows: Iterable[GoldRow], concept: str) -> dict[int, str]:
    """Known ``yes``/``no`` answers for one concept.

    Args:
        rows: Gold rows.
        concept: The concept asked about.

    Returns:
        ``{image_id: "yes" | "no"}``; a class-name label counts as ``yes`` for its own
        class and ``no`` for every other.
    """
    answers: dict[int, str] = {}
    classes: dict[int, set[str]] = {}
    for row in rows:
        if row.label in {"yes", "no"}:
            if row.concept == concept:
                answers[row.image_id] = row.label
        else:
            classes.setdefault(row.image_id, set()).add(row.label)
    for image_id, labels in classes.items():
        answers.setdefault(image_id, "yes" if concept in labels else "no")
    return answers


def multi_gold(rows: Iterable[GoldRow], classes: Sequence[str]) -> dict[int, str]:
    """Known multi-select answers over ``classes``.

    Args:
        rows: Gold rows.
        classes: Class names offered.

    Returns:
        ``{image_id: "a|b" | "none"}``. Class-name labels give the answer directly;
        from yes/no rows an image with a ``yes`` for an offered class gets those
        classes, and one with ``no`` for every class gets ``none``; images whose answer
        cannot be told are left out.
    """
    offered = list(classes)
    named: dict[int, set[str]] = {}
    yes: dict[int, set[str]] = {}
    no: dict[int, set[str]] = {}
    for row in rows:
        if row.label == "yes":
            yes.setdefault(row.image_id, set()).add(row.concept)
        elif row.label == "no":
            no.setdefault(row.image_id, set()).add(row.concept)
        else:
            named.setdefault(row.image_id, set()).add(row.label)
    answers: dict[int, str] = {}
    for image_id in sorted({*named, *yes, *no}):
        if image_id in named:
            chosen = [c for c in offered if c in named[image_id]]
            answers[image_id] = "|".join(chosen) or NONE_LABEL
        elif image_id in yes:
            chosen = [c for c in offered if c in yes[image_id]]
            if chosen:
                answers[image_id] = "|".join(chosen)
        elif set(offered) <= no.get(image_id, set()):
            answers[image_id] = NONE_LABEL
    return answers


def hit_secret(ledger: Ledger) -> bytes:
    """Return the ledger's secret for opaque image tokens.

    Args:
        ledger: The open ledger.

    Returns:
        The secret bytes.
    """
    row = ledger.conn.execute("SELECT secret FROM hit_secret WHERE id = 1").fetchone()
    return bytes.fromhex(row[0])


def image_token(secret: bytes, hit_key: str, position: int) -> str:
    """Return the opaque name of the image at ``position`` of HIT ``hit_key``.

    Args:
        secret: The ledger's secret (:func:`hit_secret`).
        hit_key: The HIT's key.
        position: 0-based position in the HIT.

    Returns:
        32 hex characters of HMAC-SHA256 over ``<hit_key>|<position>``.
    """
    message = f"{hit_key}|{position}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def _load_candidates(ledger: Ledger) -> list[_Candidate]:
    reserved = set(bucket_ids(ledger, reserved=True))
    rows = candidate_rows(ledger)
    rows = rows[~rows["bucket"].isin(reserved)]
    paths = image_files(ledger, rows["image_id"].tolist())
    out = [
        _Candidate(
            str(concept),
            int(bucket),
            int(image_id),
            int(rank),
            str(role),
            paths.get(int(image_id)),
            int(sent_in),
        )
        for concept, bucket, image_id, rank, role, sent_in in rows[
            ["concept", "bucket", "image_id", "rank", "role", "round"]
        ].itertuples(index=False)
    ]
    if not out:
        raise StageError(
            f"{ledger.path}: no ranked candidates outside reserved buckets; "
            "run 'turk rank CONCEPTS.yaml' first"
        )
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24] or "concept"


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class _GoldDealer:
    """Deals gold items in shuffled rounds, alternating between answer pools."""

    def __init__(self, pools: list[list[tuple[int, str]]], rng: random.Random) -> None:
        self.pools = [sorted(p) for p in pools if p]
        self.queues: list[list[tuple[int, str]]] = [[] for _ in self.pools]
        self.rng = rng
        self.turn = rng.randrange(len(self.pools)) if self.pools else 0

    def draw(self, exclude: set[int]) -> tuple[int, str] | None:
        for _ in range(len(self.pools)):
            k = self.turn % len(self.pools)
            self.turn += 1
            queue = self.queues[k]
            for _refill in range(2):
                for i, (image_id, expected) in enumerate(queue):
                    if image_id not in exclude:
                        del queue[i]
                        return image_id, expected
                fresh = list(self.pools[k])
                self.rng.shuffle(fresh)
                queue.extend(fresh)
        return None


def _layout(
    regular: list[_Candidate],
    gold_pools: list[list[tuple[int, str]]],
    gold_rate: float,
    items_per_hit: int,
    rng: random.Random,
    where: str,
) -> list[list[tuple[int, bool, str | None, str | None]]]:
    """Cut one batch into HITs: ``(image_id, is_gold, expected, local_path)`` per slot."""
    total_gold_pool = len({image_id for pool in gold_pools for image_id, _ in pool})
    n_regular = len(regular)
    n_gold = 0
    if total_gold_pool and gold_rate > 0:
        n_gold = math.floor(n_regular * gold_rate / (1 - gold_rate) + 0.5)
    total = n_regular + n_gold
    if total == 0:
        return []
    n_hits = math.ceil(total / items_per_hit)
    sizes = [total // n_hits + (1 if i < total % n_hits else 0) for i in range(n_hits)]
    gold_counts = [n_gold // n_hits] * n_hits
    for i in rng.sample(range(n_hits), n_gold % n_hits):
        gold_counts[i] += 1
    if n_gold and max(gold_counts) > total_gold_pool:
        raise InputError(
            f"{where}: {total_gold_pool} gold image(s) but a HIT needs {max(gold_counts)} "
            "different ones; add gold rows or lower --gold-rate"
        )
    dealer = _GoldDealer(gold_pools, rng)
    hits: list[list[tuple[int, bool, str | None, str | None]]] = []
    cursor = 0
    for size, n_gold_here in zip(sizes, gold_counts, strict=True):
        chunk = regular[cursor : cursor + size - n_gold_here]
        cursor += len(chunk)
        in_hit = {c.image_id for c in chunk}
        gold_slots = set(rng.sample(range(size), n_gold_here))
        slots: list[tuple[int, bool, str | None, str | None]] = []
        chunk_iter = iter(chunk)
        for position in range(size):
            if position in gold_slots:
                drawn = dealer.draw(in_hit)
                if drawn is None:
                    raise InputError(
                        f"{where}: not enough gold images that differ from the HIT's own; "
                        "add gold rows or lower --gold-rate"
                    )
                in_hit.add(drawn[0])
                slots.append((drawn[0], True, drawn[1], None))
            else:
                c = next(chunk_iter)
                slots.append((c.image_id, False, None, c.local_path))
        hits.append(slots)
    return hits


def plan_hits(
    ledger: Ledger,
    *,
    task: str = "binary",
    items_per_hit: int = 12,
    gold: Path | None = None,
    gold_rate: float = 0.1,
    seed: int = 0,
    image_base_url: str,
    instruction_set: str | Path | None = None,
    concepts: list[str] | None = None,
    buckets: list[int] | None = None,
    template_dir: Path | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> list[HitPlan]:
    """Plan and render every HIT for the ledger's ranked candidates.

    Args:
        ledger: The open ledger (reads ``candidates``, ``images``, ``buckets``).
        task: ``binary`` (one concept per HIT) or ``multi`` (all classes per image).
        items_per_hit: Most images per HIT, gold included (a batch is split evenly).
        gold: Gold CSV (``image,concept,label``); None mixes in no gold.
        gold_rate: Share of all items that are gold (0 to 0.5), e.g. 0.1 for 1 in 10.
        seed: Seed for order, gold positions and gold choice.
        image_base_url: Where the media folder is served (``<base>/<token>.jpg``).
        instruction_set: Packaged set name or folder; None picks a packaged set that
            covers every concept.
        concepts: Only these concepts (binary: the batches; multi: the classes).
        buckets: Only these buckets.
        template_dir: Folder overriding the packaged HIT templates (its ``strings/``
            may add languages).
        language: BCP 47 tag of the language of the pages' own words (``en``,
            ``zh-Hans``; :mod:`turk.hits.language`).

    Returns:
        The HITs, batch by batch (concepts then buckets in order), each rendered.

    Raises:
        ConfigError: A bad option (task, sizes, rate, unknown concept, bucket or
            language).
        StageError: No candidates ranked yet.
        InputError: A gold file problem, or too few gold images for the rate.
        TemplateError: An instruction file, template or strings catalogue is unusable.
    """
    if task not in TASKS:
        raise ConfigError(f"--task: {task!r} is not a task; use binary or multi")
    if items_per_hit < 1:
        raise ConfigError(f"--items-per-hit: {items_per_hit} must be 1 or more")
    if not 0 <= gold_rate <= MAX_GOLD_RATE:
        raise ConfigError(f"--gold-rate: {gold_rate} must be between 0 and {MAX_GOLD_RATE}")
    strings = load_strings(language, template_dir)
    candidates = _load_candidates(ledger)
    positive_concepts = sorted({c.concept for c in candidates if c.role == "positive"})
    if concepts:
        unknown = [c for c in concepts if c not in positive_concepts]
        if unknown:
            raise ConfigError(
                f"concept {unknown[0]!r} has no ranked candidates outside reserved buckets; "
                f"known: {', '.join(positive_concepts)}"
            )
        chosen = list(dict.fromkeys(concepts))
    else:
        chosen = positive_concepts
    known_buckets = sorted({c.bucket for c in candidates})
    if buckets is not None:
        missing = [b for b in buckets if b not in known_buckets]
        if missing:
            raise ConfigError(
                f"bucket {missing[0]} has no candidates (or is reserved); "
                f"buckets with candidates: {', '.join(map(str, known_buckets))}"
            )
        known_buckets = sorted(set(buckets))
    gold_rows = load_gold(gold) if gold is not None else []
    rate = gold_rate if gold is not None else 0.0
    folder = resolve_set(instruction_set, chosen)
    instructions = load_instruction_set(folder, chosen)
    secret = hit_secret(ledger)
    env = environment(template_dir)
    where = str(gold) if gold is not None else "gold"

    batches: list[
        tuple[str, str | None, int | None, list[_Candidate], list[list[tuple[int, str]]]]
    ] = []
    if task == "binary":
        for concept in chosen:
            answers = binary_gold(gold_rows, concept)
            pools = [
                [(i, a) for i, a in answers.items() if a == "yes"],
                [(i, a) for i, a in answers.items() if a == "no"],
            ]
            mine = [c for c in candidates if c.concept == concept and c.role == "positive"]
            asked_buckets = set(known_buckets)
            for bucket in known_buckets:
                regular = [c for c in mine if c.bucket == bucket and c.round == 1]
                if regular:
                    name = f"binary-{_slug(concept)}-b{bucket:02d}"
                    batches.append((name, concept, bucket, regular, pools))
            # A later curation round is a batch of its own per concept, across buckets:
            # full HITs for the few candidates each short cell still needs, and never a
            # change to an earlier round's HITs (their keys hash their items).
            for sent_in in sorted({c.round for c in mine if c.round > 1}):
                regular = [c for c in mine if c.round == sent_in and c.bucket in asked_buckets]
                if regular:
                    name = f"binary-{_slug(concept)}-r{sent_in}"
                    batches.append((name, concept, None, regular, pools))
    else:
        answers = multi_gold(gold_rows, chosen)
        pools = [sorted(answers.items())]
        for bucket in known_buckets:
            seen: set[int] = set()
            regular = []
            for c in sorted(candidates, key=lambda c: (c.image_id, c.concept)):
                in_scope = c.role != "positive" or c.concept in chosen
                if c.bucket == bucket and in_scope and c.image_id not in seen:
                    seen.add(c.image_id)
                    regular.append(c)
            if regular:
                batches.append((f"multi-b{bucket:02d}", None, bucket, regular, pools))

    gold_ids = {image_id for _, _, _, _, pools in batches for p in pools for image_id, _ in p}
    gold_paths = image_files(ledger, gold_ids)
    if gold_ids:
        absent = sorted(gold_ids - set(gold_paths))
        if absent:
            line = next(r.line for r in gold_rows if r.image_id == absent[0])
            raise InputError(
                f"{gold}: line {line}: image {absent[0]} is not in the ledger; "
                "ingest it or remove the row"
            )

    plans: list[HitPlan] = []
    for name, batch_concept, batch_bucket, regular, pools in batches:
        rng = random.Random(f"{seed}|{name}")
        ordered = sorted(regular, key=lambda c: (c.rank, c.image_id))
        rng.shuffle(ordered)
        inputs: dict[str, object] = {
            "task": task,
            "concept": batch_concept,
            "classes": chosen if task == "multi" else None,
            "bucket": batch_bucket,
            "items": [c.image_id for c in ordered],
            "gold": pools,
            "rate": rate,
            "per_hit": items_per_hit,
            "seed": seed,
        }
        # English batches keep the keys they had before pages had a language, so a
        # ledger's published English HITs are still recognised and never sent twice.
        if strings.language != DEFAULT_LANGUAGE:
            inputs["language"] = strings.language
        batch_id = f"{name}-" + _digest(inputs)
        layout = _layout(ordered, pools, rate, items_per_hit, rng, where)
        shown = (
            [instructions[batch_concept]]
            if batch_concept is not None
            else list(instructions.values())
        )
        for index, slots in enumerate(layout):
            plans.append(
                _build_plan(
                    task=task,
                    batch_id=batch_id,
                    index=index,
                    concept=batch_concept,
                    bucket=batch_bucket,
                    classes=chosen if task == "multi" else [],
                    slots=slots,
                    gold_paths=gold_paths,
                    secret=secret,
                    image_base_url=image_base_url,
                    instructions=shown,
                    env=env,
                    strings=strings,
                )
            )
    return plans


def _build_plan(
    *,
    task: str,
    batch_id: str,
    index: int,
    concept: str | None,
    bucket: int | None,
    classes: list[str],
    slots: list[tuple[int, bool, str | None, str | None]],
    gold_paths: dict[int, str | None],
    secret: bytes,
    image_base_url: str,
    instructions: list[Instruction],
    env: jinja2.Environment,
    strings: Strings,
) -> HitPlan:
    hit_key = f"{batch_id}-{index:04d}"
    items: list[HitItem] = []
    for position, (image_id, is_gold, expected, local_path) in enumerate(slots):
        items.append(
            HitItem(
                position=position,
                field=f"item-{position}",
                image_id=image_id,
                concept=concept,
                is_gold=is_gold,
                expected=expected,
                token=image_token(secret, hit_key, position),
                local_path=gold_paths.get(image_id) if is_gold else local_path,
            )
        )
    rendered = render_hit(
        task=task,
        concept=concept,
        classes=classes,
        instructions=instructions,
        item_urls=[(i.field, media_url(image_base_url, f"{i.token}.jpg")) for i in items],
        image_base_url=image_base_url,
        env=env,
        strings=strings,
    )
    media = [MediaFile(f"{i.token}.jpg", Path(i.local_path)) for i in items if i.local_path]
    for ins in instructions:
        for ex in (*ins.positive, *ins.negative):
            if ex.local_path is not None and ex.media_name is not None:
                media.append(MediaFile(ex.media_name, ex.local_path))
    return HitPlan(
        hit_key=hit_key,
        batch_id=batch_id,
        task="binary" if task == "binary" else "multi",
        concept=concept,
        bucket=bucket,
        items=tuple(items),
        question_xml=rendered.question_xml,
        html=rendered.document,
        fragment=rendered.fragment,
        classes=tuple(classes),
        media=tuple(dict.fromkeys(media)),
        language=strings.language,
    )
