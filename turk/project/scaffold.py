"""``turk init``: write a new curation project folder.

A project holds ``turk.yaml`` (commented, every key with its default or a value that
fits), ``concepts.yaml``, ``instructions/`` (one instruction file per concept, in the
instruction-set format of :mod:`turk.hits.instructions`, with its example pictures),
``gold.csv`` (known answers) and a short ``README.md``. With ``from_sample`` the project
is filled from a fresh sample collection in ``<project>/sample`` (``turk sample``):
its metadata, images, concepts, gold and truth files, the demo model in ``models/``
(:mod:`retrieval.demomodel`: a tiny open_clip trained on synthetic sample scenes, not
CLIP) and simulated workers on the local sandbox, so ``turk run`` goes from nothing to
an exported dataset offline.

Files already present are kept as they are (they may hold the user's edits), except
that an existing ``turk.yaml`` stops the init: the folder is already a project.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from turk.crowd.backend import DEFAULT_LOCAL_ENDPOINT
from turk.errors import ConfigError, TemplateError
from turk.hits.instructions import INSTRUCTIONS_DIR, load_instruction
from turk.project.config import PROJECT_FILE, QUALIFIED_ACCURACY

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?", re.S | re.M)

STARTER_CONCEPTS = ("bus", "laptop")
"""Concepts of a project made without ``--from-sample`` (CLEAR-10 names, to edit)."""

STARTER_CONCEPTS_YAML = """\
# Concepts to curate: one entry per class. See docs/prompts.md for prompt engineering
# with 'turk preview'. The settings are CLEAR's: 300 positives per concept and bucket,
# picked from the top 16,000 of each bucket's CLIP ranking.
settings:
  images_per_class: 300      # positives kept per concept per bucket
  candidates_per_class: null # sent to people per concept per bucket (null: images_per_class)
  query_depth: 16000         # ranked depth per concept per bucket (>= images_per_class)
  allow_overlap: false       # false: an image stays only with its best-scoring concept
  background: true           # add a BACKGROUND class from the bottom of the rankings
  negative_ratio: 0.1        # background picks per bucket = ratio * images_per_class * concepts
  templates: openai_imagenet # prompt ensemble: null | openai_imagenet | [list of "{}" strings]
concepts:
  - name: bus
    prompts: ["bus", "double-decker bus", "city bus"]
    negatives: ["toy bus"]
  - name: laptop
    prompts: ["laptop", "notebook computer"]
"""

TURK_YAML = """\
# turk project file. Paths are relative to this file's folder.
# 'turk doctor' checks it; 'turk run' runs the pipeline from it (docs/tutorial.md).
version: 1
ledger: turk.db                  # the project's ledger (all state but images/embeddings)

collection:
  metadata:                      # YFCC100M metadata files (25 or 23 columns; .bz2/.gz ok)
{metadata}
  images: {images}              # folder of image files named <photo id>.jpg (any depth)
  filters:                       # CLEAR's filters (docs/yfcc100m.md)
    photos_only: true            # drop videos (marker 1)
    valid_date: false            # drop rows taken after they were uploaded
    min_bytes: null              # drop image files smaller than this
    min_edge: null               # drop images whose shorter side is below this (px)
    max_aspect: null             # drop images more elongated than this (long/short)

buckets:
  scheme: count                  # count (equal-count by upload time) | by-year | ranges
  count: {bucket_count}                      # buckets for the count scheme (CLEAR: 11)
  ranges: null                   # CLEAR-style ranges file for the ranges scheme
  reserve: [0]                   # unlabeled buckets (pre-training only)

model:
{model}  device: auto                   # auto | cpu | cuda
  batch_size: 256

embed:
  engine: local                  # local | ray (every GPU of a Ray cluster: docs/scale.md)
  out: null                      # shard folder or URL (s3://...); null: embeddings/

concepts: concepts.yaml          # concepts and prompts (docs/prompts.md)

hits:
  task: binary                   # binary (one concept per HIT) | multi (all classes)
  items_per_hit: 12              # images per HIT, gold included
  instructions: instructions     # one <concept>.md per concept (the workers read them)
  templates: null                # folder overriding the packaged HIT templates
  language: en                   # the HIT pages' words: en | zh-Hans (docs/languages.md)
  seed: 0

hit_type:                        # what workers see in the marketplace
  title: "Does each photo show a {{concept}}?"   # {{concept}}, {{items}}: filled per HIT
  description: >-
    Look at {{items}} photos and answer one quick question about each.
    Some photos have known answers and are checked.
  keywords: [image, photo, labeling, classification, quick]
  reward: 0.05                   # USD per assignment
  assignment_duration: 20m       # time to finish once accepted
  auto_approval_delay: 3d        # MTurk approves by itself after this
  lifetime: 7d                   # how long the HITs are offered
  max_assignments: 3             # workers per HIT (fees rise from 10)
  max_total_assignments: 5       # 'review.extend' may add up to this

qualifications:                  # who may work (docs/mturk.md)
  locale: []                     # e.g. [US, GB, CA]
  approval_rate: null            # e.g. 95 (percent)
  approved_hits: null            # e.g. 500
  exclude_blocked: true          # keep workers blocked by review away

budget: {budget}                    # USD cap on all committed on the target: HITs, bonuses, fees

crowd:
  target: local                  # local | turkle | mturk-sandbox | mturk (docs/mturk.md)
  endpoint: {endpoint}  # local: the sandbox; turk run starts one if none answers
  live: false                    # mturk only: true AND 'turk run --live' to spend real money
  image_base_url: null           # Amazon targets: public https URL of the media/ folder
  # turkle:                      # target turkle: your lab's Turkle server (docs/turkle.md)
  #   url: http://127.0.0.1:8770  # what 'turk turkle serve' prints
  #   token_env: TURKLE_TOKEN    # the variable holding its API token (never the token)
{workers}
gold:
  file: gold.csv                 # known answers: image,concept,label (yes|no)
  rate: 0.1                      # share of items that are gold

review:
  min_gold: 3                    # gold answers seen before a worker is judged
  min_accuracy: 0.8              # share of gold right needed to be paid
  approve_all: true              # approve all work the gold rule does not reject
  block_after: null              # block workers after this many rejections
  bonus: null                    # USD bonus for the most careful workers
  extend: false                  # add assignments to HITs with uncertain items

rounds:                          # fill every cell to its quota, round after round
  max_rounds: 4                  # rounds in all, round 1 included (1: one pass)
  min_yield: 0.1                 # stop a cell whose next candidates are this rarely right
  fill_chance: 0.8               # size each batch to fill its cell with this chance
  rerank: true                   # re-rank each concept's pool from the verdicts so far
  min_labels: 5                  # verdicts of each kind a concept needs to be re-ranked

certification:                   # docs/certification.md
  target: 0.99                   # precision to certify (CLEAR: 99%)
  confidence: 0.95
  aggregator: ds                 # ds | one-coin | mv | gold-mv | glad | mace
  min_posterior: 0.95            # posterior an item needs to be accepted
  audit:
{audit}

report:
  dir: report
export:
  dir: dataset                   # CLEAR layout (Avalanche-readable)
  link: hardlink                 # hardlink | symlink | copy
  test_fraction: 0.3
"""

_REAL_MODEL = """\
  name: ViT-B-32                 # open_clip model name, or a model config .json
  pretrained: laion2b_s34b_b79k  # pretrained tag, a weights file (.pt), or none (random)
"""

_DEMO_MODEL = """\
  # The demo model: a tiny open_clip trained on synthetic sample scenes, not CLIP. It
  # works offline on the sample only. For real photos use CLIP, e.g. name: ViT-B-32 and
  # pretrained: laion2b_s34b_b79k (downloaded once) or a weights file (.pt).
  name: {config}   # open_clip model name, or a model config .json
  pretrained: {weights}   # pretrained tag, a weights file (.pt), or none (random)
"""

_SAMPLE_WORKERS = """\
  simulated_workers:             # local or turkle: programs that answer from a truth file
    truth: sample/truth.csv
    n: 10
    seed: 0
    accuracy: [{low}, {high}]       # honest workers a qualification admits (all: 0.61-0.84)
"""

_SAMPLE_AUDIT = """\
    source: truth                # sample only: audit verdicts read from the known truth
    file: sample/truth.csv"""

_REAL_AUDIT = """\
    source: requester            # you mark a random sample in 'turk audit'
    file: null"""

README = """\
# {name}

A turk curation project{origin}.

- `turk.yaml`: what to curate and how (collection, buckets, model, HITs, budget, review,
  certification). Paths are relative to this folder.
- `concepts.yaml`: the concepts and their prompts.
- `instructions/`: what workers read about each concept (`<concept>.md`).
- `gold.csv`: known answers mixed into the HITs to measure each worker.
- `turk.db`: the ledger, written by `turk run`.

Work from this folder:

```bash
turk doctor                 # check the machine and this project
turk run --until rank       # ingest, buckets, embed, rank (no crowd yet)
turk preview --out preview  # look at what each concept's prompts retrieve
turk run                    # publish, collect, review, report, export
```

The user's guide of turk explains each step: docs/tutorial.md.
"""


@dataclass
class InitSummary:
    """What :func:`init_project` wrote.

    Attributes:
        project: The project folder.
        written: Files written, relative to the folder.
        kept: Files already there and left as they were.
        concepts: The project's concepts.
        sample_images: Photos of the sample collection (0 without one).
    """

    project: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)
    sample_images: int = 0


def _write(summary: InitSummary, relative: str, text: str) -> None:
    path = summary.project / relative
    if path.exists():
        summary.kept.append(relative)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    summary.written.append(relative)


def _copy_demo_model(summary: InitSummary, which: int) -> str:
    """Copy the demo model's config (``which=0``) or weights (1) into ``models/``."""
    from retrieval.demomodel import demo_model_paths

    source = demo_model_paths()[which]
    relative = f"models/{source.name}"
    target = summary.project / relative
    if target.exists():
        summary.kept.append(relative)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        summary.written.append(relative)
    return relative


def copy_instruction(source: Path, dest_dir: Path, concept: str) -> Path:
    """Copy an instruction file into a project with the example pictures it shows.

    Example pictures that are local files are copied to ``<dest_dir>/examples/`` and the
    file is rewritten to point there, so the project's set stands on its own.

    Args:
        source: The instruction file (``<concept>.md`` with front matter).
        dest_dir: The project's instruction folder.
        concept: The concept it describes.

    Returns:
        The written file.

    Raises:
        TemplateError: The source is not a usable instruction file.
    """
    text = source.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise TemplateError(f"{source}: no front matter; see the instruction-set format")
    meta = yaml.safe_load(match.group(1)) or {}
    body = text[match.end() :]
    examples = meta.get("examples") or {}
    for kind in ("positive", "negative"):
        for example in examples.get(kind) or []:
            image = str(example.get("image", ""))
            if not image or image.startswith(("http://", "https://")):
                continue
            picture = (source.parent / image).resolve()
            target = dest_dir / "examples" / picture.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copyfile(picture, target)
            example["image"] = f"examples/{picture.name}"
    dest = dest_dir / f"{concept}.md"
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=88)
    dest.write_text(f"---\n{front}---\n{body}", encoding="utf-8")
    load_instruction(dest, concept)  # the written file must load like any other
    return dest


def _packaged_instruction(concept: str) -> Path:
    for name in ("sample", "clear10"):
        path = INSTRUCTIONS_DIR / name / f"{concept}.md"
        if path.is_file():
            return path
    raise TemplateError(f"no packaged instruction file for concept {concept!r}")


def init_project(
    folder: str | os.PathLike[str],
    *,
    from_sample: bool = False,
    n: int = 2000,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
) -> InitSummary:
    """Write a new project into ``folder``.

    Args:
        folder: The project folder (created when missing).
        from_sample: Fill the project from a fresh sample collection in ``sample/``.
        n: Photos in the sample collection.
        seed: Seed of the sample collection.
        image_size: Size of the sample's JPEGs (default: the sample's own).

    Returns:
        The :class:`InitSummary`.

    Raises:
        ConfigError: ``folder`` already holds a ``turk.yaml``, or is a file.
    """
    project = Path(folder)
    if project.exists() and not project.is_dir():
        raise ConfigError(f"{project}: is a file; pass a folder for the new project")
    if (project / PROJECT_FILE).exists():
        raise ConfigError(
            f"{project / PROJECT_FILE}: already a project; edit it, or pass another folder"
        )
    project.mkdir(parents=True, exist_ok=True)
    summary = InitSummary(project=project)
    if from_sample:
        from turk.collection.sample import CONCEPTS, DEFAULT_IMAGE_SIZE, write_sample

        size = image_size or DEFAULT_IMAGE_SIZE
        sample = write_sample(project / "sample", n=n, seed=seed, image_size=size)
        summary.sample_images = sample.images
        concepts = list(CONCEPTS)
        concepts_text = (project / "sample" / "concepts.yaml").read_text(encoding="utf-8")
        gold_text = (project / "sample" / "gold.csv").read_text(encoding="utf-8")
        metadata = "    - sample/metadata.tsv"
        images = "sample/images"
        low, high = QUALIFIED_ACCURACY
        workers, audit = _SAMPLE_WORKERS.format(low=low, high=high), _SAMPLE_AUDIT
        bucket_count = 11 if sample.images >= 11 * 20 else max(1, sample.images // 20)
        budget = "50.00"
        origin = (
            f", filled from a sample collection of {sample.images:,} photos in sample/; it "
            "ranks them with the demo model in models/ (a tiny open_clip trained on "
            "synthetic sample scenes, not CLIP)"
        )
        model = _DEMO_MODEL.format(
            config=_copy_demo_model(summary, 0), weights=_copy_demo_model(summary, 1)
        )
    else:
        concepts = list(STARTER_CONCEPTS)
        concepts_text = STARTER_CONCEPTS_YAML
        gold_text = "image,concept,label\n"
        metadata = "    - data/yfcc100m_dataset.bz2   # see docs/yfcc100m.md"
        images = "data/images"
        workers, audit = "", _REAL_AUDIT
        bucket_count = 11
        budget = "25.00"
        origin = ""
        model = _REAL_MODEL
    summary.concepts = concepts
    _write(
        summary,
        PROJECT_FILE,
        TURK_YAML.format(
            metadata=metadata,
            images=images,
            bucket_count=bucket_count,
            endpoint=DEFAULT_LOCAL_ENDPOINT,
            model=model,
            budget=budget,
            workers=workers,
            audit=audit,
        ),
    )
    _write(summary, "concepts.yaml", concepts_text)
    _write(summary, "gold.csv", gold_text)
    _write(summary, "README.md", README.format(name=project.resolve().name, origin=origin))
    instructions = project / "instructions"
    for concept in concepts:
        relative = f"instructions/{concept}.md"
        if (project / relative).exists():
            summary.kept.append(relative)
            continue
        copy_instruction(_packaged_instruction(concept), instructions, concept)
        summary.written.append(relative)
    return summary
