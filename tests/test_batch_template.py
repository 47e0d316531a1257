"""Batch templates: one template per batch, one escaped row per HIT, nothing to inject."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.fixtures.templates import CandidateLedger
from turk.errors import TemplateError
from turk.hits.batch import batch_templates, fill_template, image_variable
from turk.hits.plan import HitPlan, plan_hits

BASE = "https://media.example.org/m?x=1&y=2"


def _plans(cl: CandidateLedger, **options: object) -> list[HitPlan]:
    settings: dict[str, object] = {"gold": cl.gold, "image_base_url": BASE, **options}
    return plan_hits(cl.ledger, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("task", ["binary", "multi"])
def test_every_hit_is_its_template_filled_with_its_row(
    candidate_ledger: CandidateLedger, task: str
) -> None:
    plans = _plans(candidate_ledger, task=task, items_per_hit=5)
    templates = batch_templates(plans)
    by_key = {p.hit_key: p for p in plans}
    assert sorted(k for t in templates for k in t.hit_keys) == sorted(by_key)
    assert {t.batch_id for t in templates} == {p.batch_id for p in plans}
    for template in templates:
        assert "<form" not in template.html
        for key, row in zip(template.hit_keys, template.rows, strict=True):
            plan = by_key[key]
            assert template.variables == tuple(image_variable(i.position) for i in plan.items)
            assert set(row) == set(template.variables)
            assert fill_template(template.html, row) == plan.fragment
            # The server substitutes raw values, so the URL's & is escaped here.
            assert all("&amp;" in value and "&y" not in value for value in row.values())
            assert all(i.token not in template.html for i in plan.items)


def test_a_batch_with_short_hits_gets_a_template_per_item_count(
    candidate_ledger: CandidateLedger,
) -> None:
    plans = _plans(candidate_ledger, items_per_hit=7)
    sizes: dict[str, set[int]] = {}
    for plan in plans:
        sizes.setdefault(plan.batch_id, set()).add(len(plan.items))
    templates = batch_templates(plans)
    for batch_id, counts in sizes.items():
        names = [t.name for t in templates if t.batch_id == batch_id]
        assert len(names) == len(counts)
        if len(counts) > 1:
            assert sorted(names) == sorted(f"{batch_id}-n{n}" for n in counts)
        else:
            assert names == [batch_id]


def test_dollar_braces_in_the_page_text_are_not_variables(
    candidate_ledger: CandidateLedger,
) -> None:
    plan = _plans(candidate_ledger)[0]
    hostile = dataclasses.replace(
        plan, fragment=plan.fragment.replace("</details>", "${image_url_0} ${x}</details>", 1)
    )
    (template,) = batch_templates([hostile])
    assert "&#36;{image_url_0} &#36;{x}" in template.html
    filled = fill_template(template.html, template.rows[0])
    assert filled.count("&#36;{") == 2


def test_dollar_braces_in_a_script_are_refused(candidate_ledger: CandidateLedger) -> None:
    plan = _plans(candidate_ledger)[0]
    hostile = dataclasses.replace(plan, fragment=plan.fragment + "<script>`${a}`</script>")
    with pytest.raises(TemplateError, match=r"<script> element contains '\$\{'"):
        batch_templates([hostile])


def test_pages_of_a_batch_must_differ_only_in_images(candidate_ledger: CandidateLedger) -> None:
    first, second = [p for p in _plans(candidate_ledger) if len(p.items) == 12][:2]
    odd = dataclasses.replace(
        second, batch_id=first.batch_id, fragment=second.fragment + "<p>x</p>"
    )
    with pytest.raises(TemplateError, match=f"{odd.hit_key}: page differs"):
        batch_templates([first, odd])


def test_fill_names_a_missing_variable(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"\$\{image_url_3\} has no value"):
        fill_template('<img src="${image_url_3}">', {})
