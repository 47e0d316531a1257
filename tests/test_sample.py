"""``turk sample``: the sample collection's files, determinism and the images' content."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import yaml
from PIL import Image, ImageStat

from tests.fixtures.collection import SAMPLE_N
from tests.fixtures.core import CliRunner
from turk.collection.sample import CONCEPTS, write_sample


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sample_layout(sample_dir: Path) -> None:
    lines = (sample_dir / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    good = [line.split("\t") for line in lines if line.count("\t") == 24]
    assert len(lines) == SAMPLE_N + 2 + 3  # photos, videos, malformed
    assert len(good) >= SAMPLE_N + 2
    assert [int(f[0]) for f in (line.split("\t") for line in lines)] == list(range(len(lines)))
    uploaded = [int(f[6]) for f in good if f[6].isdigit()]
    years = {1970 + t // 31_556_952 for t in uploaded}
    assert min(years) <= 2005 and max(years) >= 2013
    assert {f[24] for f in good} == {"0", "1"}
    assert any("+" in f[8] or "%" in f[8] for f in good)  # URL-encoded titles
    truth = read_csv(sample_dir / "truth.csv")
    assert len(truth) == SAMPLE_N
    counts = Counter(r["concept"] for r in truth)
    assert set(counts) == {*CONCEPTS, "none"}
    assert 0.45 < 1 - counts["none"] / SAMPLE_N < 0.75
    urls = {f[1]: f[16] for f in good if f[24] == "0"}
    for row in truth[:20]:
        path = sample_dir / row["file"]
        assert urls[row["image"]] == path.resolve().as_uri()
        with Image.open(path) as img:
            assert img.format == "JPEG" and img.size == (160, 120)


def test_gold_and_concepts(sample_dir: Path) -> None:
    truth = {r["image"]: r["concept"] for r in read_csv(sample_dir / "truth.csv")}
    gold = read_csv(sample_dir / "gold.csv")
    for concept in CONCEPTS:
        rows = [g for g in gold if g["concept"] == concept]
        assert {g["label"] for g in rows} == {"yes", "no"}
        for g in rows:
            assert (truth[g["image"]] == concept) == (g["label"] == "yes")
    spec = yaml.safe_load((sample_dir / "concepts.yaml").read_text())
    assert [c["name"] for c in spec["concepts"]] == list(CONCEPTS)
    assert all(2 <= len(c["prompts"]) <= 3 for c in spec["concepts"])
    assert spec["settings"]["images_per_class"] == 12
    assert spec["settings"]["query_depth"] == 40


def test_images_differ_by_concept_and_are_unique(sample_dir: Path) -> None:
    truth = read_csv(sample_dir / "truth.csv")
    digests = {hashlib.sha256((sample_dir / r["file"]).read_bytes()).hexdigest() for r in truth}
    assert len(digests) == len(truth)
    means: dict[str, list[float]] = {}
    for concept in [*CONCEPTS, "none"]:
        files = [r["file"] for r in truth if r["concept"] == concept][:8]
        stats = [ImageStat.Stat(Image.open(sample_dir / f).convert("RGB")).mean for f in files]
        means[concept] = [sum(s[i] for s in stats) / len(stats) for i in range(3)]
    # Soccer pitches are green, hockey rinks near white: the scenes really differ.
    assert means["soccer"][1] > means["soccer"][0] + 40
    assert min(means["hockey"]) > 170


def test_deterministic_and_reused(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a", n=30, seed=3, image_size=(64, 48))
    b = write_sample(tmp_path / "b", n=30, seed=3, image_size=(64, 48))
    for name in ("metadata.tsv", "truth.csv", "gold.csv"):
        ta = (tmp_path / "a" / name).read_text().replace(str((tmp_path / "a").resolve()), "X")
        tb = (tmp_path / "b" / name).read_text().replace(str((tmp_path / "b").resolve()), "X")
        assert ta == tb
    first = sorted((tmp_path / "a" / "images").iterdir())[0]
    assert first.read_bytes() == (tmp_path / "b" / "images" / first.name).read_bytes()
    assert not a.reused and write_sample(tmp_path / "a", n=30, seed=3, image_size=(64, 48)).reused
    other = write_sample(tmp_path / "a", n=30, seed=4, image_size=(64, 48))
    assert not other.reused and b.images == other.images == 30


def test_metadata_only_cli(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("sample", tmp_path / "m", "--n", "5000", "--metadata-only")
    assert result.exit_code == 0, result.stderr
    assert "5,000 photos" in result.stdout
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["metadata.tsv", "sample.json"]
    assert len((tmp_path / "m" / "metadata.tsv").read_text().splitlines()) == 5000 + 50 + 12


def test_bad_sample_options(cli: CliRunner, tmp_path: Path) -> None:
    for args, message in [
        (("--image-size", "big"), "--image-size 'big'"),
        (("--image-size", "10x10"), "between 32 and 4096"),
        (("--n", "0"), "--n 0"),
    ]:
        result = cli("sample", tmp_path / "s", *args)
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert message in result.stderr


def test_scenes_side_file_records_kinds_as_documented(sample_dir: Path) -> None:
    from turk.collection.sample import KINDS_CONCEPT, KINDS_NONE, SCENES_FILE, SCENES_HEADER

    truth = {r["image"]: r["concept"] for r in read_csv(sample_dir / "truth.csv")}
    scenes = read_csv(sample_dir / SCENES_FILE)
    assert list(scenes[0]) == list(SCENES_HEADER)
    assert {r["image"] for r in scenes} == set(truth)
    concept_kinds = {k for k, _ in KINDS_CONCEPT}
    none_kinds = {k for k, _ in KINDS_NONE}
    for row in scenes:
        concept = truth[row["image"]]
        if concept == "none":
            assert row["kind"] in none_kinds
            if row["kind"] == "hard":  # shares context or shape with a concept, shows none
                assert row["scene"] not in CONCEPTS
        else:
            assert row["kind"] in concept_kinds and row["scene"] == concept
            if row["kind"] == "trap":  # the written word names another concept
                assert row["word"] and row["word"].lower() != concept
                assert row["word"].lower() in CONCEPTS
    kinds = Counter(r["kind"] for r in scenes)
    assert {"clean", "hard", "trap", "distractor"} <= set(kinds)
