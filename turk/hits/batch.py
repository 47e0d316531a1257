"""HITs as a batch template plus one row of values per HIT (MTurk's batch layout).

MTurk's requester web UI, Turkle and most labelling vendors take work the same way: one
HTML template with ``${variable}`` placeholders and a CSV with one row per HIT, whose
columns are the template's variables. They substitute each row's values into the template
as they are, without escaping, and wrap the result in their own form with their own
Submit button. :func:`batch_templates` turns planned HITs into that shape:

- the template is the HIT's bare fragment (no form), with each item's image URL replaced
  by ``${image_url_<position>}``; everything else on the page (concept, instructions,
  examples, field names ``item-<position>``) is the same for every HIT of the batch;
- each row's values are the item URLs, HTML-escaped here, because the server will not;
- any ``${`` in the page's own text (a hostile concept name or instruction) is written
  ``&#36;{`` so no server takes it for a variable; a ``${`` inside a ``<script>`` or
  ``<style>`` element cannot be written that way and is refused.

HITs of one batch with different numbers of items (the last HIT of a batch is often
shorter) get one template each. :func:`fill_template` is the substitution the servers
do; every template is checked to give back each of its HITs' fragments exactly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from turk.errors import TemplateError
from turk.hits.plan import HitPlan

__all__ = ["BatchTemplate", "batch_templates", "fill_template", "image_variable"]

_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_RAW_TEXT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def image_variable(position: int) -> str:
    """Name of the template variable holding the image URL of item ``position``.

    Args:
        position: The item's 0-based position (its field is ``item-<position>``).

    Returns:
        ``image_url_<position>``.
    """
    return f"image_url_{position}"


@dataclass(frozen=True)
class BatchTemplate:
    """One template and the HITs that fill it.

    Attributes:
        name: ``<batch_id>`` or, where a batch needs several templates,
            ``<batch_id>-n<items>``.
        batch_id: The turk batch its HITs belong to.
        html: The bare HIT fragment with ``${image_url_<k>}`` placeholders.
        variables: The template's variables, in item order (the CSV's columns).
        hit_keys: The HIT of each row, in row order.
        rows: One mapping per HIT, variable -> value already HTML-escaped.
    """

    name: str
    batch_id: str
    html: str
    variables: tuple[str, ...]
    hit_keys: tuple[str, ...]
    rows: tuple[Mapping[str, str], ...]


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """Substitute ``${variable}`` placeholders as MTurk and Turkle do: values as given.

    Args:
        template: Template HTML.
        values: Value per variable, already escaped for HTML.

    Returns:
        The filled HTML.

    Raises:
        TemplateError: The template uses a variable ``values`` lacks.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(f"template variable ${{{name}}} has no value in the row")
        return values[name]

    return _VARIABLE.sub(value, template)


def _protect_dollars(fragment: str, where: str) -> str:
    """Write every ``${`` of the page's text as ``&#36;{``; refuse one in script or style."""
    out: list[str] = []
    last = 0
    for match in _RAW_TEXT.finditer(fragment):
        out.append(fragment[last : match.start()].replace("${", "&#36;{"))
        if "${" in match.group(0):
            raise TemplateError(
                f"{where}: a <{match.group(1).lower()}> element contains '${{', which batch "
                "servers substitute as a variable; write it as '$' + '{' in the template"
            )
        out.append(match.group(0))
        last = match.end()
    out.append(fragment[last:].replace("${", "&#36;{"))
    return "".join(out)


def _template_of(plan: HitPlan) -> tuple[str, dict[str, str]]:
    """The template a HIT fills and the HIT's row (escaped values)."""
    text = _protect_dollars(plan.fragment, plan.hit_key)
    row: dict[str, str] = {}
    urls = _image_sources(plan)
    for item in plan.items:
        url = urls[item.position]
        attribute = f'src="{html.escape(url, quote=True)}"'
        if text.count(attribute) != 1:
            raise TemplateError(
                f"{plan.hit_key}: image of {item.field} does not appear exactly once in the "
                "HIT's fragment; a custom template must show each item's image once"
            )
        variable = image_variable(item.position)
        text = text.replace(attribute, f'src="${{{variable}}}"')
        row[variable] = html.escape(url, quote=True)
    return text, row


def _image_sources(plan: HitPlan) -> dict[int, str]:
    """Each item's image URL as the page shows it, read from the fragment by token."""
    sources: dict[int, str] = {}
    for item in plan.items:
        found = re.search(r'src="([^"]*' + re.escape(item.token) + r'\.jpg)"', plan.fragment)
        if found is None:
            raise TemplateError(
                f"{plan.hit_key}: no image of {item.field} in the HIT's fragment; a custom "
                "template must show each item's image"
            )
        sources[item.position] = html.unescape(found.group(1))
    return sources


def batch_templates(plans: Iterable[HitPlan]) -> list[BatchTemplate]:
    """Group planned HITs into batch templates with one escaped row per HIT.

    Args:
        plans: Planned HITs, in publish order.

    Returns:
        One :class:`BatchTemplate` per batch and item count, in the order batches first
        appear.

    Raises:
        TemplateError: A HIT's page differs from its batch's template in more than its
            image URLs, or a template cannot be made safe (see the module docstring).
    """
    groups: dict[tuple[str, int], list[HitPlan]] = {}
    for plan in plans:
        groups.setdefault((plan.batch_id, len(plan.items)), []).append(plan)
    counts: dict[str, int] = {}
    for batch_id, _ in groups:
        counts[batch_id] = counts.get(batch_id, 0) + 1
    out: list[BatchTemplate] = []
    for (batch_id, n_items), members in groups.items():
        template, rows = "", []
        for plan in members:
            text, row = _template_of(plan)
            if not template:
                template = text
            elif text != template:
                raise TemplateError(
                    f"{plan.hit_key}: page differs from the rest of batch {batch_id} in more "
                    "than its images; a batch template needs pages that differ only there"
                )
            if fill_template(template, row) != _protect_dollars(plan.fragment, plan.hit_key):
                raise TemplateError(
                    f"{plan.hit_key}: filling the batch template does not give back the HIT"
                )
            rows.append(row)
        variables = tuple(image_variable(k) for k in range(n_items))
        out.append(
            BatchTemplate(
                name=batch_id if counts[batch_id] == 1 else f"{batch_id}-n{n_items}",
                batch_id=batch_id,
                html=template,
                variables=variables,
                hit_keys=tuple(p.hit_key for p in members),
                rows=tuple(rows),
            )
        )
    return out
