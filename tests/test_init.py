"""turk init: a project that loads, instructions that load, nothing overwritten."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from turk.errors import ConfigError
from turk.hits.instructions import load_instruction_set
from turk.project.config import load_project
from turk.project.scaffold import STARTER_CONCEPTS, init_project


def test_init_writes_a_project_with_one_instruction_file_per_concept(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    summary = init_project(folder)
    assert set(summary.written) >= {"turk.yaml", "concepts.yaml", "gold.csv", "README.md"}
    assert summary.concepts == list(STARTER_CONCEPTS)
    instructions = load_instruction_set(folder / "instructions", summary.concepts)
    for concept, instruction in instructions.items():
        assert instruction.path == folder / "instructions" / f"{concept}.md"
        for example in (*instruction.positive, *instruction.negative):
            assert example.local_path is not None
            assert example.local_path.parent == (folder / "instructions" / "examples").resolve()
    text = (folder / "turk.yaml").read_text(encoding="utf-8")
    assert text.count("#") > 40  # commented for the reader
    with pytest.raises(
        ConfigError, match=r"collection.metadata: data/yfcc100m_dataset.bz2 does not exist"
    ):
        load_project(folder / "turk.yaml")
    config = load_project(folder / "turk.yaml", check_files=False)
    assert config.hits.instructions == str(folder / "instructions")


def test_init_refuses_an_existing_project_and_keeps_edited_files(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "concepts.yaml").write_text("concepts: [{name: bus}]\n", encoding="utf-8")
    summary = init_project(folder)
    assert "concepts.yaml" in summary.kept
    assert (folder / "concepts.yaml").read_text(encoding="utf-8") == "concepts: [{name: bus}]\n"
    before = (folder / "turk.yaml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="already a project"):
        init_project(folder)
    assert (folder / "turk.yaml").read_text(encoding="utf-8") == before
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="is a file"):
        init_project(tmp_path / "file")


def test_init_from_sample_via_cli_loads_strictly(cli, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = cli("init", folder, "--from-sample", "--n", 40)
    assert result.exit_code == 0, result.stderr
    assert "sample of 40 photos" in result.stdout
    config = load_project(folder / "turk.yaml")  # every named file exists
    assert config.collection.metadata == (folder / "sample" / "metadata.tsv",)
    assert config.crowd.simulated_workers is not None
    assert config.crowd.simulated_workers.truth == folder / "sample" / "truth.csv"
    assert config.certification.audit_source == "truth"
    assert config.buckets.count == 2  # sized to the sample
    with open(folder / "gold.csv", newline="", encoding="utf-8") as handle:
        gold = list(csv.DictReader(handle))
    assert gold and {row["concept"] for row in gold} <= set(config_concepts(folder))
    assert sorted(p.stem for p in (folder / "instructions").glob("*.md")) == sorted(
        config_concepts(folder)
    )
    again = cli("init", folder, "--from-sample")
    assert again.exit_code == 1
    assert "already a project" in again.stderr


def config_concepts(folder: Path) -> list[str]:
    import yaml

    data = yaml.safe_load((folder / "concepts.yaml").read_text(encoding="utf-8"))
    return [c["name"] for c in data["concepts"]]
