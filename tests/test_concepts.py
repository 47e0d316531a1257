"""The concepts file: parsing, defaults, templates, and one clear error per mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from retrieval.concepts import load_concepts, openai_imagenet_templates
from retrieval.errors import ConceptsError

FULL = """\
settings:
  images_per_class: 5
  query_depth: 20
  allow_overlap: true
  background: false
  negative_ratio: 0.2
  templates: ["a photo of a {}.", "a {} in the wild."]
concepts:
  - name: bus
    prompts: ["bus", "double-decker bus"]
    prefix: "red"
    negatives: ["toy bus"]
  - name: camera
    prompts: camera
    templates: null
  - name: laptop
    templates: openai_imagenet
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "concepts.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_full_file(tmp_path):
    concepts = load_concepts(write(tmp_path, FULL))
    s = concepts.settings
    assert (s.images_per_class, s.query_depth, s.allow_overlap, s.background) == (
        5,
        20,
        True,
        False,
    )
    assert s.negative_ratio == 0.2 and s.background_per_concept == 0
    bus, camera, laptop = concepts.concepts
    assert concepts.names == ["bus", "camera", "laptop"]
    assert bus.prompts == ("bus", "double-decker bus") and bus.prefix == "red"
    assert bus.negatives == ("toy bus",)
    assert bus.templates == ("a photo of a {}.", "a {} in the wild.")
    assert camera.prompts == ("camera",) and camera.templates == ()
    assert laptop.prompts == ("laptop",) and len(laptop.templates) == 80


def test_defaults_are_clears(tmp_path):
    concepts = load_concepts(write(tmp_path, "concepts:\n  - name: bus\n    prompts: [bus]\n"))
    s = concepts.settings
    assert (s.images_per_class, s.query_depth, s.allow_overlap) == (300, 16000, False)
    assert s.background and s.negative_ratio == 0.1 and s.background_per_concept == 30
    assert concepts.concepts[0].templates == tuple(openai_imagenet_templates())


def test_openai_templates_are_the_80_published_ones():
    import open_clip.zero_shot_metadata as meta

    ours = openai_imagenet_templates()
    assert len(ours) == 80 and all(t.count("{}") == 1 for t in ours)
    assert ours == [t("{}") for t in meta.OPENAI_IMAGENET_TEMPLATES]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "settings:\n  images_per_clas: 3\nconcepts: [bus]\n",
            r"concepts.yaml:2: unknown key 'settings.images_per_clas'; did you mean "
            r"'images_per_class'\?",
        ),
        (
            "concepts:\n  - name: bus\n    promts: [bus]\n",
            r":3: unknown key 'concepts\[0\].promts'; did you mean 'prompts'\?",
        ),
        ("concept:\n  - name: bus\n", r":1: unknown key 'concept'; did you mean 'concepts'\?"),
        ("concepts:\n  - name: bus\n    prompts: []\n", r":3: 'concepts\[0\].prompts' is empty"),
        (
            "concepts:\n  - name: bus\n    prompts: ['bus', '  ']\n",
            r"'concepts\[0\].prompts\[1\]' is empty",
        ),
        (
            "settings:\n  images_per_class: 50\n  query_depth: 10\nconcepts: [bus]\n",
            r":3: 'settings.query_depth' \(10\) is below 'settings.images_per_class' \(50\)",
        ),
        (
            "concepts:\n  - name: bus\n  - name: Bus\n",
            r":3: duplicate concept name 'Bus' \(first at concepts\[0\]\)",
        ),
        ("concepts:\n  - name: bus\n    templates: ['a photo']\n", r"has no \{\} where"),
        ("settings:\n  templates: imagenet80\nconcepts: [bus]\n", "unknown template set"),
        ("concepts: []\n", "'concepts' must be a non-empty list"),
        ("concepts:\n  - name: BACKGROUND\n", "reserved for the background class"),
        ("concepts:\n  - name: a/b\n", "has / "),
        ("settings:\n  allow_overlap: maybe\nconcepts: [bus]\n", "must be true or false"),
        ("settings:\n  negative_ratio: -1\nconcepts: [bus]\n", "negative_ratio' must be 0 to 10"),
        ("concepts: [bus\n", "not valid YAML"),
        ("", "empty concepts file"),
        ("settings: {}\nsettings: {}\nconcepts: [bus]\n", "duplicate key 'settings'"),
    ],
)
def test_bad_files_name_file_line_and_key(tmp_path, text, message):
    with pytest.raises(ConceptsError, match=message) as info:
        load_concepts(write(tmp_path, text))
    assert str(info.value).startswith(str(tmp_path / "concepts.yaml"))
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConceptsError, match="concepts file not found"):
        load_concepts(tmp_path / "nope.yaml")


def test_sample_collection_concepts_file_is_valid(sample_dir):
    concepts = load_concepts(sample_dir / "concepts.yaml")
    assert concepts.names == ["bus", "camera", "laptop", "soccer", "hockey"]
