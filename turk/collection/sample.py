"""The sample collection (``turk sample OUTDIR``): a small YFCC100M look-alike for demos and tests.

Writes, deterministically for a seed (layout in ``docs/design.md``):

* ``metadata.tsv``: the 25-column ``yfcc100m_dataset`` layout, no header, with realistic
  values (URL-encoded text, users, devices, licenses, some geotags), upload times
  spread over 2004-2014, a few videos (marker 1) and a few deliberately malformed lines
  (wrong column count, bad upload time, bad longitude);
* ``images/<id>.jpg``: one real JPEG per photo, a drawn scene as hard as web retrieval.
  About 70% show a concept (a bus on a road, a camera with its lens, a laptop on a
  desk, a soccer pitch with a ball, an ice rink with sticks and a puck), as kinds
  (:data:`KINDS_CONCEPT`): 40% ``clean`` (the concept's name written on half of them),
  15% ``multi`` (a distractor scene inset beside the object), 12% ``small`` (the object
  small on a distractor scene), 10% ``cutoff`` (enlarged and cut by the frame), 10%
  ``colour`` (unusual colours: channels swapped), 13% ``trap`` (a written word that
  names another concept); 30% of multi, small, cutoff and colour photos carry their own
  name. The other 30% show no concept (:data:`KINDS_NONE`): 40% ``distractor`` scenes
  (mountains, pizza, flowers, beach, city, books; their word on half), 50% ``hard``
  negatives (:data:`POSTER_SHARE` of them a poster of a concept on a wall, the rest
  its context or a look-alike without it: a bus stop, a truck, a radio, binoculars, a
  monitor, an empty pitch, a ball on the beach, an empty rink, a ski slope; a quarter
  with the concept's name written on them) and 10% ``trap`` (a distractor scene with
  a concept's name written large). Download URLs are ``file://`` URLs of these files;
* ``scenes.csv`` (``image,kind,scene,other,word``): each photo's difficulty kind, the
  scene drawn, the distractor behind or beside it and the word written on it, for
  simulated workers (who err more on misleading kinds), training and benchmarks;
* ``truth.csv`` (``image,concept,file``, the ground truth), ``gold.csv``
  (``image,concept,label``: a few known yes and no answers per concept),
  ``concepts.yaml`` (the five concepts with prompts and settings sized for the sample)
  and ``sample.json`` (what was asked for, so a rerun with the same settings reuses the
  files).

``metadata_only`` writes only ``metadata.tsv`` (and ``sample.json``), fast enough for
benchmark inputs of millions of rows.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import numpy as np

from turk.errors import ConfigError, InputError

CONCEPTS: tuple[str, ...] = ("bus", "camera", "laptop", "soccer", "hockey")
"""The sample's concepts (CLEAR-10 class names)."""

NONE = "none"
"""Truth label of distractor images (no concept)."""

DISTRACTORS: tuple[str, ...] = ("mountains", "pizza", "flowers", "beach", "city", "books")
"""Scenes drawn for images of no concept."""

CONCEPT_SHARE = 0.7
"""Fraction of photos that show one of the concepts (the rest are distractors)."""

SCENES_FILE = "scenes.csv"
"""Side file of a sample: what each photo shows and how hard it is (truth.csv stays the truth)."""

SCENES_HEADER = ("image", "kind", "scene", "other", "word")
"""Columns of :data:`SCENES_FILE`: image id, difficulty kind, scene drawn, the distractor
scene behind or beside it (small, multi), the word written on it."""

DEFAULT_N = 2000
DEFAULT_IMAGE_SIZE = (500, 375)
_CHUNK = 10_000
SAMPLE_QUOTA = (12, 18, 40)
"""``images_per_class``, ``candidates_per_class`` and ``query_depth`` of a sample of
2,000 photos or fewer. A larger sample scales the quota and the depth with its size and
sends the quota first, as CLEAR's single pass did: the curation rounds fill the rest."""

_START = int(datetime(2004, 1, 1, tzinfo=UTC).timestamp())
_END = int(datetime(2014, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
_ID_STRIDE = 13_000

CONCEPTS_YAML = """\
# Concepts of the sample collection, with settings sized for it (CLEAR used
# images_per_class 300 and query_depth 16000 on YFCC100M).
settings:
  images_per_class: {quota}       # positives kept per concept per bucket
  candidates_per_class: {candidates}   # sent first: deeper than the quota (the top is not all true)
  query_depth: {depth}            # ranked depth per concept per bucket (what rounds draw from)
  allow_overlap: false       # an image stays only with its best-scoring concept
  background: true           # add a BACKGROUND class from the bottom of the rankings
  negative_ratio: 0.1        # background picks per bucket = ratio * images_per_class * concepts
  templates: openai_imagenet
concepts:
  - name: bus
    prompts: ["bus", "city bus", "double-decker bus"]
  - name: camera
    prompts: ["camera", "digital camera", "photo camera"]
  - name: laptop
    prompts: ["laptop", "notebook computer"]
  - name: soccer
    prompts: ["soccer", "soccer ball on a football pitch", "soccer match"]
  - name: hockey
    prompts: ["hockey", "ice hockey", "hockey stick and puck"]
"""

_TITLES: dict[str, list[str]] = {
    "bus": [
        "Bus at the station",
        "London bus",
        "Double decker",
        "School bus",
        "Red bus",
        "Waiting for the bus",
        "Bus stop",
        "Night bus",
        "Autobús en Madrid",
    ],
    "camera": [
        "My new camera",
        "Old film camera",
        "Camera collection",
        "Vintage camera",
        "Canon AE-1",
        "Rangefinder",
        "Kamera",
        "Lens test",
    ],
    "laptop": [
        "Working on my laptop",
        "New laptop",
        "Laptop on the desk",
        "MacBook",
        "Coffee & laptop",
        "Home office",
        "Notebook setup",
    ],
    "soccer": [
        "Soccer match",
        "Football game",
        "Kick off",
        "Goal!",
        "Soccer practice",
        "Fútbol",
        "Sunday league",
        "World Cup party",
    ],
    "hockey": [
        "Hockey game",
        "Ice hockey",
        "On the ice",
        "Hockey night",
        "Puck drop",
        "Face-off",
        "Rink side",
        "Eishockey",
    ],
    "mountains": ["Mountain view", "Alps", "Hiking trip", "Snowy peaks", "Zürich weekend"],
    "pizza": ["Pizza night", "Dinner", "Homemade pizza", "Margherita", "Lunch in Napoli"],
    "flowers": ["Flowers in the garden", "Spring", "Tulips", "Macro", "Bloom"],
    "beach": ["Beach day", "Sunset at the sea", "Summer holiday", "Waves", "Playa"],
    "city": ["City lights", "Downtown", "Skyline", "東京", "Street", "Architecture"],
    "books": ["Bookshelf", "Library", "Reading", "Old books", "Bibliothèque"],
}
_GENERIC_TITLES = ["IMG_{n}", "DSC{n}", "P{n}", "", "Untitled", "Holiday", "2008 trip"]
_TAGS: dict[str, list[str]] = {
    "bus": ["bus", "transport", "london", "street", "red", "doubledecker", "travel"],
    "camera": ["camera", "canon", "nikon", "film", "vintage", "photography", "lens"],
    "laptop": ["laptop", "computer", "apple", "macbook", "work", "desk", "office"],
    "soccer": ["soccer", "football", "futbol", "match", "goal", "sport", "ball"],
    "hockey": ["hockey", "icehockey", "nhl", "ice", "sport", "rink", "puck"],
    "mountains": ["mountains", "alps", "snow", "hiking", "landscape", "nature"],
    "pizza": ["pizza", "food", "dinner", "italy", "cheese", "yummy"],
    "flowers": ["flowers", "garden", "spring", "macro", "nature", "tulip"],
    "beach": ["beach", "sea", "sand", "summer", "ocean", "sunset"],
    "city": ["city", "night", "urban", "street", "building", "skyline"],
    "books": ["books", "library", "reading", "shelf", "literature"],
}
_DESCRIPTIONS = [
    "",
    "",
    "",
    "Taken on the way home.",
    "What a day!",
    "See more at my blog.",
    "Shot with a 50mm lens, f/1.8.",
    "Best viewed large.",
    "Merci à tous!",
    "One of my favourite shots from the trip.",
    "Straight out of camera, no edits.",
]
_DEVICES = [
    "Canon+EOS+400D+Digital",
    "Canon+PowerShot+A1100+IS",
    "NIKON+D70",
    "NIKON+D90",
    "Apple+iPhone+4",
    "SONY+DSC-W55",
    "Panasonic+DMC-FZ8",
    "FUJIFILM+FinePix+S5600",
    "",
    "",
]
_LICENSES = [
    (
        "Attribution-NonCommercial-ShareAlike License",
        "http://creativecommons.org/licenses/by-nc-sa/2.0/",
    ),
    ("Attribution-NonCommercial License", "http://creativecommons.org/licenses/by-nc/2.0/"),
    ("Attribution License", "http://creativecommons.org/licenses/by/2.0/"),
    ("Attribution-ShareAlike License", "http://creativecommons.org/licenses/by-sa/2.0/"),
    ("Attribution-NoDerivs License", "http://creativecommons.org/licenses/by-nd/2.0/"),
]
_LICENSE_NAMES = {name: quote_plus(name) for name, _url in _LICENSES}
_NAMES = [
    "john",
    "maria",
    "li",
    "ahmed",
    "sofia",
    "pierre",
    "yuki",
    "olga",
    "carlos",
    "anna",
    "josé",
    "björn",
    "priya",
    "kwame",
    "emma",
    "noah",
]


@dataclass
class SampleSummary:
    """What ``turk sample`` wrote.

    Attributes:
        out_dir: The sample folder.
        images: Photos written (each with a JPEG unless ``metadata_only``).
        videos: Video records (marker 1; no image file).
        malformed: Deliberately malformed metadata lines.
        concepts: Photos per true concept (``none`` for distractors).
        metadata_only: Whether only ``metadata.tsv`` was written.
        reused: True when an identical sample was already there and was kept.
    """

    out_dir: Path
    images: int = 0
    videos: int = 0
    malformed: int = 0
    concepts: Counter[str] = field(default_factory=Counter)
    metadata_only: bool = False
    reused: bool = False

    @property
    def metadata_path(self) -> Path:
        """The sample's ``metadata.tsv``."""
        return self.out_dir / "metadata.tsv"


def sample_concepts(n: int) -> str:
    """The sample's ``concepts.yaml`` for a sample of ``n`` photos (see :data:`SAMPLE_QUOTA`).

    Args:
        n: Photos in the sample.

    Returns:
        The file's text.
    """
    scale = max(1.0, n / 2000)
    quota, candidates, depth = (round(v * scale) for v in SAMPLE_QUOTA)
    if scale > 1:
        candidates = quota
    text = CONCEPTS_YAML.replace("{quota}", str(quota)).replace("{candidates}", str(candidates))
    return text.replace("{depth}", str(depth))


def parse_image_size(text: str) -> tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` (e.g. ``500x375``).

    Args:
        text: The size as given on the command line.

    Returns:
        ``(width, height)``.

    Raises:
        ConfigError: Not two positive integers joined by ``x``, or smaller than 32x32.
    """
    parts = text.lower().split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--image-size {text!r}: expected WIDTHxHEIGHT, e.g. 500x375") from None
    if width < 32 or height < 32 or width > 4096 or height > 4096:
        raise ConfigError(f"--image-size {text!r}: each side must be between 32 and 4096")
    return width, height


def _enc(texts: list[str]) -> list[str]:
    return [quote_plus(t) for t in texts]


@dataclass(frozen=True)
class _Vocab:
    """URL-encoded text pools, chosen by index per row (no per-row encoding)."""

    titles: dict[str, list[str]]
    tags: dict[str, list[str]]
    descriptions: list[str]
    users: list[tuple[str, str]]
    machine_tags: list[str]


def _vocab(seed: int) -> _Vocab:
    rnd = random.Random(f"vocab-{seed}")
    tags: dict[str, list[str]] = {}
    for topic, pool in _TAGS.items():
        # YFCC writes tags comma-separated, each tag URL-encoded.
        combos = [",".join(_enc(rnd.sample(pool, rnd.randint(1, 4)))) for _ in range(24)]
        tags[topic] = [*combos, ""]
    users = []
    for _ in range(300):
        nsid = f"{rnd.randint(10_000_000, 99_999_999)}@N{rnd.randint(0, 8):02d}"
        nick = (
            f"{rnd.choice(_NAMES)} {rnd.choice(_NAMES)}"
            if rnd.random() < 0.5
            else (f"{rnd.choice(_NAMES)}{rnd.randint(1, 9999)}")
        )
        users.append((nsid, quote_plus(nick)))
    machine = [
        "",
        "",
        "",
        _enc(["vision:outdoor=099,vision:sky=091"])[0],
        _enc(["camera:make=canon"])[0],
        _enc(["geo:locality=london"])[0],
    ]
    return _Vocab(
        titles={k: _enc(v) for k, v in _TITLES.items()},
        tags=tags,
        descriptions=_enc(_DESCRIPTIONS),
        users=users,
        machine_tags=machine,
    )


def _video_indices(records: int, videos: int) -> set[int]:
    return {int((j + 0.5) * records / videos) for j in range(videos)}


def _counts(n: int) -> tuple[int, int]:
    """(videos, malformed lines) for ``n`` photos: "a few" of each."""
    videos = 0 if n < 10 else max(2, n // 100)
    malformed = 0 if n < 10 else max(3, n // 400)
    return videos, malformed


def _topic_of(concept_index: int, pick: int) -> str:
    if concept_index < len(CONCEPTS):
        return CONCEPTS[concept_index]
    return DISTRACTORS[pick % len(DISTRACTORS)]


@dataclass(frozen=True)
class _Record:
    photo_id: int
    concept: str  # concept name or "none"
    topic: str  # concept name, distractor scene or hard-negative scene
    video: bool
    kind: str = "clean"  # difficulty kind (KINDS_CONCEPT, KINDS_NONE)
    other: str = ""  # the distractor scene behind a small object or inset beside it
    word: str = ""  # the word written on the photo ("" for none)


def _scene_record(pid: int, label: str, topic: str, video: bool, s: list[int]) -> _Record:
    """Choose a photo's difficulty kind, what it shows and the word written on it."""
    if label != NONE:
        kind = _pick_kind(KINDS_CONCEPT, s[0])
        other = DISTRACTORS[s[2] % len(DISTRACTORS)]
        if kind == "clean":
            word = topic.upper() if s[1] % 2 == 0 else ""
        elif kind == "trap":
            others = [c for c in CONCEPTS if c != label]
            word = others[s[1] % len(others)].upper()
        else:
            word = topic.upper() if s[1] % 10 < 3 else ""
        return _Record(pid, label, topic, video, kind, other, word)
    kind = _pick_kind(KINDS_NONE, s[0])
    if kind == "hard":
        imitated = CONCEPTS[s[2] % len(CONCEPTS)]
        scenes = _HARD_NEGATIVES[imitated]
        word = imitated.upper() if s[1] % 4 == 0 else ""
        if (s[3] % 1000) / 1000 < POSTER_SHARE:
            scene = f"{imitated} poster"
        else:
            scene = scenes[(s[3] // 1000) % len(scenes)]
        return _Record(pid, label, scene, video, kind, "", word)
    if kind == "trap":
        word = CONCEPTS[s[2] % len(CONCEPTS)].upper()
        return _Record(pid, label, topic, video, kind, "", word)
    return _Record(pid, label, topic, video, kind, "", topic.upper() if s[1] % 2 == 0 else "")


def _generate(n: int, seed: int, url_prefix: str) -> Iterator[tuple[list[str], list[_Record]]]:
    """Yield chunks of (metadata lines without line numbers, photo/video records)."""
    vocab = _vocab(seed)
    videos, malformed = _counts(n)
    records = n + videos
    video_at = _video_indices(records, videos)
    bad_at = sorted(int((j + 0.5) * records / malformed) for j in range(malformed))
    bad_kinds = ("columns", "date", "number")
    span = _END - _START
    probs = [CONCEPT_SHARE / len(CONCEPTS)] * len(CONCEPTS) + [1 - CONCEPT_SHARE]
    for chunk_no, a in enumerate(range(0, records, _CHUNK)):
        b = min(records, a + _CHUNK)
        m = b - a
        rng = np.random.default_rng([seed, chunk_no])
        idx = np.arange(a, b)
        ids = 100_000 + idx * _ID_STRIDE + rng.integers(0, _ID_STRIDE, m)
        # Flickr grew over the years: more uploads late than early.
        frac = ((idx + rng.random(m)) / records) ** 0.75
        uploaded = _START + (frac * span).astype(np.int64)
        back = rng.integers(60, 40 * 86400, m)
        late = rng.random(m) < 0.02  # camera clock wrong: taken after upload
        taken = np.where(late, uploaded + rng.integers(3600, 400 * 86400, m), uploaded - back)
        taken_text = np.datetime_as_string(taken.astype("datetime64[s]"), unit="s")
        concept = rng.choice(len(probs), size=m, p=probs)
        pick = rng.integers(0, 1 << 30, (m, 8))
        geo = rng.random(m) < 0.4
        lon = rng.uniform(-180, 180, m)
        lat = rng.uniform(-60, 70, m)
        hashes = rng.integers(0, 1 << 62, (m, 2))
        secrets = rng.integers(0, 16**10, (m, 2))
        scene_l = rng.integers(0, 1 << 30, (m, 4)).tolist()
        lines: list[str] = []
        recs: list[_Record] = []
        # Plain Python values in the loop: numpy scalars are slow one at a time.
        ids_l, concept_l, pick_l = ids.tolist(), concept.tolist(), pick.tolist()
        hashes_l, secrets_l = hashes.tolist(), secrets.tolist()
        lon_l, lat_l, geo_l, uploaded_l = (
            lon.tolist(),
            lat.tolist(),
            geo.tolist(),
            uploaded.tolist(),
        )
        taken_l = [t.replace("T", " ") + ".0" for t in taken_text.tolist()]
        for k in range(m):
            i = a + k
            pid = ids_l[k]
            is_video = i in video_at
            c = concept_l[k]
            p = pick_l[k]
            topic = _topic_of(c, p[0])
            label = CONCEPTS[c] if c < len(CONCEPTS) else NONE
            rec = _scene_record(pid, label, topic, is_video, scene_l[k])
            recs.append(rec)
            if p[1] % 10 < 6:
                title_pool = vocab.titles[topic]
                title = title_pool[p[2] % len(title_pool)]
            else:
                generic = _GENERIC_TITLES[p[2] % len(_GENERIC_TITLES)]
                title = quote_plus(generic.format(n=p[3] % 10000))
            tags_pool = vocab.tags[topic]
            nsid, nick = vocab.users[p[4] % len(vocab.users)]
            license_name, license_url = _LICENSES[p[5] % len(_LICENSES)]
            ext = "mp4" if is_video else "jpg"
            fields = [
                str(pid),
                f"{hashes_l[k][0]:016x}{hashes_l[k][1]:016x}",
                nsid,
                nick,
                taken_l[k],
                str(uploaded_l[k]),
                _DEVICES[p[6] % len(_DEVICES)],
                title,
                vocab.descriptions[p[7] % len(vocab.descriptions)],
                tags_pool[p[3] % len(tags_pool)],
                vocab.machine_tags[p[5] % len(vocab.machine_tags)],
                f"{lon_l[k]:.6f}" if geo_l[k] else "",
                f"{lat_l[k]:.6f}" if geo_l[k] else "",
                str(1 + p[6] % 16) if geo_l[k] else "",
                f"http://www.flickr.com/photos/{nsid}/{pid}/",
                f"{url_prefix}{pid}.{ext}",
                _LICENSE_NAMES[license_name],
                license_url,
                str(1 + p[1] % 9000),
                str(1 + p[2] % 9),
                f"{secrets_l[k][0]:010x}",
                f"{secrets_l[k][1]:010x}",
                ext,
                "1" if is_video else "0",
            ]
            lines.append("\t".join(fields))
        order = rng.permutation(m)
        lines = [lines[j] for j in order]
        recs = [recs[j] for j in order]
        # Deliberately malformed lines, spread through the file.
        for j, at in enumerate(bad_at):
            if not a <= at < b:
                continue
            fields = lines[at - a].split("\t")
            fields[0] = str(10**11 + j)
            kind = bad_kinds[j % len(bad_kinds)]
            if kind == "columns":
                fields = fields[:-3]
            elif kind == "date":
                fields[5] = "2010-05-06 12:00:00"
            else:
                fields[11] = "north"
            lines.insert(at - a, "\t".join(fields))
        yield lines, recs


@cache
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _rgb(rnd: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return (rnd.randint(lo, hi), rnd.randint(lo, hi), rnd.randint(lo, hi))


def _jitter(rnd: random.Random, base: tuple[int, int, int], amount: int = 30) -> tuple[int, ...]:
    return tuple(max(0, min(255, c + rnd.randint(-amount, amount))) for c in base)


_MIN_DRAW = 64
"""Smallest side a scene is drawn at (smaller pictures and insets are scaled down)."""


def _draw_base(topic: str, rnd: random.Random, w: int, h: int, with_object: bool = True) -> Any:
    """Draw the plain scene of ``topic`` (no words); the bus, soccer and hockey scenes
    can leave their object out (the context without the thing: a hard negative)."""
    from PIL import Image, ImageDraw

    u = min(w, h)
    if u < _MIN_DRAW:  # the drawings need room: draw larger, then scale down
        k = -(-_MIN_DRAW // u)
        big = _draw_base(topic, rnd, w * k, h * k, with_object)
        return big.resize((max(1, w), max(1, h)), Image.Resampling.BILINEAR)
    if topic in _HARD_SCENES:
        return _draw_hard(topic, rnd, w, h)
    if topic == "bus":
        img = Image.new("RGB", (w, h), _jitter(rnd, (135, 190, 235), 40))
        d = ImageDraw.Draw(img)
        road = int(h * rnd.uniform(0.68, 0.8))
        d.rectangle([0, road, w, h], fill=_jitter(rnd, (90, 90, 95), 20))
        d.rectangle(
            [0, road + (h - road) // 2 - 2, w, road + (h - road) // 2 + 2], fill=(240, 230, 120)
        )
        if with_object:
            bw = int(w * rnd.uniform(0.55, 0.8))
            bh = int(h * rnd.uniform(0.28, 0.42))
            x0 = rnd.randint(0, w - bw)
            y0 = road - bh - u // 20
            body = rnd.choice([(200, 30, 30), (240, 190, 20), (30, 90, 190), (30, 140, 70)])
            d.rounded_rectangle([x0, y0, x0 + bw, y0 + bh], radius=u // 25, fill=_jitter(rnd, body))
            decks = 2 if rnd.random() < 0.4 else 1
            win_h = bh // (2 * decks + 1)
            for deck in range(decks):
                wy = y0 + win_h // 2 + deck * (bh // decks)
                for wx in range(x0 + bw // 12, x0 + bw - bw // 8, bw // 7):
                    d.rectangle([wx, wy, wx + bw // 9, wy + win_h], fill=(200, 230, 250))
            for wx in (x0 + bw // 5, x0 + bw - bw // 5):
                r = u // 14
                d.ellipse([wx - r, y0 + bh - r, wx + r, y0 + bh + r], fill=(20, 20, 20))
                d.ellipse(
                    [wx - r // 2, y0 + bh - r // 2, wx + r // 2, y0 + bh + r // 2],
                    fill=(160, 160, 160),
                )
    elif topic == "camera":
        img = Image.new("RGB", (w, h), _rgb(rnd, 120, 240))
        d = ImageDraw.Draw(img)
        cw, ch = int(w * rnd.uniform(0.45, 0.65)), int(h * rnd.uniform(0.35, 0.5))
        x0, y0 = rnd.randint(w // 20, w - cw - w // 20), rnd.randint(h // 4, h - ch - h // 20)
        body = rnd.choice([(25, 25, 25), (60, 60, 65), (180, 180, 185)])
        d.rectangle([x0 + cw // 3, y0 - ch // 5, x0 + 2 * cw // 3, y0], fill=_jitter(rnd, body, 10))
        d.rounded_rectangle([x0, y0, x0 + cw, y0 + ch], radius=u // 30, fill=body)
        cx, cy, r = x0 + cw // 2, y0 + ch // 2, int(ch * 0.42)
        for k, col in enumerate([(90, 90, 90), (15, 15, 15), (40, 60, 110), (10, 10, 30)]):
            rr = int(r * (1 - 0.22 * k))
            d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=col)
        d.ellipse([cx - r // 5, cy - r // 3, cx, cy - r // 8], fill=(230, 230, 255))
        d.rectangle(
            [x0 + cw // 12, y0 + ch // 10, x0 + cw // 5, y0 + ch // 5], fill=(250, 250, 250)
        )
        d.ellipse([x0 + cw - cw // 6, y0 - ch // 8, x0 + cw - cw // 12, y0], fill=(200, 30, 30))
    elif topic == "laptop":
        img = Image.new("RGB", (w, h), _rgb(rnd, 150, 230))
        d = ImageDraw.Draw(img)
        desk = int(h * rnd.uniform(0.7, 0.8))
        d.rectangle([0, desk, w, h], fill=_jitter(rnd, (140, 100, 60), 25))
        lw = int(w * rnd.uniform(0.45, 0.65))
        lh = int(h * rnd.uniform(0.38, 0.5))
        x0 = rnd.randint(w // 20, w - lw - w // 20)
        y0 = desk - lh
        frame = rnd.choice([(40, 40, 45), (190, 190, 195), (20, 20, 25)])
        d.rectangle([x0, y0, x0 + lw, y0 + int(lh * 0.85)], fill=frame)
        screen = _rgb(rnd, 60, 220)
        d.rectangle(
            [x0 + lw // 20, y0 + lh // 20, x0 + lw - lw // 20, y0 + int(lh * 0.8)], fill=screen
        )
        base_y = y0 + int(lh * 0.85)
        d.polygon(
            [
                (x0 - lw // 10, desk + h // 40),
                (x0 + lw + lw // 10, desk + h // 40),
                (x0 + lw, base_y),
                (x0, base_y),
            ],
            fill=_jitter(rnd, frame, 20),
        )
        for row in range(3):
            ky = base_y + 2 + row * max(2, (desk - base_y) // 4)
            for kx in range(x0 + lw // 15, x0 + lw - lw // 15, max(4, lw // 14)):
                d.rectangle([kx, ky, kx + max(2, lw // 20), ky + 2], fill=(90, 90, 90))
    elif topic == "soccer":
        img = Image.new("RGB", (w, h), (40, 140, 50))
        d = ImageDraw.Draw(img)
        stripe = max(8, w // rnd.randint(6, 10))
        for sx in range(0, w, 2 * stripe):
            d.rectangle([sx, 0, sx + stripe, h], fill=_jitter(rnd, (55, 165, 60), 10))
        d.line([w // 2, 0, w // 2, h], fill=(250, 250, 250), width=max(2, u // 80))
        r = u // 4
        d.ellipse(
            [w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r],
            outline=(250, 250, 250),
            width=max(2, u // 80),
        )
        gx = rnd.choice([w // 30, w - w // 6])
        d.rectangle(
            [gx, h // 3, gx + w // 7, 2 * h // 3], outline=(255, 255, 255), width=max(2, u // 60)
        )
        if with_object:
            br = u // rnd.randint(6, 9)
            bx, by = rnd.randint(br, w - br), rnd.randint(br, h - br)
            d.ellipse(
                [bx - br, by - br, bx + br, by + br],
                fill=(250, 250, 250),
                outline=(0, 0, 0),
                width=2,
            )
            pent = [
                (bx + int(br * 0.4 * np.cos(a)), by + int(br * 0.4 * np.sin(a)))
                for a in np.linspace(-np.pi / 2, 1.5 * np.pi, 6)[:5]
            ]
            d.polygon(pent, fill=(10, 10, 10))
    elif topic == "hockey":
        img = Image.new("RGB", (w, h), _jitter(rnd, (225, 238, 250), 12))
        d = ImageDraw.Draw(img)
        lw_ = max(3, u // 40)
        d.rectangle([w // 2 - lw_, 0, w // 2 + lw_, h], fill=(200, 20, 30))
        for bx in (w // 4, 3 * w // 4):
            d.rectangle([bx - lw_, 0, bx + lw_, h], fill=(30, 60, 180))
        if with_object:
            for _ in range(rnd.randint(1, 2)):
                sx, sy = rnd.randint(w // 10, w - w // 10), rnd.randint(0, h // 3)
                ex, ey = sx + rnd.randint(-w // 4, w // 4), sy + int(h * rnd.uniform(0.4, 0.6))
                stick = rnd.choice([(120, 70, 30), (20, 20, 20), (200, 200, 60)])
                d.line([sx, sy, ex, ey], fill=stick, width=max(4, u // 35))
                d.line(
                    [ex, ey, ex + rnd.choice([-1, 1]) * w // 9, ey + h // 40],
                    fill=stick,
                    width=max(6, u // 22),
                )
            px, py = rnd.randint(w // 6, 5 * w // 6), rnd.randint(h // 2, 7 * h // 8)
            d.ellipse([px - u // 14, py - u // 28, px + u // 14, py + u // 28], fill=(10, 10, 10))
        gx = rnd.choice([w // 40, w - w // 8])
        d.rectangle([gx, h // 3, gx + w // 10, h // 2], outline=(210, 20, 30), width=lw_)
    elif topic == "mountains":
        img = Image.new("RGB", (w, h), _jitter(rnd, (150, 200, 240), 30))
        d = ImageDraw.Draw(img)
        sx, sy, sr = rnd.randint(0, w), rnd.randint(0, h // 3), u // 10
        d.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=(255, 220, 80))
        for _ in range(rnd.randint(2, 4)):
            px, ph = rnd.randint(0, w), int(h * rnd.uniform(0.35, 0.7))
            half = int(w * rnd.uniform(0.2, 0.4))
            base = int(h * 0.8)
            rock = _jitter(rnd, (110, 105, 110), 25)
            d.polygon([(px - half, base), (px, base - ph), (px + half, base)], fill=rock)
            d.polygon(
                [
                    (px - half // 5, base - ph + ph // 5),
                    (px, base - ph),
                    (px + half // 5, base - ph + ph // 5),
                ],
                fill=(250, 250, 250),
            )
        d.rectangle([0, int(h * 0.8), w, h], fill=_jitter(rnd, (70, 140, 60), 20))
    elif topic == "pizza":
        img = Image.new("RGB", (w, h), _jitter(rnd, (160, 110, 70), 30))
        d = ImageDraw.Draw(img)
        cx, cy, r = rnd.randint(w // 3, 2 * w // 3), rnd.randint(h // 3, 2 * h // 3), u // 3
        d.ellipse(
            [cx - r - u // 20, cy - r - u // 20, cx + r + u // 20, cy + r + u // 20],
            fill=(245, 245, 245),
        )
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(220, 160, 70))
        d.ellipse(
            [cx - r + u // 30, cy - r + u // 30, cx + r - u // 30, cy + r - u // 30],
            fill=(240, 200, 90),
        )
        for _ in range(rnd.randint(5, 9)):
            ang, dist = rnd.uniform(0, 2 * np.pi), rnd.uniform(0, r * 0.7)
            px, py, pr = cx + int(dist * np.cos(ang)), cy + int(dist * np.sin(ang)), u // 22
            d.ellipse([px - pr, py - pr, px + pr, py + pr], fill=(180, 40, 30))
    elif topic == "flowers":
        img = Image.new("RGB", (w, h), _jitter(rnd, (80, 150, 70), 30))
        d = ImageDraw.Draw(img)
        for _ in range(rnd.randint(3, 7)):
            fx, fy, pr = rnd.randint(0, w), rnd.randint(h // 5, h), rnd.randint(u // 20, u // 10)
            petal = _rgb(rnd, 120, 255)
            d.line([fx, fy, fx, h], fill=(40, 110, 40), width=3)
            for a in np.linspace(0, 2 * np.pi, 7)[:6]:
                px, py = fx + int(pr * np.cos(a)), fy + int(pr * np.sin(a))
                d.ellipse(
                    [px - pr // 1.5, py - pr // 1.5, px + pr // 1.5, py + pr // 1.5], fill=petal
                )
            d.ellipse([fx - pr // 2, fy - pr // 2, fx + pr // 2, fy + pr // 2], fill=(250, 210, 40))
    elif topic == "beach":
        img = Image.new("RGB", (w, h), _jitter(rnd, (130, 200, 250), 25))
        d = ImageDraw.Draw(img)
        sea, sand = int(h * rnd.uniform(0.4, 0.55)), int(h * rnd.uniform(0.65, 0.8))
        d.rectangle([0, sea, w, sand], fill=_jitter(rnd, (30, 110, 180), 25))
        d.rectangle([0, sand, w, h], fill=_jitter(rnd, (235, 210, 150), 15))
        sx, sr = rnd.randint(0, w), u // 9
        d.ellipse([sx - sr, sea - sr, sx + sr, sea + sr], fill=(255, 190, 60))
        ux = rnd.randint(w // 6, 5 * w // 6)
        d.line([ux, sand - h // 10, ux, h], fill=(80, 60, 40), width=3)
        d.pieslice(
            [ux - u // 6, sand - h // 10 - u // 8, ux + u // 6, sand - h // 10 + u // 8],
            180,
            360,
            fill=_rgb(rnd, 100, 255),
        )
    elif topic == "city":
        night = rnd.random() < 0.5
        img = Image.new("RGB", (w, h), (20, 25, 60) if night else _jitter(rnd, (170, 200, 230)))
        d = ImageDraw.Draw(img)
        x = 0
        while x < w:
            bw, bh = rnd.randint(w // 12, w // 6), int(h * rnd.uniform(0.3, 0.8))
            d.rectangle([x, h - bh, x + bw, h], fill=_jitter(rnd, (70, 70, 85), 25))
            for wy in range(h - bh + 6, h - 6, max(8, h // 30)):
                for wx in range(x + 4, x + bw - 6, max(8, w // 50)):
                    if rnd.random() < 0.6:
                        lit = (250, 220, 120) if night else (200, 220, 240)
                        d.rectangle([wx, wy, wx + 3, wy + 4], fill=lit)
            x += bw + rnd.randint(0, w // 40)
    else:  # books
        img = Image.new("RGB", (w, h), _jitter(rnd, (120, 80, 50), 20))
        d = ImageDraw.Draw(img)
        for shelf in range(3):
            y1 = (shelf + 1) * h // 3 - h // 40
            x = w // 40
            while x < w - w // 20:
                bw = rnd.randint(w // 40, w // 18)
                bh = int(h / 3 * rnd.uniform(0.6, 0.9))
                d.rectangle([x, y1 - bh, x + bw, y1], fill=_rgb(rnd, 30, 230))
                x += bw + 1
            d.rectangle([0, y1, w, y1 + h // 40], fill=(90, 55, 30))
    return img


def _draw_hard(topic: str, rnd: random.Random, w: int, h: int) -> Any:
    """Draw a hard negative: a scene that shares context, colours or shapes with a concept."""
    from PIL import Image, ImageDraw

    u = min(w, h)
    if topic == "bus stop":
        img = _draw_base("bus", rnd, w, h, with_object=False)
        d = ImageDraw.Draw(img)
        road = int(h * 0.68)
        sx, sw = rnd.randint(0, w // 2), int(w * rnd.uniform(0.25, 0.4))
        d.rectangle([sx, road - h // 3, sx + sw, road - h // 3 + h // 30], fill=(60, 60, 70))
        d.rectangle([sx, road - h // 3, sx + sw, road], outline=(60, 60, 70), width=3)
        d.rectangle(
            [sx + sw // 8, road - h // 10, sx + sw - sw // 8, road - h // 14], fill=(140, 90, 40)
        )
        px = sx + sw + w // 20
        d.line([px, road - h // 2, px, road], fill=(80, 80, 80), width=max(2, u // 80))
        d.ellipse(
            [px - u // 18, road - h // 2 - u // 18, px + u // 18, road - h // 2 + u // 18],
            fill=rnd.choice([(200, 30, 30), (30, 90, 190), (240, 190, 20)]),
        )
    elif topic == "truck":
        img = _draw_base("bus", rnd, w, h, with_object=False)
        d = ImageDraw.Draw(img)
        road = int(h * 0.7)
        bw, bh = int(w * rnd.uniform(0.4, 0.6)), int(h * rnd.uniform(0.25, 0.35))
        x0 = rnd.randint(0, w - bw - w // 6)
        body = rnd.choice([(200, 30, 30), (240, 190, 20), (30, 90, 190), (230, 230, 230)])
        d.rectangle([x0, road - bh, x0 + bw, road - u // 20], fill=_jitter(rnd, body))
        cab = x0 + bw + 2
        d.rectangle([cab, road - bh // 2, cab + w // 7, road - u // 20], fill=_jitter(rnd, body))
        d.rectangle(
            [cab + w // 28, road - bh // 2 + 4, cab + w // 8, road - bh // 4], fill=(200, 230, 250)
        )
        for wx in (x0 + bw // 5, cab + w // 14):
            r = u // 14
            d.ellipse([wx - r, road - u // 20 - r, wx + r, road - u // 20 + r], fill=(20, 20, 20))
    elif topic in ("radio", "binoculars"):
        img = Image.new("RGB", (w, h), _rgb(rnd, 120, 240))
        d = ImageDraw.Draw(img)
        cw, ch = int(w * rnd.uniform(0.45, 0.65)), int(h * rnd.uniform(0.3, 0.45))
        x0, y0 = rnd.randint(w // 20, w - cw - w // 20), rnd.randint(h // 4, h - ch - h // 20)
        body = rnd.choice([(25, 25, 25), (60, 60, 65), (180, 180, 185)])
        cy, r = y0 + ch // 2, int(ch * 0.36)
        if topic == "radio":
            d.rounded_rectangle([x0, y0, x0 + cw, y0 + ch], radius=u // 30, fill=body)
            for cx in (x0 + cw // 4, x0 + 3 * cw // 4):
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(90, 90, 90))
                d.ellipse([cx - r // 2, cy - r // 2, cx + r // 2, cy + r // 2], fill=(20, 20, 20))
            d.line([x0 + cw // 2, y0, x0 + cw, y0 - ch // 2], fill=(150, 150, 150), width=3)
        else:
            for cx in (x0 + cw // 4, x0 + 3 * cw // 4):
                d.rounded_rectangle([cx - r, y0, cx + r, y0 + ch], radius=u // 40, fill=body)
                d.ellipse([cx - r, y0 + ch - 2 * r, cx + r, y0 + ch], fill=(40, 60, 110))
            d.rectangle([x0 + cw // 4, y0 + ch // 4, x0 + 3 * cw // 4, y0 + ch // 2], fill=body)
    elif topic.endswith(" poster"):  # a picture of the concept on a wall, not the thing
        img = Image.new("RGB", (w, h), _jitter(rnd, (200, 190, 170), 30))
        d = ImageDraw.Draw(img)
        f = rnd.uniform(0.86, 0.94)
        pw, ph = int(w * f), int(h * f)
        x0 = rnd.randint(w // 40, max(w // 40, w - pw - w // 40))
        y0 = rnd.randint(h // 40, max(h // 40, h - ph - h // 20))
        d.rectangle([x0 - 2, y0 - 2, x0 + pw + 2, y0 + ph + 2], fill=(30, 25, 20))
        img.paste(_draw_base(topic.removesuffix(" poster"), rnd, pw, ph), (x0, y0))
    elif topic == "monitor":
        img = Image.new("RGB", (w, h), _rgb(rnd, 150, 230))
        d = ImageDraw.Draw(img)
        desk = int(h * rnd.uniform(0.7, 0.8))
        d.rectangle([0, desk, w, h], fill=_jitter(rnd, (140, 100, 60), 25))
        mw, mh = int(w * rnd.uniform(0.35, 0.5)), int(h * rnd.uniform(0.35, 0.45))
        x0 = rnd.randint(w // 20, w - mw - w // 20)
        y0 = desk - mh - h // 8
        d.rectangle([x0, y0, x0 + mw, y0 + mh], fill=(30, 30, 35))
        d.rectangle([x0 + 5, y0 + 5, x0 + mw - 5, y0 + mh - 5], fill=_rgb(rnd, 60, 220))
        d.rectangle([x0 + mw // 2 - 4, y0 + mh, x0 + mw // 2 + 4, desk], fill=(30, 30, 35))
        d.rectangle([x0 + mw // 3, desk - 4, x0 + 2 * mw // 3, desk], fill=(30, 30, 35))
    elif topic == "football pitch":
        img = _draw_base("soccer", rnd, w, h, with_object=False)
    elif topic == "beach ball":
        img = _draw_base("beach", rnd, w, h)
        d = ImageDraw.Draw(img)
        br = u // rnd.randint(7, 10)
        bx, by = rnd.randint(br, w - br), rnd.randint(int(h * 0.8), h - br)
        d.ellipse([bx - br, by - br, bx + br, by + br], fill=(250, 250, 250), outline=(0, 0, 0))
    elif topic == "ice rink":
        img = _draw_base("hockey", rnd, w, h, with_object=False)
    else:  # ski slope: snow, sticks that are ski poles
        img = Image.new("RGB", (w, h), _jitter(rnd, (235, 240, 250), 10))
        d = ImageDraw.Draw(img)
        d.polygon(
            [(0, h // 3), (w, h // 5), (w, 0), (0, 0)], fill=_jitter(rnd, (150, 200, 240), 20)
        )
        for _ in range(rnd.randint(2, 4)):
            sx, sy = rnd.randint(0, w), rnd.randint(h // 3, h - h // 4)
            d.line(
                [sx, sy, sx + rnd.randint(-w // 10, w // 10), sy + h // 4],
                fill=rnd.choice([(120, 70, 30), (20, 20, 20)]),
                width=max(3, u // 50),
            )
    return img


_HARD_NEGATIVES: dict[str, tuple[str, ...]] = {
    "bus": ("bus stop", "truck"),
    "camera": ("radio", "binoculars"),
    "laptop": ("monitor",),
    "soccer": ("football pitch", "beach ball"),
    "hockey": ("ice rink", "ski slope"),
}
"""Hard negatives of each concept besides its poster: its context without it, or something
that looks like it."""

POSTER_SHARE = 0.3
"""Share of a concept's hard negatives that are a poster of it (a picture on a wall)."""

_HARD_SCENES = frozenset(
    [
        *(s for scenes in _HARD_NEGATIVES.values() for s in scenes),
        *(f"{c} poster" for c in CONCEPTS),
    ]
)

KINDS_CONCEPT: tuple[tuple[str, float], ...] = (
    ("clean", 0.40),
    ("multi", 0.15),
    ("small", 0.12),
    ("cutoff", 0.10),
    ("colour", 0.10),
    ("trap", 0.13),
)
"""Difficulty kinds of the photos that show a concept, with their shares."""

KINDS_NONE: tuple[tuple[str, float], ...] = (
    ("distractor", 0.40),
    ("hard", 0.50),
    ("trap", 0.10),
)
"""Difficulty kinds of the photos of no concept, with their shares."""

HARD_KINDS = frozenset({"hard", "trap"})
"""Kinds that mislead people as well as models (simulated workers err more on them)."""


def _pick_kind(table: tuple[tuple[str, float], ...], value: int) -> str:
    x = (value % 100_000) / 100_000
    for kind, share in table:
        if x < share:
            return kind
        x -= share
    return table[-1][0]


def _write_word(img: Any, word: str, rnd: random.Random, scale: float = 1.0) -> None:
    from PIL import ImageDraw

    w, h = img.size
    d = ImageDraw.Draw(img)
    font = _font(max(12, int(min(w, h) * rnd.uniform(0.16, 0.22) * scale)))
    left, top, right, bottom = (int(v) for v in d.textbbox((0, 0), word, font=font, stroke_width=2))
    tw, th = right - left, bottom - top
    tx = rnd.randint(0, max(0, w - tw)) - left
    ty = rnd.choice([rnd.randint(0, max(0, h // 4 - th // 2)), max(0, h - th - h // 30)]) - top
    light = rnd.random() < 0.5
    d.text(
        (tx, ty),
        word,
        font=font,
        fill=(255, 255, 255) if light else (15, 15, 15),
        stroke_width=2,
        stroke_fill=(0, 0, 0) if light else (255, 255, 255),
    )


def _draw_scene(rec: _Record, rnd: random.Random, w: int, h: int, mark: str) -> Any:
    """Draw the photo of a record: its scene composed as its difficulty kind says."""
    from PIL import Image, ImageDraw

    kind, topic = rec.kind, rec.topic
    if kind == "small":
        img = _draw_base(rec.other, rnd, w, h)
        f = rnd.uniform(0.28, 0.42)
        sw, sh = max(8, int(w * f)), max(8, int(h * f))
        img.paste(_draw_base(topic, rnd, sw, sh), (rnd.randint(0, w - sw), rnd.randint(0, h - sh)))
    elif kind == "cutoff":
        f = rnd.uniform(1.5, 1.9)
        big = _draw_base(topic, rnd, int(w * f), int(h * f))
        x0 = rnd.choice([0, big.width - w]) + rnd.randint(-w // 10, w // 10)
        y0 = rnd.randint(0, big.height - h)
        img = big.crop((max(0, x0), y0, max(0, x0) + w, y0 + h))
    else:
        img = _draw_base(topic, rnd, w, h)
    if kind == "multi":
        for _ in range(rnd.randint(1, 2)):
            f = rnd.uniform(0.3, 0.45)
            sw, sh = max(8, int(w * f)), max(8, int(h * f))
            inset = _draw_base(rec.other, rnd, sw, sh)
            img.paste(inset, (rnd.choice([0, w - sw]), rnd.choice([0, h - sh])))
    if kind == "colour":
        channels = img.split()
        order = rnd.choice([(2, 0, 1), (1, 2, 0), (2, 1, 0)])
        img = Image.merge("RGB", [channels[c] for c in order])
    if rec.word:
        _write_word(img, rec.word, rnd, 1.3 if kind == "trap" else 1.0)
    # A small per-image mark (ids differ, so every file's bytes differ: simulated
    # workers recognise images by their hash).
    ImageDraw.Draw(img).text(
        (3, h - 12), mark, font=_font(9), fill=_jitter(rnd, (128, 128, 128), 40)
    )
    return img


def _manifest(n: int, seed: int, size: tuple[int, int], metadata_only: bool) -> dict[str, Any]:
    return {
        "format": 3,
        "n": n,
        "seed": seed,
        "image_size": list(size),
        "metadata_only": metadata_only,
    }


def _reusable(out: Path, manifest: dict[str, Any]) -> SampleSummary | None:
    try:
        found = json.loads((out / "sample.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or {k: found.get(k) for k in manifest} != manifest:
        return None
    if not (out / "metadata.tsv").is_file():
        return None
    if not manifest["metadata_only"] and not (out / SCENES_FILE).is_file():
        return None
    summary = SampleSummary(out_dir=out, metadata_only=manifest["metadata_only"], reused=True)
    summary.videos, summary.malformed = _counts(manifest["n"])
    summary.images = manifest["n"]
    if not manifest["metadata_only"]:
        try:
            with open(out / "truth.csv", encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    if not (out / row["file"]).is_file():
                        return None
                    summary.concepts[row["concept"]] += 1
        except (OSError, KeyError):
            return None
    summary.concepts = Counter(found.get("concepts", {})) or summary.concepts
    return summary


def load_truth(path: Path) -> dict[int, str]:
    """Read a sample's ``truth.csv``: each image's true concept, or ``none``.

    Args:
        path: The truth file (header ``image,concept``; more columns are ignored).

    Returns:
        Concept by image id.

    Raises:
        InputError: A missing file or column, or a line whose image is not an id.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file; pass the sample's truth.csv")
    truth: dict[int, str] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        if not {"image", "concept"} <= set(header):
            raise InputError(f"{path}: line 1: the header must name image,concept")
        for row in reader:
            clean = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            try:
                truth[int(clean["image"])] = clean["concept"]
            except ValueError:
                raise InputError(
                    f"{path}: line {reader.line_num}: image {clean['image']!r} is not an image id"
                ) from None
    return truth


def write_sample(
    out_dir: str | os.PathLike[str],
    *,
    n: int = DEFAULT_N,
    seed: int = 0,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    metadata_only: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> SampleSummary:
    """Write the sample collection to ``out_dir`` (see the module docstring).

    An identical earlier sample (same ``sample.json`` settings, files present) is kept
    as it is; anything else is rewritten. Files appear complete or not at all: each is
    written beside its final name and renamed, and ``sample.json`` comes last.

    Args:
        out_dir: Folder to write into (created when missing).
        n: Number of photos (videos and malformed lines come on top).
        seed: Seed; the same seed and ``n`` give the same files.
        image_size: ``(width, height)`` of the JPEGs.
        metadata_only: Write only ``metadata.tsv`` (for benchmarks).
        on_progress: Called with the number of metadata rows (or images) just written.

    Returns:
        What was written.

    Raises:
        ConfigError: ``n`` below 1.
    """
    if n < 1:
        raise ConfigError(f"--n {n}: need at least 1 image")
    out = Path(out_dir)
    manifest = _manifest(n, seed, image_size, metadata_only)
    reused = _reusable(out, manifest)
    if reused is not None:
        return reused
    out.mkdir(parents=True, exist_ok=True)
    (out / "sample.json").unlink(missing_ok=True)
    images_dir = (out / "images").resolve()
    if not metadata_only:
        images_dir.mkdir(exist_ok=True)
    url_prefix = images_dir.as_uri() + "/"
    summary = SampleSummary(out_dir=out, metadata_only=metadata_only)
    summary.videos, summary.malformed = _counts(n)
    truth: list[tuple[int, str, str]] = []
    scenes: list[tuple[int, str, str, str, str]] = []
    width, height = image_size
    line_no = 0
    part = out / "metadata.tsv.part"
    with open(part, "w", encoding="utf-8", newline="\n") as meta:
        for lines, recs in _generate(n, seed, url_prefix):
            buf = []
            for line in lines:
                buf.append(f"{line_no}\t{line}\n")
                line_no += 1
            meta.write("".join(buf))
            for rec in recs:
                if rec.video:
                    continue
                summary.images += 1
                summary.concepts[rec.concept] += 1
                if metadata_only:
                    continue
                rnd = random.Random(f"{seed}-{rec.photo_id}")
                img = _draw_scene(rec, rnd, width, height, str(rec.photo_id))
                name = f"images/{rec.photo_id}.jpg"
                img.save(out / name, "JPEG", quality=85)
                truth.append((rec.photo_id, rec.concept, name))
                scenes.append((rec.photo_id, rec.kind, rec.topic, rec.other, rec.word))
                if on_progress is not None:
                    on_progress(1)
            if metadata_only and on_progress is not None:
                on_progress(len(lines))
    os.replace(part, out / "metadata.tsv")
    if not metadata_only:
        truth.sort()
        _write_csv(out / "truth.csv", ["image", "concept", "file"], truth)
        scenes.sort()
        _write_csv(out / SCENES_FILE, list(SCENES_HEADER), scenes)
        _write_csv(out / "gold.csv", ["image", "concept", "label"], _gold(truth, seed))
        (out / "concepts.yaml").write_text(sample_concepts(n), encoding="utf-8")
    manifest["concepts"] = dict(sorted(summary.concepts.items()))
    (out / "sample.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return summary


def _write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> None:
    part = path.with_name(path.name + ".part")
    with open(part, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(part, path)


GOLD_PER_LABEL = 3
"""Known ``yes`` and known ``no`` answers per concept in ``gold.csv``."""


def _gold(truth: list[tuple[int, str, str]], seed: int) -> list[tuple[int, str, str]]:
    """Pick a few known yes and no answers per concept from the photos."""
    rnd = random.Random(f"gold-{seed}")
    rows: list[tuple[int, str, str]] = []
    for concept in CONCEPTS:
        yes = [i for i, c, _ in truth if c == concept]
        no = [i for i, c, _ in truth if c != concept]
        for image in sorted(rnd.sample(yes, min(GOLD_PER_LABEL, len(yes)))):
            rows.append((image, concept, "yes"))
        for image in sorted(rnd.sample(no, min(GOLD_PER_LABEL, len(no)))):
            rows.append((image, concept, "no"))
    return rows
