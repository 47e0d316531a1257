"""Render HIT HTML from the Jinja2 templates in ``hit_templates/``.

Templates are rendered with autoescape on and ``StrictUndefined``: every value from
outside (concept names, instructions, URLs) is escaped, and a variable a template uses
but is not given is an error that names the template file, its line and the variable.
The HTML follows the HIT HTML contract of ``docs/design.md``. Every word the pages
show comes from the language's strings catalogue (:mod:`turk.hits.language`): templates
read it as ``t``, the page script as one JSON object (:func:`script_json`).
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from hit_templates import TEMPLATES_DIR
from turk.errors import TemplateError
from turk.hits.instructions import Instruction
from turk.hits.language import Strings, fill, load_strings

HTML_QUESTION_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"
)
"""XML namespace of MTurk's HTMLQuestion."""

FRAME_HEIGHT = 0
"""HTMLQuestion FrameHeight; 0 lets MTurk size the frame to the page."""

TASK_TEMPLATES = {"binary": "binary.html.j2", "multi": "multi.html.j2"}
"""Template file per task."""

SCRIPT_KEYS = ("preview", "outside_hit", "status", "status_incomplete")
"""Catalogue keys the page script shows (banners and the answered count)."""

_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


@dataclass(frozen=True)
class RenderedHit:
    """The HTML of one HIT.

    Attributes:
        document: Complete HTMLQuestion document (form posting to externalSubmit).
        fragment: Bare fragment for annotation servers that wrap their own form.
        question_xml: The HTMLQuestion XML wrapping ``document``.
    """

    document: str
    fragment: str
    question_xml: str


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """Return the Jinja2 environment for HIT templates.

    Args:
        template_dir: A folder whose templates override the packaged ones (same file
            names); None uses only ``hit_templates/``.

    Returns:
        An environment with autoescape on and ``StrictUndefined``.
    """
    folders = [str(template_dir)] if template_dir is not None else []
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*folders, str(TEMPLATES_DIR)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters["fill"] = fill
    return env


def script_json(value: object) -> Markup:
    """Write a value as JSON that is safe inside an HTML ``<script>`` element.

    ``<``, ``>`` and ``&`` are escaped (no ``</script>`` or comment opener can close
    the element early) and so are U+2028/U+2029 (line ends to older JavaScript);
    other characters stay as they are, so Chinese text costs its UTF-8 bytes rather
    than six per character against the 64 KB Question limit.

    Args:
        value: Anything :func:`json.dumps` takes.

    Returns:
        The JSON as markup, ready for ``{{ ... }}`` in a script.
    """
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return Markup(re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_ESCAPES[m.group(0)], text))


def _where(exc: BaseException, fallback: str) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"{frame.filename}:{frame.lineno}"
    return fallback


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render one template, turning Jinja's errors into :class:`TemplateError`.

    Args:
        env: The environment from :func:`environment`.
        name: Template file name, e.g. ``binary.html.j2``.
        context: The variables.

    Returns:
        The rendered text.

    Raises:
        TemplateError: The template is missing, has a syntax error, or uses a variable
            that is not given; the message names the file, line and variable.
    """
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"{exc.name}: template not found in {', '.join(env.loader.searchpath)}; "  # type: ignore[union-attr]
            "restore it or fix the template folder"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        message = str(exc)
        found = re.search(r"'([^']+)' is undefined", message) or re.search(
            r"has no attribute '([^']+)'", message
        )
        variable = found.group(1) if found else message
        if "Strings object" in message:
            raise TemplateError(
                f"{_where(exc, name)}: unknown string 't.{variable}'; the strings are the "
                "keys of hit_templates/strings/en.yaml"
            ) from None
        raise TemplateError(
            f"{_where(exc, name)}: unknown variable {variable!r}; the template may use only "
            + ", ".join(sorted(context))
        ) from None


def _instruction_context(ins: Instruction, url_for: dict[str, str]) -> dict[str, Any]:
    def examples(group: Sequence[Any]) -> list[dict[str, str]]:
        return [{"url": ex.url or url_for[ex.media_name], "caption": ex.caption} for ex in group]

    return {
        "concept": ins.concept,
        "definition": ins.definition,
        "counts": list(ins.counts),
        "does_not_count": list(ins.does_not_count),
        "positive": examples(ins.positive),
        "negative": examples(ins.negative),
        "body_html": ins.body_html,
    }


def media_url(base: str, name: str) -> str:
    """Join the image base URL and a media file name.

    Args:
        base: Where the media folder is served (``https://...``, ``http://...`` or a
            relative folder such as ``media``).
        name: File name under it.

    Returns:
        The URL.
    """
    return f"{base.rstrip('/')}/{name}" if base else name


def render_hit(
    *,
    task: str,
    concept: str | None,
    classes: Sequence[str],
    instructions: Sequence[Instruction],
    item_urls: Sequence[tuple[str, str]],
    image_base_url: str,
    template_dir: Path | None = None,
    env: jinja2.Environment | None = None,
    strings: Strings | None = None,
) -> RenderedHit:
    """Render one HIT as a document, a fragment and HTMLQuestion XML.

    Args:
        task: ``binary`` or ``multi``.
        concept: The concept asked about (binary), else None.
        classes: Class names offered (multi), else empty.
        instructions: Instructions shown, one per concept or class.
        item_urls: ``(field, image URL)`` per item, in page order.
        image_base_url: Base URL of the media folder (for example images).
        template_dir: Folder overriding the packaged templates.
        env: A ready environment (saves building one per HIT).
        strings: The words of the page (:func:`turk.hits.language.load_strings`); None
            is English.

    Returns:
        The :class:`RenderedHit`.

    Raises:
        TemplateError: See :func:`render_template`.
    """
    if task not in TASK_TEMPLATES:
        raise TemplateError(f"--task: {task!r} is not a task; use binary or multi")
    env = env or environment(template_dir)
    strings = strings if strings is not None else load_strings(template_dir=template_dir)
    url_for = {
        ex.media_name: media_url(image_base_url, ex.media_name)
        for ins in instructions
        for ex in (*ins.positive, *ins.negative)
        if ex.media_name
    }
    context: dict[str, Any] = {
        "task": task,
        "classes": list(classes),
        "instructions": [_instruction_context(ins, url_for) for ins in instructions],
        "items": [{"field": field, "url": url} for field, url in item_urls],
        "language": strings.language,
        "t": strings,
        "script_strings": script_json({key: strings[key] for key in SCRIPT_KEYS}),
    }
    if task == "binary":
        context["concept"] = concept
    name = TASK_TEMPLATES[task]
    document = render_template(env, name, {**context, "standalone": True})
    fragment = render_template(env, name, {**context, "standalone": False})
    return RenderedHit(document, fragment, html_question(document))


def html_question(document: str) -> str:
    """Wrap an HTML document in MTurk's HTMLQuestion XML.

    Args:
        document: The complete HTML document.

    Returns:
        The XML, with the document in CDATA (any ``]]>`` split safely).
    """
    content = document.replace("]]>", "]]]]><![CDATA[>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<HTMLQuestion xmlns="{HTML_QUESTION_NS}">\n'
        f"<HTMLContent><![CDATA[{content}]]></HTMLContent>\n"
        f"<FrameHeight>{FRAME_HEIGHT}</FrameHeight>\n"
        "</HTMLQuestion>\n"
    )
