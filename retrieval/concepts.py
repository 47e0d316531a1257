"""The concepts file (``concepts.yaml``): what to retrieve and how many of each.

Format (see ``docs/design.md``)::

    settings:                    # all optional; CLEAR's defaults
      images_per_class: 300
      query_depth: 16000
      allow_overlap: false
      background: true
      negative_ratio: 0.1
      templates: openai_imagenet # null | openai_imagenet | [list of strings with "{}"]
    concepts:
      - name: bus
        prompts: ["bus", "double-decker bus"]
        templates: null          # per-concept override
        prefix: "a photo of"
        negatives: ["toy bus"]

Every problem raises :class:`~retrieval.errors.ConceptsError` naming the file, the line
and the key, with the closest valid key for a typo.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from retrieval.errors import ConceptsError

BACKGROUND = "BACKGROUND"
"""Class name of the background picks."""

SETTINGS_KEYS = (
    "images_per_class",
    "candidates_per_class",
    "query_depth",
    "allow_overlap",
    "background",
    "negative_ratio",
    "templates",
)
CONCEPT_KEYS = ("name", "prompts", "templates", "prefix", "negatives")
TOP_KEYS = ("settings", "concepts")
_UNSET = object()
_FORBIDDEN_NAME_CHARS = set('/\\|:*?"<>\n\r\t')


def openai_imagenet_templates() -> list[str]:
    """Return the 80 prompt templates OpenAI used for zero-shot ImageNet with CLIP.

    Returns:
        Strings with one ``{}`` each, e.g. ``"a photo of a {}."``.
    """
    text = (
        resources.files("retrieval")
        .joinpath("data/openai_imagenet_templates.json")
        .read_text(encoding="utf-8")
    )
    return list(json.loads(text))


NAMED_TEMPLATES = {"openai_imagenet": openai_imagenet_templates}
"""Template sets that can be named in a concepts file."""


@dataclass(frozen=True)
class Concept:
    """One concept to retrieve.

    Attributes:
        name: Class name.
        prompts: Prompts or synonyms (non-empty).
        templates: Templates applied to each prompt (empty: the prompts as written).
        prefix: Text put before each prompt, or None.
        negatives: Prompts subtracted from the query.
    """

    name: str
    prompts: tuple[str, ...]
    templates: tuple[str, ...] = ()
    prefix: str | None = None
    negatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class RankSettings:
    """Run settings of a concepts file (CLEAR's defaults).

    Attributes:
        images_per_class: Positives kept per concept per bucket (the quota).
        query_depth: Ranked depth per concept per bucket.
        candidates_per_class: Top-ranked candidates per concept per bucket sent to
            people; None for ``images_per_class`` (CLEAR's single pass). More than the
            quota where the top of the ranking is not all true, so that the accepted
            ones reach it.
        allow_overlap: When false an image stays only with its best-scoring concept.
        background: Pick a background class from the bottom of the rankings.
        negative_ratio: Background picks per bucket = ratio x images_per_class x concepts.
    """

    images_per_class: int = 300
    query_depth: int = 16000
    allow_overlap: bool = False
    background: bool = True
    negative_ratio: float = 0.1
    candidates_per_class: int | None = None

    @property
    def candidates(self) -> int:
        """Candidates per concept per bucket: ``candidates_per_class`` or the quota."""
        return self.candidates_per_class or self.images_per_class

    @property
    def background_per_concept(self) -> int:
        """Background picks taken from each concept's ranking in each bucket."""
        if not self.background:
            return 0
        return round(self.negative_ratio * self.images_per_class)


@dataclass(frozen=True)
class ConceptsFile:
    """A validated concepts file.

    Attributes:
        path: Where it was read from.
        settings: The run settings.
        concepts: The concepts, in file order.
    """

    path: Path
    settings: RankSettings
    concepts: tuple[Concept, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        """Concept names in file order."""
        return [c.name for c in self.concepts]


class _Source:
    """Plain data from a YAML document plus the line of every mapping key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[tuple[Any, ...], int] = {}

    def convert(self, node: yaml.Node, where: tuple[Any, ...]) -> Any:
        self.lines.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.convert(key_node, (*where, "<key>"))
                if key in out:
                    self.fail((*where,), f"duplicate key '{key}'", key_node.start_mark.line + 1)
                self.lines[(*where, key)] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, (*where, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*where, i)) for i, item in enumerate(node.value)]
        constructor = yaml.SafeLoader(self.path.name)
        try:
            return constructor.construct_object(node)
        finally:
            constructor.dispose()

    def line(self, where: tuple[Any, ...]) -> int:
        while where and where not in self.lines:
            where = where[:-1]
        return self.lines.get(where, 1)

    def fail(self, where: tuple[Any, ...], message: str, line: int | None = None) -> None:
        raise ConceptsError(f"{self.path}:{line or self.line(where)}: {message}")


def _dotted(where: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for part in where:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _check_keys(src: _Source, data: dict[Any, Any], allowed: tuple[str, ...], where: tuple) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(allowed)}"
            src.fail(
                (*where, key),
                f"unknown key '{_dotted((*where, key))}'; {hint}",
            )


def _string_list(src: _Source, value: Any, where: tuple[Any, ...], *, allow_empty: bool) -> tuple:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        src.fail(where, f"'{_dotted(where)}' must be a list of strings")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            src.fail((*where, i), f"'{_dotted((*where, i))}' is empty; write a non-empty string")
        out.append(item.strip())
    if not out and not allow_empty:
        src.fail(where, f"'{_dotted(where)}' is empty; give at least one prompt")
    return tuple(out)


def _templates(src: _Source, value: Any, where: tuple[Any, ...]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        if value in NAMED_TEMPLATES:
            return tuple(NAMED_TEMPLATES[value]())
        if "{}" not in value:
            names = ", ".join(NAMED_TEMPLATES)
            src.fail(
                where,
                f"'{_dotted(where)}': unknown template set '{value}'; name one of {names}, "
                "null, or give a list of strings with {}",
            )
        value = [value]
    templates = _string_list(src, value, where, allow_empty=True)
    for i, template in enumerate(templates):
        if "{}" not in template:
            src.fail(
                (*where, i),
                f"'{_dotted((*where, i))}' has no {{}} where the prompt goes; add one",
            )
    return templates


def _int(src: _Source, data: dict[str, Any], key: str, default: int, minimum: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        src.fail(("settings", key), f"'settings.{key}' must be an integer >= {minimum}")
    return int(value)


def _bool(src: _Source, data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        src.fail(("settings", key), f"'settings.{key}' must be true or false")
    return bool(value)


def load_concepts(path: str | os.PathLike[str]) -> ConceptsFile:
    """Read and validate a concepts file.

    Args:
        path: The YAML file.

    Returns:
        The :class:`ConceptsFile`.

    Raises:
        ConceptsError: The file is missing, not YAML, or breaks a rule (unknown key,
            empty prompts, depth below the per-class count, duplicate names, ...).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConceptsError(f"{file}: concepts file not found; check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConceptsError(f"{file}: cannot read the concepts file ({exc})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConceptsError(f"{file}{line}: not valid YAML ({problem}); fix the syntax") from exc
    src = _Source(file)
    if node is None:
        src.fail((), "empty concepts file; add a 'concepts:' list")
    assert node is not None
    try:
        data = src.convert(node, ())
    except yaml.YAMLError as exc:
        raise ConceptsError(f"{file}: not valid YAML ({exc}); fix the syntax") from exc
    if not isinstance(data, dict):
        src.fail((), "the file must be a mapping with 'settings' and 'concepts'")
    _check_keys(src, data, TOP_KEYS, ())

    raw_settings = data.get("settings") or {}
    if not isinstance(raw_settings, dict):
        src.fail(("settings",), "'settings' must be a mapping")
    _check_keys(src, raw_settings, SETTINGS_KEYS, ("settings",))
    per_class = _int(src, raw_settings, "images_per_class", 300, 1)
    depth = _int(src, raw_settings, "query_depth", 16000, 1)
    if depth < per_class:
        src.fail(
            ("settings", "query_depth"),
            f"'settings.query_depth' ({depth}) is below 'settings.images_per_class' "
            f"({per_class}); raise query_depth to at least {per_class}",
        )
    candidates = None
    if raw_settings.get("candidates_per_class") is not None:
        candidates = _int(src, raw_settings, "candidates_per_class", per_class, per_class)
        if candidates > depth:
            src.fail(
                ("settings", "candidates_per_class"),
                f"'settings.candidates_per_class' ({candidates}) is above "
                f"'settings.query_depth' ({depth}); lower it or raise query_depth",
            )
    ratio = raw_settings.get("negative_ratio", 0.1)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 10:
        src.fail(("settings", "negative_ratio"), "'settings.negative_ratio' must be 0 to 10")
    settings = RankSettings(
        images_per_class=per_class,
        query_depth=depth,
        allow_overlap=_bool(src, raw_settings, "allow_overlap", False),
        background=_bool(src, raw_settings, "background", True),
        negative_ratio=float(ratio),
        candidates_per_class=candidates,
    )
    default_templates = _templates(
        src, raw_settings.get("templates", "openai_imagenet"), ("settings", "templates")
    )

    raw_concepts = data.get("concepts")
    if not isinstance(raw_concepts, list) or not raw_concepts:
        src.fail(("concepts",), "'concepts' must be a non-empty list of concepts")
    concepts: list[Concept] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_concepts):
        where: tuple[Any, ...] = ("concepts", i)
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict):
            src.fail(where, f"'{_dotted(where)}' must be a mapping with 'name' and 'prompts'")
        _check_keys(src, raw, CONCEPT_KEYS, where)
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            src.fail((*where, "name"), f"'{_dotted(where)}.name' is missing or empty")
        name = name.strip()
        if set(name) & _FORBIDDEN_NAME_CHARS:
            src.fail((*where, "name"), f"concept name '{name}' has / \\ | : * ? \" < > in it")
        if name.upper() == BACKGROUND:
            src.fail((*where, "name"), f"'{BACKGROUND}' is reserved for the background class")
        key = name.casefold()
        if key in seen:
            src.fail(
                (*where, "name"),
                f"duplicate concept name '{name}' (first at concepts[{seen[key]}]); "
                "merge their prompts into one concept",
            )
        seen[key] = i
        prompts = _string_list(
            src, raw.get("prompts", [name]), (*where, "prompts"), allow_empty=False
        )
        templates = (
            _templates(src, raw["templates"], (*where, "templates"))
            if "templates" in raw
            else default_templates
        )
        prefix = raw.get("prefix")
        if prefix is not None and (not isinstance(prefix, str) or not prefix.strip()):
            src.fail((*where, "prefix"), f"'{_dotted(where)}.prefix' must be a non-empty string")
        negatives = _string_list(
            src, raw.get("negatives") or [], (*where, "negatives"), allow_empty=True
        )
        concepts.append(
            Concept(
                name=name,
                prompts=prompts,
                templates=templates,
                prefix=prefix.strip() if isinstance(prefix, str) else None,
                negatives=negatives,
            )
        )
    return ConceptsFile(path=file, settings=settings, concepts=tuple(concepts))
