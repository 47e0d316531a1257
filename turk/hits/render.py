"""Render, validate and price HITs without calling any service (``turk render``).

``turk render`` and ``turk publish --dry-run`` both run :func:`dry_run`: plan the HITs,
check each one as MTurk would (well-formed HTMLQuestion XML, under the 64 KB Question
limit, a field for every item), estimate the cost with MTurk's fees, and write every
HIT's HTML with an index page for a look in a browser.
"""

from __future__ import annotations

import html
import os
import shutil
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from turk.errors import TemplateError
from turk.hits.html import HTML_QUESTION_NS
from turk.hits.language import DEFAULT_LANGUAGE
from turk.hits.plan import HitPlan, plan_hits
from turk.ledger import Ledger
from turk.money import CostEstimate, estimate_cost, format_usd

MAX_QUESTION_BYTES = 65535
"""MTurk's limit on a HIT's Question (64 KB)."""


def question_bytes(question_xml: str) -> int:
    """Return a Question's size as MTurk counts it against :data:`MAX_QUESTION_BYTES`.

    Args:
        question_xml: The HTMLQuestion XML.

    Returns:
        Its length in UTF-8 bytes (a Chinese character is three, not one).
    """
    return len(question_xml.encode("utf-8"))


class _FormScan(HTMLParser):
    """Collects what validation needs from a HIT page: items, inputs, the form."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[str] = []
        self.inputs: dict[str, list[tuple[str, str]]] = {}
        self.form: dict[str, str | None] | None = None
        self.lang: str | None = None
        self.images_in_item: dict[str, int] = {}
        self._open_item: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html" and self.lang is None:
            self.lang = a.get("lang") or ""
        if tag == "form" and a.get("id") == "turk-form":
            self.form = a
        if a.get("data-item") is not None:
            field = a["data-item"] or ""
            self.items.append(field)
            self.images_in_item[field] = 0
            self._open_item.append(field)
        if tag == "img" and self._open_item:
            self.images_in_item[self._open_item[-1]] += 1
        name = a.get("name")
        if tag == "input" and name:
            self.inputs.setdefault(name, []).append((a.get("type") or "text", a.get("value") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._open_item:
            self._open_item.pop()


def plan_problems(plan: HitPlan) -> list[str]:
    """List what is wrong with a HIT for MTurk and for the HIT HTML contract.

    Args:
        plan: The HIT.

    Returns:
        One message per problem (empty when the HIT is fine).
    """
    problems: list[str] = []
    size = question_bytes(plan.question_xml)
    if size > MAX_QUESTION_BYTES:
        problems.append(
            f"Question is {size:,} bytes, over MTurk's limit of {MAX_QUESTION_BYTES:,}; "
            "lower --items-per-hit or shorten the instructions"
        )
    try:
        root = SafeET.fromstring(plan.question_xml)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        problems.append(f"HTMLQuestion XML is not well-formed ({exc})")
        return problems
    if root.tag != f"{{{HTML_QUESTION_NS}}}HTMLQuestion":
        problems.append(f"root element is {root.tag}, not HTMLQuestion")
    content = root.find(f"{{{HTML_QUESTION_NS}}}HTMLContent")
    height = root.find(f"{{{HTML_QUESTION_NS}}}FrameHeight")
    if content is None or not (content.text or "").strip():
        problems.append("HTMLQuestion has no HTMLContent")
        return problems
    if height is None or not (height.text or "").strip().isdigit():
        problems.append("HTMLQuestion has no FrameHeight")
    scan = _FormScan()
    scan.feed(content.text or "")
    if scan.form is None:
        problems.append("no <form id='turk-form'> in the page")
    else:
        action = scan.form.get("action") or ""
        if not action.endswith("/mturk/externalSubmit"):
            problems.append(f"form posts to {action!r}, not .../mturk/externalSubmit")
        if scan.form.get("data-task") != plan.task:
            problems.append(f"form data-task is {scan.form.get('data-task')!r}, not {plan.task!r}")
    if scan.lang is not None and scan.lang.lower() != plan.language.lower():
        problems.append(
            f"the page says <html lang={scan.lang!r}> but its words are {plan.language!r}; "
            'write <html lang="{{ language }}"> in the template'
        )
    if "assignmentId" not in scan.inputs:
        problems.append("no hidden assignmentId field")
    expected_fields = [item.field for item in plan.items]
    if scan.items != expected_fields:
        problems.append(
            f"items on the page are {scan.items[:3]}..., expected {expected_fields[:3]}... in order"
        )
    for item in plan.items:
        inputs = scan.inputs.get(item.field, [])
        if scan.images_in_item.get(item.field, 0) != 1:
            problems.append(f"item {item.field} must hold exactly one image")
        if plan.task == "binary":
            values = sorted(v for t, v in inputs if t == "radio")
            if values != ["no", "yes"]:
                problems.append(f"no yes/no field for {item.field}")
        elif len(inputs) != 1:
            problems.append(f"no answer field for {item.field}")
    extra = set(scan.inputs) - set(expected_fields) - {"assignmentId"}
    if extra:
        problems.append(f"unexpected form fields {sorted(extra)}")
    return problems


def validate_plan(plan: HitPlan) -> None:
    """Check a HIT as MTurk would, and against the HIT HTML contract.

    Args:
        plan: The HIT.

    Raises:
        TemplateError: The first problem, naming the HIT key (see :func:`plan_problems`).
    """
    problems = plan_problems(plan)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise TemplateError(f"HIT {plan.hit_key}: {problems[0]}{more}")


def write_media(plans: list[HitPlan], media_dir: Path) -> int:
    """Put every file the HITs load into ``media_dir`` under its opaque name.

    Files are hard-linked when possible, else copied; files already there are kept.

    Args:
        plans: The HITs.
        media_dir: The media folder (served at the image base URL).

    Returns:
        The number of files added.
    """
    media_dir.mkdir(parents=True, exist_ok=True)
    added = 0
    for plan in plans:
        for media in plan.media:
            target = media_dir / media.name
            if target.exists():
                continue
            if not media.source.is_file():
                continue
            try:
                os.link(media.source, target)
            except OSError:
                shutil.copyfile(media.source, target)
            added += 1
    return added


def render_hits(plans: list[HitPlan], out_dir: Path) -> list[Path]:
    """Write each HIT's document and fragment, and an index page linking them.

    Writes ``<out>/<hit_key>.html`` (the complete document), ``<out>/<hit_key>.fragment.html``
    and ``<out>/index.html``.

    Args:
        plans: The HITs.
        out_dir: The folder to write into (created).

    Returns:
        The files written, the index last.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows: list[str] = []
    for plan in plans:
        doc = out_dir / f"{plan.hit_key}.html"
        frag = out_dir / f"{plan.hit_key}.fragment.html"
        doc.write_text(plan.html, encoding="utf-8")
        frag.write_text(plan.fragment, encoding="utf-8")
        written += [doc, frag]
        gold = sum(item.is_gold for item in plan.items)
        about = plan.concept if plan.concept is not None else "|".join(plan.classes)
        key = html.escape(plan.hit_key)
        rows.append(
            f"<tr><td><a href='{key}.html'>{key}</a></td>"
            f"<td><a href='{key}.html?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE'>preview</a></td>"
            f"<td>{html.escape(plan.task)}</td><td>{html.escape(about)}</td><td>{plan.bucket}</td>"
            f"<td>{len(plan.items)}</td><td>{gold}</td></tr>"
        )
    index = out_dir / "index.html"
    index.write_text(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>HITs</title>"
        "<style>body{font:15px system-ui,sans-serif}td,th{padding:2px 10px;text-align:left}"
        "</style></head><body>"
        f"<h1>{len(plans)} HITs</h1><p>Open a HIT to try it (answers cannot be submitted "
        "from here), or its preview as workers see it before accepting.</p>"
        "<table><tr><th>HIT</th><th></th><th>task</th><th>asks about</th><th>bucket</th>"
        "<th>items</th><th>gold</th></tr>" + "".join(rows) + "</table></body></html>\n",
        encoding="utf-8",
    )
    written.append(index)
    return written


@dataclass(frozen=True)
class DryRunReport:
    """What a dry run planned, checked, priced and wrote.

    Attributes:
        plans: The HITs.
        hits: Number of HITs.
        items: Items over all HITs, gold included.
        gold_items: Gold items among them.
        batches: Number of batches.
        largest_question_bytes: Size of the largest Question.
        cost: The cost estimate (rewards, fees, total, per regular item).
        out_dir: Where the HTML was written, or None.
        files: Number of HTML files written.
        media_files: Media files added to ``out_dir/media``.
    """

    plans: list[HitPlan]
    hits: int
    items: int
    gold_items: int
    batches: int
    largest_question_bytes: int
    cost: CostEstimate
    out_dir: Path | None
    files: int
    media_files: int

    @property
    def gold_share(self) -> float:
        """Share of all items that are gold (0 when there are none)."""
        return self.gold_items / self.items if self.items else 0.0

    def lines(self) -> list[str]:
        """The report as lines of text, as ``turk render`` and ``publish --dry-run`` print.

        Returns:
            The lines.
        """
        c = self.cost
        per_item = format_usd(c.per_item) if c.per_item is not None else "-"
        out = [
            f"HITs: {self.hits:,} in {self.batches:,} batch(es); items: {self.items:,} "
            f"({self.items - self.gold_items:,} to label, {self.gold_items:,} gold, "
            f"{self.gold_share:.1%} gold)",
            f"largest Question: {self.largest_question_bytes:,} of {MAX_QUESTION_BYTES:,} "
            "bytes; every HIT valid",
            f"cost: {c.hits:,} HITs x {c.max_assignments} assignments x "
            f"{format_usd(c.reward)} = {format_usd(c.rewards)} rewards"
            + (f" + {format_usd(c.bonuses)} bonuses" if c.bonuses else "")
            + f" + {format_usd(c.fees)} MTurk fees ({c.fee_rate:.0%} commission"
            + (", 10+ assignments" if c.max_assignments >= 10 else "")
            + f") = {format_usd(c.total)} total; {per_item} per item labeled",
        ]
        if self.out_dir is not None:
            out.append(
                f"wrote {self.files:,} HTML files and {self.media_files:,} media files; "
                f"open {self.out_dir / 'index.html'}"
            )
        return out


def dry_run(
    ledger: Ledger,
    *,
    reward: Decimal,
    max_assignments: int,
    bonus: Decimal = Decimal("0"),
    out_dir: Path | None = None,
    image_base_url: str = "media",
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
) -> DryRunReport:
    """Plan, validate, price and (optionally) write the HITs; call no service.

    Args:
        ledger: The open ledger.
        reward: Reward per assignment.
        max_assignments: Assignments per HIT.
        bonus: Bonus per assignment to include in the estimate.
        out_dir: Where to write the HTML, an index and a ``media/`` folder; None writes
            nothing.
        image_base_url: Base URL of images in the HTML; the default ``media`` points at
            ``out_dir/media`` so the pages show their images from disk.
        task: See :func:`turk.hits.plan.plan_hits` for this and the remaining options.
        items_per_hit: Most images per HIT.
        gold: Gold CSV, or None.
        gold_rate: Share of gold items.
        seed: Planning seed.
        instruction_set: Instruction set name or folder.
        concepts: Only these concepts.
        buckets: Only these buckets.
        template_dir: Folder overriding the packaged templates.
        language: Language of the pages' own words (BCP 47 tag).

    Returns:
        The :class:`DryRunReport`.

    Raises:
        TemplateError: A HIT fails validation (or a template/instruction problem).
        MoneyError: A bad amount or assignment count.
    """
    plans = plan_hits(
        ledger,
        task=task,
        items_per_hit=items_per_hit,
        gold=gold,
        gold_rate=gold_rate,
        seed=seed,
        image_base_url=image_base_url,
        instruction_set=instruction_set,
        concepts=concepts,
        buckets=buckets,
        template_dir=template_dir,
        language=language,
    )
    for plan in plans:
        validate_plan(plan)
    items = sum(len(p.items) for p in plans)
    gold_items = sum(i.is_gold for p in plans for i in p.items)
    cost = estimate_cost(len(plans), reward, max_assignments, bonus, items=items - gold_items)
    files = media = 0
    if out_dir is not None:
        files = len(render_hits(plans, out_dir))
        if "://" not in image_base_url and not Path(image_base_url).is_absolute():
            media = write_media(plans, out_dir / image_base_url)
    return DryRunReport(
        plans=plans,
        hits=len(plans),
        items=items,
        gold_items=gold_items,
        batches=len({p.batch_id for p in plans}),
        largest_question_bytes=max((question_bytes(p.question_xml) for p in plans), default=0),
        cost=cost,
        out_dir=out_dir,
        files=files,
        media_files=media,
    )
