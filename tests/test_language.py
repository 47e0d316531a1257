"""The HIT pages' own words in a language: catalogues, planning, the 64 KB limit, the ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.fixtures.core import CliRunner
from tests.fixtures.crowd import CrowdProject
from tests.fixtures.templates import CandidateLedger, seed_candidates
from turk.crowd.tables import UNDETERMINED, languages_by_cell
from turk.errors import ConfigError, TemplateError
from turk.hits.html import script_json
from turk.hits.language import (
    STRINGS_DIR,
    Strings,
    available_languages,
    fill,
    load_strings,
    placeholders,
)
from turk.hits.plan import HitPlan, plan_hits
from turk.hits.render import MAX_QUESTION_BYTES, plan_problems, question_bytes, validate_plan
from turk.ledger import Ledger
from turk.project.config import load_project
from turk.project.defaults import command_defaults

ENGLISH = STRINGS_DIR / "en.yaml"


def _plans(cl: CandidateLedger, **options: object) -> list[HitPlan]:
    settings: dict[str, object] = {"gold": cl.gold, "image_base_url": "https://m.example/x"}
    return plan_hits(cl.ledger, **{**settings, **options})  # type: ignore[arg-type]


def _catalogue(folder: Path, code: str, text: str) -> Path:
    strings = folder / "strings"
    strings.mkdir(parents=True, exist_ok=True)
    (strings / f"{code}.yaml").write_text(text, encoding="utf-8")
    return folder


def _english_lines() -> list[str]:
    return [
        line
        for line in ENGLISH.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]


# -- the catalogues -------------------------------------------------------------------


def test_every_packaged_catalogue_has_exactly_the_keys_and_placeholders_of_en() -> None:
    english = load_strings("en")
    assert set(available_languages()) >= {"en", "zh-Hans"}
    for code in available_languages():
        strings = load_strings(code)
        assert strings.language == code and strings.path == STRINGS_DIR / f"{code}.yaml"
        assert list(strings) == list(english), code
        for key, text in strings.items():
            assert text.strip(), f"{code}.yaml: {key} is empty"
            assert placeholders(text) == placeholders(english[key]), f"{code}.yaml: {key}"
    chinese = load_strings("zh-Hans")
    assert chinese["submit"] == "提交" and chinese["answer_yes"] == "是"
    assert all(chinese[key] != english[key] for key in english), "an untranslated string"


def test_no_catalogue_key_hides_behind_an_attribute_of_t() -> None:
    # Templates read t.<key>; Jinja tries attributes first, so a key must not be one.
    assert not set(load_strings("en")) & set(dir(Strings("en", ENGLISH, {})))


def test_tags_match_case_insensitively_and_ambiguous_or_malformed_ones_are_refused() -> None:
    assert load_strings("ZH-hans").language == "zh-Hans"
    assert load_strings("EN").language == "en"
    with pytest.raises(ConfigError, match=r"--language: 'zh' names no script; use zh-Hans"):
        load_strings("zh")
    with pytest.raises(ConfigError, match=r"'zh_Hans' is not a BCP 47 language tag"):
        load_strings("zh_Hans")
    with pytest.raises(ConfigError, match=r"'\.\./en' is not a BCP 47"):
        load_strings("../en")


def test_unknown_language_names_where_it_looked_and_what_exists(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_strings("fr", tmp_path / "templates", option="hits.language")
    message = str(info.value)
    assert message.startswith("hits.language: no strings catalogue fr.yaml in ")
    assert str(tmp_path / "templates" / "strings") in message and str(STRINGS_DIR) in message
    assert "(languages: en, zh-Hans)" in message and "\n" not in message


def test_a_project_adds_a_language_in_its_template_folder(tmp_path: Path) -> None:
    lines = [line.replace('"Submit"', '"Envoyer"') for line in _english_lines()]
    folder = _catalogue(tmp_path / "templates", "fr", "\n".join(lines) + "\n")
    assert available_languages(folder) == ["en", "fr", "zh-Hans"]
    strings = load_strings("fr", folder)
    assert strings.language == "fr" and strings["submit"] == "Envoyer"
    # ... and may reword a packaged one, which wins over the packaged file
    _catalogue(folder, "en", "\n".join(_english_lines()).replace('"Submit"', '"Send"') + "\n")
    assert load_strings("en", folder)["submit"] == "Send"
    assert load_strings("en")["submit"] == "Submit"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda ls: [x for x in ls if not x.startswith("submit:")],
            r"fr.yaml: missing key 'submit'",
        ),
        (lambda ls: [*ls, 'colour: "blue"'], r"fr.yaml:\d+: unknown key 'colour'"),
        (
            lambda ls: [x if not x.startswith("answer_yes:") else "answer_yes: Yes" for x in ls],
            r"fr.yaml:\d+: key 'answer_yes' is not text \(YAML read True\); quote the value",
        ),
        (
            lambda ls: [x.replace("{concept}", "{name}") for x in ls],
            r"fr.yaml:\d+: key 'example_alt' must have the placeholders of en.yaml \({concept}\)",
        ),
        (lambda ls: ["submit: [Envoyer"], r"fr.yaml:\d+: not valid YAML"),
        (lambda ls: ["- a list"], r"fr.yaml: expected a mapping"),
    ],
)
def test_a_broken_catalogue_names_its_file_line_and_key(
    tmp_path: Path, change, expected: str
) -> None:
    folder = _catalogue(tmp_path / "templates", "fr", "\n".join(change(_english_lines())) + "\n")
    with pytest.raises(TemplateError, match=expected) as info:
        load_strings("fr", folder)
    assert str(folder / "strings" / "fr.yaml") in str(info.value)
    assert "\n" not in str(info.value)


def test_fill_escapes_text_and_values_but_keeps_markup() -> None:
    from markupsafe import Markup

    assert fill("Not {concept} & co", concept="<b>") == "Not &lt;b&gt; &amp; co"
    assert fill("{concept}?", concept=Markup("<strong>x</strong>")) == "<strong>x</strong>?"
    with pytest.raises(TemplateError, match=r"needs a value for \{caption\}"):
        fill("Yes: {caption}")


def test_script_strings_cannot_close_the_script_and_keep_chinese_as_it_is() -> None:
    text = str(script_json({"a": "</script><!-- & \u2028\u2029", "b": "已回答"}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert "\\u003c/script\\u003e" in text and "\\u2028" in text
    assert "已回答" in text  # three UTF-8 bytes, not a six-byte \\u escape


# -- pages and plans ------------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multi"])
def test_a_chinese_hit_speaks_chinese_and_stays_valid(
    candidate_ledger: CandidateLedger, task: str
) -> None:
    plan = _plans(candidate_ledger, task=task, language="zh-Hans")[0]
    assert plan.language == "zh-Hans"
    assert '<html lang="zh-Hans">' in plan.html and 'lang="zh-Hans" data-task' in plan.fragment
    assert ">提交</button>" in plan.html and "<summary>说明</summary>" in plan.html
    assert "按键：" in plan.html and "Keys:" not in plan.html
    english = load_strings("en")
    for text in (v for v in english.values() if not placeholders(v)):
        assert f">{text}<" not in plan.html and f"> {text}<" not in plan.html, text
    if task == "binary":
        assert "是否显示了<strong>bus</strong>？" in plan.html and "> 是</label>" in plan.html
    else:
        assert "<strong>以上都不是</strong>" in plan.html
    assert '"status_incomplete": "已回答 {answered} / {total}' in plan.html
    assert plan_problems(plan) == []


def test_the_language_is_part_of_the_batch_keys_and_english_keys_are_unchanged(
    candidate_ledger: CandidateLedger,
) -> None:
    english = {p.batch_id for p in _plans(candidate_ledger)}
    # The keys these batches had before HIT pages had a language: a ledger's published
    # English HITs must still be recognised, or a rerun would publish them twice.
    assert english == {
        "binary-bus-b01-daface7a",
        "binary-bus-b02-b0e1834f",
        "binary-camera-b01-901f7d37",
        "binary-camera-b02-c5d565f8",
    }
    chinese = {p.batch_id for p in _plans(candidate_ledger, language="zh-Hans")}
    assert len(chinese) == len(english) and chinese.isdisjoint(english)
    assert chinese == {p.batch_id for p in _plans(candidate_ledger, language="zh-hans")}


def test_an_old_user_template_without_strings_still_renders(
    candidate_ledger: CandidateLedger, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "binary.html.j2").write_text(
        '{% extends "base.html.j2" %}\n{% block question %}Is it a {{ concept }}?{% endblock %}\n'
        '{% block answer %}<label><input type="radio" name="{{ item.field }}" value="yes"> Y'
        '</label><label><input type="radio" name="{{ item.field }}" value="no"> N</label>'
        "{% endblock %}\n"
    )
    plan = _plans(candidate_ledger, template_dir=folder, language="zh-Hans")[0]
    assert "Is it a bus?" in plan.html and ">提交</button>" in plan.html
    validate_plan(plan)


def test_a_template_that_says_another_language_is_refused(
    candidate_ledger: CandidateLedger, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    base = (STRINGS_DIR.parent / "base.html.j2").read_text(encoding="utf-8")
    (folder / "base.html.j2").write_text(
        base.replace('<html lang="{{ language }}">', '<html lang="en">')
    )
    assert plan_problems(_plans(candidate_ledger, template_dir=folder)[0]) == []
    plan = _plans(candidate_ledger, template_dir=folder, language="zh-Hans")[0]
    with pytest.raises(TemplateError, match=r"says <html lang='en'> but its words are 'zh-Hans'"):
        validate_plan(plan)


def test_unknown_strings_and_variables_name_the_template(
    candidate_ledger: CandidateLedger, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "binary.html.j2").write_text(
        '{% extends "base.html.j2" %}\n{% block question %}{{ t.colour }}{% endblock %}\n'
    )
    with pytest.raises(TemplateError, match=r"binary.html.j2:2: unknown string 't.colour'"):
        _plans(candidate_ledger, template_dir=folder)
    (folder / "binary.html.j2").write_text(
        '{% extends "base.html.j2" %}\n{% block question %}{{ reward }}{% endblock %}\n'
    )
    with pytest.raises(TemplateError) as info:
        _plans(candidate_ledger, template_dir=folder)
    assert str(info.value).endswith(
        "may use only classes, concept, instructions, items, language, script_strings, "
        "standalone, t, task"
    )


# -- the 64 KB limit in UTF-8 bytes ---------------------------------------------------


def _chinese_set(folder: Path, concepts: list[str], definition: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ex.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    for name in concepts:
        (folder / f"{name}.md").write_text(
            "---\n"
            f"concept: {name}\n"
            f"definition: '{definition}'\n"
            "counts: [停在路边的公共汽车, 双层巴士]\n"
            "does_not_count: [玩具车, 卡车]\n"
            "examples:\n  positive: [{image: ex.svg, caption: 一辆城市公交车}]\n"
            "---\n"
            "只有图片中出现该物体时才回答**是**。\n",
            encoding="utf-8",
        )
    return folder


def test_the_question_limit_counts_utf8_bytes_of_chinese_text(tmp_path: Path) -> None:
    with Ledger(tmp_path / "t.db") as ledger:
        cl = seed_candidates(ledger, tmp_path / "img", concepts=["bus"], buckets=[1])

        def plan_with(chars: int) -> HitPlan:
            folder = _chinese_set(tmp_path / f"set-{chars}", ["bus"], "公" * chars)
            return plan_hits(
                ledger,
                gold=cl.gold,
                image_base_url="https://m.example/x",
                instruction_set=folder,
                language="zh-Hans",
            )[0]

        small = plan_with(10)
        # Room left under the limit, in bytes; each added character costs three.
        room = MAX_QUESTION_BYTES - question_bytes(small.question_xml)
        fits = plan_with(10 + room // 3)
        assert MAX_QUESTION_BYTES - 3 < question_bytes(fits.question_xml) <= MAX_QUESTION_BYTES
        assert plan_problems(fits) == []
        over = plan_with(10 + room // 3 + 1)
        assert question_bytes(over.question_xml) > MAX_QUESTION_BYTES
        # Counted in characters, as a str's len() would, it would look well under it.
        assert len(over.question_xml) < MAX_QUESTION_BYTES * 0.6
        with pytest.raises(TemplateError, match=r"Question is 65,53[6-8] bytes, over MTurk's"):
            validate_plan(over)


def test_twelve_chinese_items_with_ten_classes_fit(tmp_path: Path) -> None:
    classes = ["laptop", "camera", "bus", "sweater", "dress", "racing", "hockey", "cosplay"]
    classes += ["baseball", "soccer"]
    definition = "一种可以折叠的便携式个人电脑，屏幕和键盘连在一起，可以放在腿上或桌上使用。" * 2
    with Ledger(tmp_path / "t.db") as ledger:
        cl = seed_candidates(ledger, tmp_path / "img", concepts=classes, buckets=[1], per_bucket=11)
        folder = _chinese_set(tmp_path / "zh", classes, definition)
        plans = plan_hits(
            ledger,
            task="multi",
            gold=cl.gold,
            image_base_url="https://very-long-bucket-name.s3.us-east-1.amazonaws.com/media",
            instruction_set=folder,
            language="zh-Hans",
        )
        big = max(plans, key=lambda p: question_bytes(p.question_xml))
        assert len(big.items) == 12
        validate_plan(big)


# -- the project file, the command, the ledger ----------------------------------------


def test_project_language_reaches_render_and_publish(starter_project: Path) -> None:
    path = starter_project / "turk.yaml"
    config = load_project(path)
    assert config.hits.language == "en"
    path.write_text(
        path.read_text(encoding="utf-8").replace("language: en ", "language: zh-hans "),
        encoding="utf-8",
    )
    config = load_project(path)
    assert config.hits.language == "zh-Hans"
    defaults = command_defaults(config)
    assert defaults["render"]["language"] == defaults["publish"]["language"] == "zh-Hans"
    assert defaults["publish"]["templates"] is None


def test_render_command_in_chinese(cli: CliRunner, db_path: Path, tmp_path: Path) -> None:
    with Ledger(db_path) as ledger:
        seed_candidates(ledger, tmp_path / "images")
    out = tmp_path / "hits"
    result = cli("--db", db_path, "render", "--out", out, "--language", "zh-Hans")
    assert result.exit_code == 0, result.stderr
    pages = [p for p in out.glob("binary-*.html") if not p.name.endswith(".fragment.html")]
    assert pages and all('<html lang="zh-Hans">' in p.read_text("utf-8") for p in pages)
    bad = cli("--db", db_path, "render", "--out", out, "--language", "zh")
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines() == [
        "turk: error: --language: 'zh' names no script; use zh-Hans (Simplified) or "
        "zh-Hant (Traditional)"
    ]


def _hits(project: CrowdProject) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(project.db_path)
    try:
        return conn.execute("SELECT batch_id, hit_key, language FROM hits ORDER BY id").fetchall()
    finally:
        conn.close()


def test_published_hits_record_their_language_per_cell(
    cli: CliRunner, crowd_project: CrowdProject
) -> None:
    base = [
        "--db",
        crowd_project.db_path,
        "publish",
        *crowd_project.cli_target(),
        "--media-dir",
        crowd_project.media_dir,
    ]
    english = cli(*base, "--concept", "bus")
    assert english.exit_code == 0, english.stderr
    chinese = cli(*base, "--language", "zh-Hans")
    assert chinese.exit_code == 0, chinese.stderr
    rows = _hits(crowd_project)
    assert {lang for _, _, lang in rows} == {"en", "zh-Hans"}
    by_batch = {batch: lang for batch, _, lang in rows}
    assert len(by_batch) == len({b for b, _, _ in rows})  # one language per batch
    with Ledger(crowd_project.db_path) as ledger:
        cells = languages_by_cell(ledger, "local")
        expected: dict[tuple[str, int], dict[str, int]] = {}
        conn = ledger.conn
        for concept, bucket, lang, n in conn.execute(
            "SELECT concept, bucket, language, COUNT(*) FROM hits GROUP BY 1, 2, 3"
        ):
            expected.setdefault((concept, bucket), {})[lang] = n
        assert cells == expected
        assert {lang for counts in cells.values() for lang in counts} == {"en", "zh-Hans"}
        assert all("en" in counts for (concept, _), counts in cells.items() if concept == "bus")
        assert languages_by_cell(ledger, "mturk-sandbox") == {}


def test_migration_41_fills_older_hits_from_their_pages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Ledger(path).close()
    # The ledger as turk left it before migration 41, with two HITs already published.
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE hits DROP COLUMN language")
    conn.execute("DELETE FROM _migrations WHERE id = 41")
    columns = (
        "target, batch_id, hit_key, token, annotation, task, concept, bucket, reward, "
        "max_assignments, max_total_assignments, lifetime_s, auto_approval_delay_s, cost, "
        "question_xml, created_at, hit_id"
    )
    pages = {
        "a": '<?xml version="1.0"?><HTMLQuestion><HTMLContent><![CDATA[<!DOCTYPE html>\n'
        '<html lang="en"><head>',
        "b": "<HTMLQuestion><HTMLContent><![CDATA[<html><head>",
    }
    for key, page in pages.items():
        conn.execute(
            f"INSERT INTO hits ({columns}) VALUES "
            "('local', 'b1', ?, ?, 'x', 'binary', 'bus', 1, '0.05', 3, 3, 60, 60, '0.18', ?, "
            "'2026-01-01', ?)",
            (key, key, page, f"H{key}"),
        )
    conn.commit()
    conn.close()
    with Ledger(path) as ledger:
        assert ledger.applied_migrations == [41]
        got = dict(ledger.conn.execute("SELECT hit_key, language FROM hits").fetchall())
        assert got == {"a": "en", "b": None}
        assert languages_by_cell(ledger, "local") == {("bus", 1): {"en": 1, UNDETERMINED: 1}}


@pytest.mark.slow
def test_turk_run_publishes_a_chinese_project(cli: CliRunner, sample_project: Path) -> None:
    from tests.fixtures.project import edit_yaml
    from turk.project.pipeline import stage_settings

    path = sample_project / "turk.yaml"
    # English projects keep the publish fingerprint they had before hits.language.
    assert "hits.language" not in stage_settings(load_project(path), "publish")
    edit_yaml(path, "hits.language", "zh-Hans")
    assert stage_settings(load_project(path), "publish")["hits.language"] == "zh-Hans"
    result = cli("run", "--project", sample_project, "--until", "publish")
    assert result.exit_code == 0, result.stderr
    with Ledger(sample_project / "turk.db") as ledger:
        languages = ledger.conn.execute("SELECT DISTINCT language FROM hits").fetchall()
        pages = ledger.conn.execute("SELECT question_xml FROM hits").fetchall()
        cells = languages_by_cell(ledger, "local")
    assert languages == [("zh-Hans",)]
    assert pages and all('<html lang="zh-Hans">' in page for (page,) in pages)
    assert cells and all(set(counts) == {"zh-Hans"} for counts in cells.values())
