"""The language of a HIT's own words: one strings catalogue per language.

The packaged templates take every word they show (question line, Yes/No, keyboard
legend, Submit, the page script's banners and status) from a catalogue,
``hit_templates/strings/<code>.yaml``, named by its BCP 47 language tag (``en``,
``zh-Hans``). A project adds a language, or rewords a packaged one, by putting
``<code>.yaml`` in ``strings/`` of its template folder (``hits.templates``); that
folder is searched first. Every catalogue has exactly the keys of the packaged
``en.yaml``, and each value the same ``{placeholders}`` as its English one, so a
template never meets a missing word and a translation never drops the concept name.

Tags are matched case-insensitively (BCP 47 tags are), and the page says the
catalogue's own spelling in ``<html lang>``. A bare ``zh`` is refused rather than
taken for ``zh-Hans``: it names no script, and readers of Traditional Chinese would
get Simplified characters without anyone having chosen them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from markupsafe import Markup, escape

from hit_templates import TEMPLATES_DIR
from turk.errors import ConfigError, TemplateError

__all__ = [
    "DEFAULT_LANGUAGE",
    "STRINGS_DIR",
    "Strings",
    "available_languages",
    "fill",
    "load_strings",
    "placeholders",
]

STRINGS_DIR = TEMPLATES_DIR / "strings"
"""Folder of the packaged strings catalogues, ``<code>.yaml`` each."""

DEFAULT_LANGUAGE = "en"
"""The language HITs are written in unless told otherwise; its catalogue fixes the keys."""

_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_AMBIGUOUS = {"zh": "zh-Hans (Simplified) or zh-Hant (Traditional)"}


class Strings(Mapping[str, str]):
    """One language's catalogue: every key of ``en.yaml`` with its text.

    Templates read it as ``t``: ``{{ t.submit }}``, or ``{{ t.binary_question |
    fill(concept=...) }}`` for a text with placeholders.

    Attributes:
        language: The BCP 47 tag as the catalogue's file spells it (``zh-Hans``).
        path: The catalogue file.
    """

    def __init__(self, language: str, path: Path, text: Mapping[str, str]) -> None:
        self.language = language
        self.path = path
        self._text = dict(text)

    def __getitem__(self, key: str) -> str:
        return self._text[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._text)

    def __len__(self) -> int:
        return len(self._text)

    def __repr__(self) -> str:
        return f"Strings({self.language!r}, {str(self.path)!r})"


def placeholders(text: str) -> set[str]:
    """Return the ``{name}`` placeholders of a catalogue text.

    Args:
        text: The text.

    Returns:
        The names.
    """
    return set(_PLACEHOLDER.findall(text))


def fill(text: str, **values: Any) -> Markup:
    """Put values into a catalogue text's placeholders, escaping text and values.

    A value that is already markup (a ``{% set %}`` block of the template, e.g. the
    concept in ``<strong>``) goes in as it is; everything else is escaped.

    Args:
        text: The catalogue text, e.g. ``"Not {concept}"``.
        **values: One value per placeholder.

    Returns:
        Safe markup.

    Raises:
        TemplateError: A placeholder has no value (the message names it).
    """

    def put(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(
                f"string {text!r} needs a value for {{{name}}}; pass fill({name}=...) "
                "in the template"
            )
        return str(escape(values[name]))

    return Markup(_PLACEHOLDER.sub(put, str(escape(text))))


def _folders(template_dir: Path | None) -> list[Path]:
    return ([template_dir / "strings"] if template_dir is not None else []) + [STRINGS_DIR]


def _catalogues(template_dir: Path | None) -> dict[str, Path]:
    """``{lower-case tag: file}``, the template folder's winning over the packaged ones."""
    found: dict[str, Path] = {}
    for folder in reversed(_folders(template_dir)):
        if folder.is_dir():
            for file in sorted(folder.glob("*.yaml")):
                found[file.stem.lower()] = file
    return found


def available_languages(template_dir: Path | None = None) -> list[str]:
    """Return the languages HITs can be written in.

    Args:
        template_dir: The project's template folder (its ``strings/`` adds languages),
            or None for the packaged ones only.

    Returns:
        BCP 47 tags as the catalogue files spell them, sorted.
    """
    return sorted((f.stem for f in _catalogues(template_dir).values()), key=str.lower)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path}: not UTF-8 text; save the catalogue as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise TemplateError(f"{path}{where}: not valid YAML; fix the catalogue") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: expected a mapping of key: text, one per line")
    lines = {}
    if isinstance(node, yaml.MappingNode):
        lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return data, lines


def _check_tag(language: str, option: str) -> None:
    if language.lower() in _AMBIGUOUS:
        raise ConfigError(
            f"{option}: {language!r} names no script; use {_AMBIGUOUS[language.lower()]}"
        )
    if not _TAG.match(language):
        raise ConfigError(
            f"{option}: {language!r} is not a BCP 47 language tag; write e.g. en or zh-Hans"
        )


def load_strings(
    language: str = DEFAULT_LANGUAGE,
    template_dir: Path | None = None,
    *,
    option: str = "--language",
) -> Strings:
    """Load and check the strings catalogue of one language.

    Args:
        language: BCP 47 tag (``en``, ``zh-Hans``; any letter case).
        template_dir: The project's template folder; ``<template_dir>/strings/`` is
            searched before the packaged catalogues.
        option: How the caller names the setting in messages (``--language``,
            ``hits.language``).

    Returns:
        The :class:`Strings`.

    Raises:
        ConfigError: Not a language tag, an ambiguous one, or no catalogue for it.
        TemplateError: The catalogue is unreadable, lacks a key of ``en.yaml``, has a
            key ``en.yaml`` lacks, a value that is not text, or other placeholders
            than the English text's (the message names the file, line and key).
    """
    _check_tag(language, option)
    file = _catalogues(template_dir).get(language.lower())
    if file is None:
        where = " or ".join(str(f) for f in _folders(template_dir))
        raise ConfigError(
            f"{option}: no strings catalogue {language}.yaml in {where} (languages: "
            f"{', '.join(available_languages(template_dir))}); add "
            f"strings/{language}.yaml to the template folder (docs/languages.md)"
        )
    reference, _ = _read(STRINGS_DIR / f"{DEFAULT_LANGUAGE}.yaml")
    data, lines = _read(file)
    for key, value in data.items():
        where = f"{file}:{lines[str(key)]}" if str(key) in lines else str(file)
        if str(key) not in reference:
            raise TemplateError(
                f"{where}: unknown key {key!r}; a catalogue has exactly the keys of "
                f"{STRINGS_DIR / 'en.yaml'}"
            )
        if not isinstance(value, str):
            raise TemplateError(
                f"{where}: key {key!r} is not text (YAML read {value!r}); quote the value"
            )
        want = placeholders(str(reference[key]))
        if placeholders(value) != want:
            shown = ", ".join(f"{{{p}}}" for p in sorted(want)) or "none"
            raise TemplateError(
                f"{where}: key {key!r} must have the placeholders of en.yaml ({shown}); "
                "keep them as they are"
            )
    missing = [key for key in reference if key not in data]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise TemplateError(
            f"{file}: missing key {missing[0]!r}{more}; copy it from "
            f"{STRINGS_DIR / 'en.yaml'} and translate it"
        )
    return Strings(file.stem, file, {str(k): str(v) for k, v in data.items()})
