"""turk render: validation as MTurk would, the 64 KB limit, cost with fees, files, the command."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.core import CliRunner
from tests.fixtures.templates import CandidateLedger, seed_candidates
from turk.errors import TemplateError
from turk.hits.html import html_question
from turk.hits.plan import HitPlan, plan_hits
from turk.hits.render import MAX_QUESTION_BYTES, dry_run, plan_problems, render_hits, validate_plan
from turk.ledger import Ledger

CLEAR10 = ["laptop", "camera", "bus", "sweater", "dress", "racing", "hockey", "cosplay"]
CLEAR10 += ["baseball", "soccer"]


def _one(cl: CandidateLedger, task: str = "binary") -> HitPlan:
    return plan_hits(cl.ledger, task=task, gold=cl.gold, image_base_url="https://m.example/x")[0]


def _with_html(plan: HitPlan, html: str) -> HitPlan:
    return dataclasses.replace(plan, html=html, question_xml=html_question(html))


@pytest.mark.parametrize("task", ["binary", "multi"])
def test_planned_hits_are_valid(candidate_ledger: CandidateLedger, task: str) -> None:
    plan = _one(candidate_ledger, task)
    assert plan_problems(plan) == []
    validate_plan(plan)


def test_twelve_items_with_all_ten_clear_classes_fit_in_64_kb(tmp_path: Path) -> None:
    with Ledger(tmp_path / "t.db") as ledger:
        cl = seed_candidates(ledger, tmp_path / "img", concepts=CLEAR10, buckets=[1], per_bucket=11)
        for task in ("binary", "multi"):
            plans = plan_hits(
                ledger,
                task=task,
                gold=cl.gold,
                image_base_url="https://very-long-bucket-name.s3.us-east-1.amazonaws.com/media",
            )
            big = max(plans, key=lambda p: len(p.question_xml))
            assert len(big.items) == 12
            assert len(big.question_xml.encode()) < MAX_QUESTION_BYTES
            validate_plan(big)


def test_over_64_kb_is_refused(candidate_ledger: CandidateLedger) -> None:
    plan = _one(candidate_ledger)
    padding = "<!--" + "x" * MAX_QUESTION_BYTES + "-->"
    big = _with_html(plan, plan.html.replace("</body>", padding + "</body>"))
    with pytest.raises(TemplateError, match=rf"HIT {plan.hit_key}: Question is [\d,]+ bytes, over"):
        validate_plan(big)


def test_malformed_xml_is_refused(candidate_ledger: CandidateLedger) -> None:
    plan = _one(candidate_ledger)
    broken = dataclasses.replace(plan, question_xml=plan.question_xml.replace("</HTMLContent>", ""))
    with pytest.raises(TemplateError, match="HTMLQuestion XML is not well-formed"):
        validate_plan(broken)
    entity_bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        "<HTMLQuestion><HTMLContent>&a;</HTMLContent></HTMLQuestion>"
    )
    problems = plan_problems(dataclasses.replace(plan, question_xml=entity_bomb))
    assert problems and "not well-formed" in problems[0]


def test_cdata_end_in_the_page_stays_well_formed(candidate_ledger: CandidateLedger) -> None:
    plan = _one(candidate_ledger)
    tricky = _with_html(plan, plan.html.replace("</body>", "<!-- ]]> --></body>"))
    assert plan_problems(tricky) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'name="item-3" value="yes"',
            'name="item-x" value="yes"',
            "no yes/no field for item-3",
        ),
        ('data-item="item-2"', 'data-item="item-9"', "items on the page are"),
        ('action="/mturk/externalSubmit"', 'action="/elsewhere"', "form posts to '/elsewhere'"),
        ('name="assignmentId"', 'name="aid"', "no hidden assignmentId field"),
        ('id="turk-form"', 'id="form"', "no <form id='turk-form'>"),
        ('data-task="binary"', 'data-task="multi"', "form data-task is 'multi'"),
        ('alt="Image 2"', 'alt="Image 2"><img src="x.jpg"', "item item-1 must hold exactly one"),
    ],
)
def test_contract_breaches_are_named(
    candidate_ledger: CandidateLedger, old: str, new: str, problem: str
) -> None:
    plan = _one(candidate_ledger)
    assert old in plan.html
    broken = _with_html(plan, plan.html.replace(old, new, 1))
    problems = plan_problems(broken)
    assert any(problem in p for p in problems), problems
    with pytest.raises(TemplateError, match=f"HIT {plan.hit_key}: "):
        validate_plan(broken)


def test_dry_run_reports_cost_both_sides_of_the_fee_boundary(
    candidate_ledger: CandidateLedger,
) -> None:
    cl = candidate_ledger
    below = dry_run(cl.ledger, reward=Decimal("0.10"), max_assignments=9, gold=cl.gold)
    above = dry_run(cl.ledger, reward=Decimal("0.10"), max_assignments=10, gold=cl.gold)
    assert below.hits == above.hits == 8
    assert below.items == 96 and below.gold_items == 8
    assert below.cost.fees == Decimal("1.44")  # 8 HITs x 9 x 0.02
    assert below.cost.total == Decimal("8.64")
    assert above.cost.fees == Decimal("3.20")  # 8 HITs x 10 x 0.04
    assert above.cost.total == Decimal("11.20")
    assert above.cost.per_item == Decimal("0.1273")  # over the 88 items to label
    text = "\n".join(above.lines())
    assert "HITs: 8 in 4 batch(es)" in text
    assert "8 gold, 8.3% gold" in text
    assert "$3.20 MTurk fees (40% commission, 10+ assignments) = $11.20 total" in text
    assert "20% commission) = $8.64 total" in "\n".join(below.lines())
    assert below.out_dir is None and below.files == 0


def test_dry_run_writes_pages_index_and_media(candidate_ledger: CandidateLedger, tmp_path: Path):
    out = tmp_path / "out"
    report = dry_run(
        candidate_ledger.ledger,
        reward=Decimal("0.05"),
        max_assignments=3,
        gold=candidate_ledger.gold,
        out_dir=out,
    )
    for plan in report.plans:
        assert (out / f"{plan.hit_key}.html").read_text() == plan.html
        assert (out / f"{plan.hit_key}.fragment.html").read_text() == plan.fragment
        for item in plan.items:
            assert (out / "media" / f"{item.token}.jpg").read_bytes() == Path(
                str(item.local_path)
            ).read_bytes()
        assert 'src="media/' in plan.html
    index = (out / "index.html").read_text()
    assert index.count("<tr>") == len(report.plans) + 1
    assert report.files == 2 * len(report.plans) + 1
    examples = list((out / "media").glob("ex-*.svg"))
    assert len(examples) == 4  # bus and camera: one positive and one negative each
    again = dry_run(candidate_ledger.ledger, reward=Decimal("0.05"), max_assignments=3, out_dir=out)
    assert again.media_files == 0 or again.media_files < report.media_files


def test_fragment_has_no_form_of_its_own(candidate_ledger: CandidateLedger) -> None:
    plan = _one(candidate_ledger, "multi")
    assert "<form" not in plan.fragment and "<html" not in plan.fragment
    assert 'data-task="multi"' in plan.fragment and 'data-classes="bus|camera"' in plan.fragment
    assert 'name="assignmentId"' not in plan.fragment


def test_render_hits_writes_into_a_new_folder(candidate_ledger: CandidateLedger, tmp_path: Path):
    plans = plan_hits(candidate_ledger.ledger, image_base_url="m", concepts=["bus"], buckets=[1])
    written = render_hits(plans, tmp_path / "a" / "b")
    assert written[-1] == tmp_path / "a" / "b" / "index.html"
    assert all(p.is_file() for p in written)


def test_render_command(cli: CliRunner, db_path: Path, tmp_path: Path) -> None:
    with Ledger(db_path) as ledger:
        cl = seed_candidates(ledger, tmp_path / "images")
    out = tmp_path / "hits"
    result = cli(
        "render", "--gold", cl.gold, "--reward", "0.10", "--max-assignments", "10",
        "--out", out, "--task", "multi", "--items-per-hit", "10",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "render: HITs: 12 in 2 batch(es)" in result.stdout
    assert "40% commission" in result.stdout
    assert (out / "index.html").is_file()
    assert len(list(out.glob("multi-*.fragment.html"))) == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reward", "0.001"], "turk: error: --reward: '0.001' has fractions of a cent"),
        (["--reward", "-1"], "turk: error: --reward: '-1' is negative"),
        (["--bonus", "x"], "turk: error: --bonus: 'x' is not an amount"),
        (["--task", "grid"], "turk: error: --task: 'grid' is not a task"),
        (["--gold-rate", "0.9"], "turk: error: --gold-rate: 0.9 must be between 0 and 0.5"),
        (["--instructions", "nope"], "turk: error: --instructions: 'nope' is neither"),
        (["--gold", "missing.csv"], "turk: error: missing.csv: gold file not found"),
    ],
)
def test_render_command_bad_input(
    cli: CliRunner, db_path: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    with Ledger(db_path) as ledger:
        seed_candidates(ledger, tmp_path / "images", per_bucket=2)
    before = db_path.read_bytes()
    result = cli("render", "--out", tmp_path / "hits", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "hits").exists()
    assert db_path.read_bytes() == before


def test_render_command_needs_a_ledger(cli: CliRunner, db_path: Path, tmp_path: Path) -> None:
    result = cli("render", "--out", tmp_path / "hits")
    assert result.exit_code == 1
    assert "no ledger here" in result.stderr
    assert not db_path.exists()
