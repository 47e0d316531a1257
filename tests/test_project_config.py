"""turk.yaml: defaults, relative paths, and every kind of bad file named with key and fix."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.project import edit_yaml
from turk.errors import ConfigError
from turk.project.config import check_budget, find_project, load_project


def test_starter_project_loads_with_defaults_and_paths_relative_to_the_file(
    starter_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_project(starter_project / "turk.yaml")
    assert config.ledger == starter_project / "turk.db"
    assert config.collection.metadata == (starter_project / "data" / "yfcc100m_dataset.bz2",)
    assert config.concepts == starter_project / "concepts.yaml"
    assert config.hits.instructions == str(starter_project / "instructions")
    assert config.hit_type.reward == Decimal("0.05")
    assert config.hit_type.lifetime_s == 7 * 86400
    assert config.budget == Decimal("25.00")
    assert config.buckets.reserve == (0,)
    assert config.crowd.target == "local"
    assert config.certification.target == 0.99
    assert find_project(starter_project / "instructions") == starter_project / "turk.yaml"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("hit_typ", {"reward": 0.05}, "hit_typ: unknown key (did you mean 'hit_type'?)"),
        ("hit_type.rewrd", 0.05, "hit_type.rewrd: unknown key (did you mean 'reward'?)"),
        ("hits.items_per_hit", "ten", "hits.items_per_hit: expected a whole number, got 'ten'"),
        ("hits.items_per_hit", 0, "hits.items_per_hit: 0 is out of range; use 1 to 500"),
        ("collection.filters.photos_only", "yes", "expected true or false"),
        ("buckets.reserve", "zero", "buckets.reserve: expected a list of bucket numbers"),
        (
            "buckets.scheme",
            "by_year",
            "'by_year' is not one of count, by-year, ranges (did you mean 'by-year'?)",
        ),
        ("hit_type.reward", "five", "hit_type.reward: 'five' is not an amount"),
        ("hit_type.reward", 0.001, "hit_type.reward: 0.001 is not an amount"),
        ("hit_type.lifetime", "forever", "hit_type.lifetime: 'forever' is not a duration"),
        ("certification.target", 1.5, "certification.target: 1.5 is out of range"),
        ("certification.min_posterior", 0.3, "certification.min_posterior: 0.3 is out of range"),
        ("gold.rate", 0.9, "gold.rate: 0.9 is out of range"),
        ("crowd.target", "mturk", "crowd.image_base_url: missing"),
        ("crowd.live", True, "crowd.live: only means something for target mturk"),
        ("concepts", "nope.yaml", "concepts: nope.yaml does not exist"),
        ("gold.file", "known.csv", "gold.file: known.csv does not exist"),
        ("budget", 0.10, "budget: $0.10 cannot pay for one HIT"),
        ("budget", -3, "budget: -3 is not an amount"),
        ("hits", ["task"], "hits: expected a mapping of keys, got a list"),
        ("hits.language", "fr", "hits.language: no strings catalogue fr.yaml in "),
        ("hits.language", "zh", "hits.language: 'zh' names no script; use zh-Hans"),
        ("hit_type.max_total_assignments", 12, "MTurk cannot extend a HIT"),
        ("collection.metadata", None, "collection.metadata: missing"),
        ("embed.engine", "dask", "embed.engine: 'dask' is not one of local, ray"),
        ("embed.engine", "Ray", "(did you mean 'ray'?)"),
        ("embed.address", "auto", "embed.address: applies to the ray engine only"),
        ("embed.actors", 0, "embed.actors: 0 is out of range"),
    ],
)
def test_bad_project_file_names_key_and_fix(
    starter_project: Path, key: str, value: object, expected: str
) -> None:
    path = starter_project / "turk.yaml"
    edit_yaml(path, key, value)
    with pytest.raises(ConfigError) as error:
        load_project(path)
    message = str(error.value)
    assert expected in message
    assert message.startswith(f"{path}: line ") or "does not exist" in message
    assert "\n" not in message


def test_unknown_key_names_its_line(starter_project: Path) -> None:
    path = starter_project / "turk.yaml"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("  reward:"))
    lines.insert(index + 1, "  colour: blue")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"line {index + 2}: hit_type.colour: unknown key"):
        load_project(path)


def test_bad_yaml_syntax_names_the_line(starter_project: Path) -> None:
    path = starter_project / "turk.yaml"
    path.write_text("version: 1\nhits:\n  task: [binary\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML"):
        load_project(path)


def test_missing_project_file_says_to_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run 'turk init DIR'"):
        load_project(tmp_path / "turk.yaml")
    with pytest.raises(ConfigError, match=r"no turk\.yaml here or above"):
        find_project(tmp_path)


def test_budget_lower_than_published_cost(starter_project: Path) -> None:
    config = load_project(starter_project / "turk.yaml")
    check_budget(config, Decimal("25.00"))
    with pytest.raises(ConfigError, match=r"budget: \$25.00 is lower than the \$31.20 already"):
        check_budget(config, Decimal("31.20"))


def test_money_is_decimal_without_float_noise(starter_project: Path) -> None:
    path = starter_project / "turk.yaml"
    edit_yaml(path, "hit_type.reward", 0.07)
    edit_yaml(path, "budget", 100.1)
    config = load_project(path)
    assert config.hit_type.reward == Decimal("0.07")
    assert config.budget == Decimal("100.10")


def test_cli_reports_bad_project_in_one_line(cli, starter_project: Path) -> None:
    path = starter_project / "turk.yaml"
    edit_yaml(path, "hits.itmes_per_hit", 4)
    result = cli("run", "--project", path)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "hits.itmes_per_hit: unknown key (did you mean 'items_per_hit'?)" in lines[0]
    assert not (starter_project / "turk.db").exists()


def test_absolute_and_home_paths(starter_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(starter_project))
    path = starter_project / "turk.yaml"
    edit_yaml(path, "concepts", "~/concepts.yaml")
    edit_yaml(path, "ledger", str(starter_project / "state" / "ledger.db"))
    config = load_project(path)
    assert config.concepts == starter_project / "concepts.yaml"
    assert config.ledger == starter_project / "state" / "ledger.db"
    assert os.fspath(config.report_dir).startswith(os.fspath(starter_project))


def test_embed_section_engine_and_shard_location(starter_project: Path) -> None:
    path = starter_project / "turk.yaml"
    assert load_project(path).embed.engine == "local"
    edit_yaml(path, "embed.engine", "ray")
    edit_yaml(path, "embed.address", "ray://head:10001")
    edit_yaml(path, "embed.actors", 8)
    edit_yaml(path, "embed.out", "shared/embeddings")
    embed = load_project(path).embed
    assert (embed.engine, embed.address, embed.actors) == ("ray", "ray://head:10001", 8)
    assert embed.out == str(starter_project / "shared" / "embeddings")
    edit_yaml(path, "embed.out", "s3://bucket/embeddings")
    assert load_project(path).embed.out == "s3://bucket/embeddings"
