"""Instruction sets: what workers read about each concept before they answer.

An instruction set is a folder with one Markdown file per concept,
``<set>/<concept>.md``, starting with YAML front matter::

    ---
    concept: bus
    definition: A large road vehicle that carries passengers.
    counts: [City buses, coaches, double-decker buses, school buses]
    does_not_count: [Toy or model buses, minibuses and vans]
    examples:
      positive:
        - {image: examples/bus.svg, caption: A city bus seen from the side}
      negative:
        - {image: examples/truck.svg, caption: A truck carries goods, not people}
    ---
    Optional guidance in Markdown (paragraphs, lists, **bold**, *italic*, `code`).

Example images are paths relative to the file or ``http(s)`` URLs. The packaged sets
live in ``hit_templates/instructions/`` (``clear10``, ``sample``); any other folder can
be named instead. Sets are exported with the dataset so the instructions stay on record.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from markupsafe import Markup, escape

from hit_templates import TEMPLATES_DIR
from turk.errors import TemplateError

INSTRUCTIONS_DIR = TEMPLATES_DIR / "instructions"
"""Folder of the packaged instruction sets."""

DEFAULT_SETS = ("sample", "clear10")
"""Packaged sets tried in order when none is named: the first covering every concept."""

_KEYS = {"concept", "definition", "counts", "does_not_count", "examples"}
_EXAMPLE_KEYS = {"positive", "negative"}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?", re.S | re.M)


@dataclass(frozen=True)
class ExampleImage:
    """One example picture shown in the instructions.

    Attributes:
        caption: Text shown under the picture.
        url: The ``http(s)`` URL when the example is remote, else None.
        local_path: The file when the example ships with the set, else None.
        media_name: Opaque file name under the media folder for a local file
            (``ex-<content hash><suffix>``), else None.
    """

    caption: str
    url: str | None
    local_path: Path | None
    media_name: str | None


@dataclass(frozen=True)
class Instruction:
    """The instructions for one concept.

    Attributes:
        concept: The concept (class) name.
        definition: One or two sentences saying what the concept is.
        counts: What counts as the concept.
        does_not_count: What does not.
        positive: Example images of the concept (at least one).
        negative: Example images of near misses.
        body_html: The Markdown body rendered to safe HTML.
        path: The file it came from.
    """

    concept: str
    definition: str
    counts: tuple[str, ...]
    does_not_count: tuple[str, ...]
    positive: tuple[ExampleImage, ...]
    negative: tuple[ExampleImage, ...]
    body_html: Markup
    path: Path


def available_sets() -> list[str]:
    """Return the names of the packaged instruction sets.

    Returns:
        Folder names under ``hit_templates/instructions/``, sorted.
    """
    return sorted(p.name for p in INSTRUCTIONS_DIR.iterdir() if p.is_dir() and any(p.glob("*.md")))


def resolve_set(name_or_path: str | Path | None, concepts: list[str]) -> Path:
    """Find the instruction set folder to use.

    Args:
        name_or_path: A packaged set name (``clear10``, ``sample``; a bare name always
            means the packaged set), a folder, or None
            for the first packaged set of :data:`DEFAULT_SETS` that covers ``concepts``.
        concepts: The concepts the HITs ask about.

    Returns:
        The set's folder.

    Raises:
        TemplateError: The set does not exist, or no packaged set covers the concepts.
    """
    if name_or_path is None:
        for name in DEFAULT_SETS:
            folder = INSTRUCTIONS_DIR / name
            if all((folder / f"{c}.md").is_file() for c in concepts):
                return folder
        missing = [c for c in concepts if not (INSTRUCTIONS_DIR / "clear10" / f"{c}.md").is_file()]
        raise TemplateError(
            f"{INSTRUCTIONS_DIR / 'clear10'}: no instruction file for concept(s) "
            f"{', '.join(missing)}; write <set>/<concept>.md and pass --instructions DIR"
        )
    text = str(name_or_path)
    folder = Path(name_or_path)
    # A bare set name means the packaged set even where a folder of that name exists
    # (the demo keeps its sample collection in ./sample); write ./sample for the folder.
    if isinstance(name_or_path, str) and "/" not in text and (INSTRUCTIONS_DIR / text).is_dir():
        folder = INSTRUCTIONS_DIR / text
    if not folder.is_dir():
        raise TemplateError(
            f"--instructions: {text!r} is neither a folder nor a packaged set "
            f"({', '.join(available_sets())})"
        )
    return folder


def load_instruction_set(folder: Path, concepts: list[str]) -> dict[str, Instruction]:
    """Load the instructions for each concept from a set folder.

    Args:
        folder: The instruction set folder.
        concepts: Concept names; each needs ``<folder>/<concept>.md``.

    Returns:
        Instructions by concept, in the order of ``concepts``.

    Raises:
        TemplateError: A file is missing or unusable (the message names file and key).
    """
    return {concept: load_instruction(folder / f"{concept}.md", concept) for concept in concepts}


def load_instruction(path: Path, concept: str) -> Instruction:
    """Load and check one concept's instruction file.

    Args:
        path: The Markdown file with YAML front matter.
        concept: The concept it must describe.

    Returns:
        The :class:`Instruction`.

    Raises:
        TemplateError: The file is missing, its front matter is not YAML, a key is
            unknown, missing or of the wrong type, there is no positive example, or an
            example image file does not exist. The message names the file and the key.
    """
    if not path.is_file():
        raise TemplateError(
            f"{path}: missing instruction file for concept {concept!r}; "
            f"write it (front matter keys: {', '.join(sorted(_KEYS))})"
        )
    text = path.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(text)
    if not match:
        raise TemplateError(f"{path}: no YAML front matter; start the file with a '---' block")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 2}" if mark is not None else ""
        raise TemplateError(f"{path}{where}: front matter is not valid YAML ({exc})") from None
    if not isinstance(meta, dict):
        raise TemplateError(f"{path}: front matter must be a mapping of keys")
    unknown = sorted(set(map(str, meta)) - _KEYS)
    if unknown:
        raise TemplateError(
            f"{path}: unknown key {unknown[0]!r} in front matter; "
            f"known keys: {', '.join(sorted(_KEYS))}"
        )
    named = meta.get("concept", concept)
    if named != concept:
        raise TemplateError(
            f"{path}: key 'concept' is {named!r} but the file is for {concept!r}; "
            "name the file <concept>.md"
        )
    definition = meta.get("definition")
    if not isinstance(definition, str) or not definition.strip():
        raise TemplateError(
            f"{path}: key 'definition' is missing or empty; say what a {concept} is"
        )
    examples = meta.get("examples") or {}
    if not isinstance(examples, dict):
        raise TemplateError(f"{path}: key 'examples' must map 'positive' and 'negative' to lists")
    bad = sorted(set(map(str, examples)) - _EXAMPLE_KEYS)
    if bad:
        raise TemplateError(f"{path}: unknown key 'examples.{bad[0]}'; use positive and negative")
    positive = _examples(path, examples.get("positive"), "examples.positive")
    if not positive:
        raise TemplateError(
            f"{path}: concept {concept!r} has no examples (key 'examples.positive'); "
            "add at least one image"
        )
    return Instruction(
        concept=concept,
        definition=definition.strip(),
        counts=_strings(path, meta.get("counts"), "counts"),
        does_not_count=_strings(path, meta.get("does_not_count"), "does_not_count"),
        positive=positive,
        negative=_examples(path, examples.get("negative"), "examples.negative"),
        body_html=render_markdown(text[match.end() :]),
        path=path,
    )


def _strings(path: Path, value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise TemplateError(f"{path}: key {key!r} must be a list of short texts")
    return tuple(str(v) for v in value)


def _examples(path: Path, value: Any, key: str) -> tuple[ExampleImage, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TemplateError(f"{path}: key {key!r} must be a list of {{image, caption}} entries")
    out: list[ExampleImage] = []
    for n, entry in enumerate(value):
        if isinstance(entry, str):
            entry = {"image": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
            raise TemplateError(f"{path}: key '{key}[{n}]' needs an 'image' path or URL")
        extra = sorted(set(map(str, entry)) - {"image", "caption"})
        if extra:
            raise TemplateError(f"{path}: unknown key '{key}[{n}].{extra[0]}'; use image, caption")
        image, caption = entry["image"], str(entry.get("caption") or "")
        if re.match(r"^https?://", image):
            out.append(ExampleImage(caption, image, None, None))
            continue
        if "://" in image or image.startswith("data:"):
            raise TemplateError(
                f"{path}: key '{key}[{n}].image' {image!r}: use a file path or an http(s) URL"
            )
        file = (path.parent / image).resolve()
        if not file.is_file():
            raise TemplateError(
                f"{path}: key '{key}[{n}].image': no file {file}; fix the path (relative "
                "to the instruction file)"
            )
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
        out.append(ExampleImage(caption, None, file, f"ex-{digest}{file.suffix.lower()}"))
    return tuple(out)


_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)"), r"<em>\1</em>"),
]
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _inline(text: str) -> str:
    html = str(escape(text))
    for pattern, replacement in _INLINE:
        html = pattern.sub(replacement, html)
    return html


def render_markdown(text: str) -> Markup:
    """Render a small, safe subset of Markdown to HTML.

    Everything is escaped first; then paragraphs, ``-``/``*`` and numbered lists,
    ``#`` headings (shown as ``h4``-``h6``), ``**bold**``, ``*italic*``/``_italic_``
    and inline ``code`` become markup. Raw HTML, links and images stay visible text.

    Args:
        text: Markdown source.

    Returns:
        Safe HTML.
    """
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if paragraph:
            blocks.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            inner = "".join(f"<li>{i}</li>" for i in items)
            blocks.append(f"<{list_tag}>{inner}</{list_tag}>")
            items.clear()
            list_tag = ""

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        numbered = _NUMBERED.match(line)
        if heading:
            flush()
            level = min(6, 3 + len(heading.group(1)))
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif bullet or numbered:
            tag = "ul" if bullet else "ol"
            if paragraph or (items and list_tag != tag):
                flush()
            list_tag = tag
            items.append(_inline((bullet or numbered).group(1)))  # type: ignore[union-attr]
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + _inline(line.strip())
        else:
            if items:
                flush()
            paragraph.append(line.strip())
    flush()
    return Markup("\n".join(blocks))
