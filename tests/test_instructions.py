"""Instruction sets and template errors: packaged sets load; every mistake names file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.templates import CandidateLedger
from turk.errors import TemplateError
from turk.hits.instructions import (
    INSTRUCTIONS_DIR,
    available_sets,
    load_instruction,
    load_instruction_set,
    render_markdown,
    resolve_set,
)
from turk.hits.plan import plan_hits

CLEAR10 = ["laptop", "camera", "bus", "sweater", "dress", "racing", "hockey", "cosplay"]
CLEAR10 += ["baseball", "soccer"]
SAMPLE = ["bus", "camera", "laptop", "soccer", "hockey"]

VALID = """---
concept: kite
definition: A light frame covered in cloth, flown on a string.
counts: [Kites in the air]
does_not_count: [Paragliders]
examples:
  positive: [{image: kite.svg, caption: A kite}]
  negative: [{image: https://example.org/glider.jpg, caption: A glider}]
---
Some **bold** advice.
"""


def _write_set(folder: Path, text: str = VALID, name: str = "kite") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kite.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / f"{name}.md").write_text(text)
    return folder / f"{name}.md"


def test_packaged_sets_cover_clear10_and_the_sample() -> None:
    assert available_sets() == ["clear10", "sample"]
    for name, concepts in (("clear10", CLEAR10), ("sample", SAMPLE)):
        loaded = load_instruction_set(INSTRUCTIONS_DIR / name, concepts)
        assert list(loaded) == concepts
        for ins in loaded.values():
            assert ins.definition and ins.counts and ins.does_not_count
            assert ins.positive and ins.negative
            for ex in (*ins.positive, *ins.negative):
                assert ex.local_path is not None and ex.local_path.is_file()
                assert ex.media_name is not None and ex.media_name.startswith("ex-")
                assert ex.caption


def test_default_set_is_the_first_that_covers_every_concept(tmp_path: Path) -> None:
    assert resolve_set(None, SAMPLE) == INSTRUCTIONS_DIR / "sample"
    assert resolve_set(None, ["bus", "racing"]) == INSTRUCTIONS_DIR / "clear10"
    assert resolve_set("clear10", ["bus"]) == INSTRUCTIONS_DIR / "clear10"
    assert resolve_set(tmp_path, ["x"]) == tmp_path
    (tmp_path / "sample").mkdir()
    assert resolve_set(str(tmp_path / "sample"), ["x"]) == tmp_path / "sample"
    assert resolve_set("sample", ["bus"]) == INSTRUCTIONS_DIR / "sample"
    with pytest.raises(TemplateError, match=r"clear10: no instruction file for concept\(s\) kite"):
        resolve_set(None, ["bus", "kite"])
    with pytest.raises(TemplateError, match="--instructions: 'nope' is neither"):
        resolve_set("nope", ["bus"])


def test_valid_file_loads_with_examples_and_markdown(tmp_path: Path) -> None:
    ins = load_instruction(_write_set(tmp_path / "set"), "kite")
    assert ins.definition.startswith("A light frame")
    assert ins.positive[0].local_path == (tmp_path / "set" / "kite.svg").resolve()
    assert ins.negative[0].url == "https://example.org/glider.jpg"
    assert ins.negative[0].local_path is None
    assert str(ins.body_html) == "<p>Some <strong>bold</strong> advice.</p>"


def test_missing_instruction_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as info:
        load_instruction_set(tmp_path, ["kite"])
    assert f"{tmp_path / 'kite.md'}: missing instruction file for concept 'kite'" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("counts:", "colour: red\ncounts:", "unknown key 'colour'"),
        ("  positive: [{image: kite.svg, caption: A kite}]\n", "", "no examples"),
        (
            "kite.svg, caption",
            "kite.svg, size: 3, caption",
            "unknown key 'examples.positive[0].size'",
        ),
        ("image: kite.svg", "image: missing.svg", "key 'examples.positive[0].image': no file"),
        ("image: kite.svg", "image: ftp://x/y.jpg", "use a file path or an http(s) URL"),
        ("definition: A light frame covered in cloth, flown on a string.\n", "", "'definition'"),
        ("concept: kite", "concept: kites", "key 'concept' is 'kites'"),
        ("counts: [Kites in the air]", "counts: {a: 1}", "key 'counts' must be a list"),
        ("examples:\n", "examples:\n  neutral: []\n", "unknown key 'examples.neutral'"),
    ],
)
def test_bad_instruction_file_names_file_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in VALID
    path = _write_set(tmp_path / "set", VALID.replace(old, new))
    with pytest.raises(TemplateError, match=re.escape(message)) as info:
        load_instruction(path, "kite")
    assert str(info.value).startswith(f"{path}")


def test_no_examples_key_at_all(tmp_path: Path) -> None:
    text = VALID.split("examples:")[0] + "---\nbody\n"
    path = _write_set(tmp_path / "set", text)
    with pytest.raises(TemplateError, match=r"has no examples \(key 'examples.positive'\)"):
        load_instruction(path, "kite")


def test_front_matter_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = _write_set(tmp_path / "set", "no front matter here\n")
    with pytest.raises(TemplateError, match="no YAML front matter"):
        load_instruction(path, "kite")
    path = _write_set(tmp_path / "set", "---\nconcept: kite\ndefinition: [unclosed\n---\n")
    with pytest.raises(TemplateError, match=rf"{path}:\d+: front matter is not valid YAML"):
        load_instruction(path, "kite")


def test_markdown_is_escaped_with_a_small_safe_subset() -> None:
    html = str(
        render_markdown(
            "Hi <script>alert(1)</script> **b** *i* `c` [link](javascript:x)\n\n"
            "- one\n- two\n\n1. first\n\n## Head"
        )
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<strong>b</strong> <em>i</em> <code>c</code>" in html
    assert "<a " not in html and "[link](javascript:x)" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert "<ol><li>first</li></ol>" in html
    assert "<h5>Head</h5>" in html


def _templates(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_unknown_template_variable_names_file_line_and_variable(
    candidate_ledger: CandidateLedger, tmp_path: Path
) -> None:
    folder = _templates(
        tmp_path,
        "binary.html.j2",
        '{% extends "base.html.j2" %}\n{% block question %}Pay {{ reward }}{% endblock %}\n',
    )
    with pytest.raises(TemplateError) as info:
        plan_hits(candidate_ledger.ledger, image_base_url="m", template_dir=folder)
    message = str(info.value)
    assert f"{folder / 'binary.html.j2'}:2: unknown variable 'reward'" in message


def test_unknown_attribute_and_syntax_errors_name_the_file(
    candidate_ledger: CandidateLedger, tmp_path: Path
) -> None:
    folder = _templates(tmp_path, "_instruction.html.j2", "{{ ins.colour }}")
    with pytest.raises(TemplateError, match=r"_instruction.html.j2:1: unknown variable 'colour'"):
        plan_hits(candidate_ledger.ledger, image_base_url="m", template_dir=folder)
    folder = _templates(tmp_path, "_instruction.html.j2", "{% if %}")
    with pytest.raises(TemplateError, match=r"_instruction.html.j2:1: "):
        plan_hits(candidate_ledger.ledger, image_base_url="m", template_dir=folder)


def test_missing_instruction_for_a_concept_stops_planning(
    candidate_ledger: CandidateLedger, tmp_path: Path
) -> None:
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "bus.md").write_text(
        (INSTRUCTIONS_DIR / "sample" / "bus.md")
        .read_text()
        .replace("../clear10/examples/", str(INSTRUCTIONS_DIR / "clear10" / "examples") + "/")
    )
    with pytest.raises(TemplateError, match=rf"{folder / 'camera.md'}: missing instruction file"):
        plan_hits(candidate_ledger.ledger, image_base_url="m", instruction_set=folder)
    plans = plan_hits(
        candidate_ledger.ledger, image_base_url="m", instruction_set=folder, concepts=["bus"]
    )
    assert {p.concept for p in plans} == {"bus"}
