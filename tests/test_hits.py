"""HIT planning: deterministic batches, gold mixed in at the rate, nothing tells gold apart."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.templates import CandidateLedger, seed_candidates, write_gold_csv
from turk.errors import ConfigError, InputError, StageError
from turk.hits.plan import HitPlan, hit_secret, image_token, load_gold, multi_gold, plan_hits
from turk.ledger import Ledger

BASE = "https://media.example.org/m"


def _plans(cl: CandidateLedger, **options: object) -> list[HitPlan]:
    settings: dict[str, object] = {"gold": cl.gold, "image_base_url": BASE, **options}
    return plan_hits(cl.ledger, **settings)  # type: ignore[arg-type]


def test_planning_is_deterministic(candidate_ledger: CandidateLedger) -> None:
    first = _plans(candidate_ledger)
    again = _plans(candidate_ledger)
    assert first == again
    with Ledger(candidate_ledger.ledger.path) as reopened:
        assert plan_hits(reopened, gold=candidate_ledger.gold, image_base_url=BASE) == first
    other_seed = _plans(candidate_ledger, seed=1)
    assert [p.hit_key for p in other_seed] != [p.hit_key for p in first]
    order = [[i.image_id for i in p.items] for p in first]
    assert [[i.image_id for i in p.items] for p in other_seed] != order
    regular = sorted(i.image_id for p in first for i in p.items if not i.is_gold)
    assert sorted(i.image_id for p in other_seed for i in p.items if not i.is_gold) == regular


def test_binary_batches_per_concept_and_bucket_skip_reserved(
    candidate_ledger: CandidateLedger,
) -> None:
    plans = _plans(candidate_ledger)
    batches = Counter((p.concept, p.bucket) for p in plans)
    assert set(batches) == {(c, b) for c in ("bus", "camera") for b in (1, 2)}
    rows = candidate_ledger.ledger.conn.execute(
        "SELECT concept, bucket, image_id FROM candidates WHERE role='positive' AND bucket > 0"
    ).fetchall()
    planned = [(p.concept, p.bucket, i.image_id) for p in plans for i in p.items if not i.is_gold]
    assert sorted(planned) == sorted(rows)
    for plan in plans:
        assert plan.task == "binary"
        assert re.fullmatch(rf"binary-{plan.concept}-b0{plan.bucket}-[0-9a-f]{{8}}", plan.batch_id)
        assert plan.hit_key.startswith(plan.batch_id + "-")
        assert len(plan.items) <= 12
        assert [i.field for i in plan.items] == [f"item-{n}" for n in range(len(plan.items))]
        assert all(i.concept == plan.concept for i in plan.items)
        assert all(i.local_path and Path(i.local_path).is_file() for i in plan.items)
    assert len({p.hit_key for p in plans}) == len(plans)


def test_multi_batches_per_bucket_with_background_once_each(
    candidate_ledger: CandidateLedger,
) -> None:
    plans = _plans(candidate_ledger, task="multi")
    assert {p.bucket for p in plans} == {1, 2}
    assert all(p.classes == ("bus", "camera") and p.concept is None for p in plans)
    # The instructions speak of ticking classes, as the page's checkboxes do, not yes/no.
    page = plans[0].html
    assert "Tick <strong>bus</strong> only when the image shows it" in page
    assert "answer <strong>yes</strong>" not in page.lower() and "<figcaption>Yes:" not in page
    binary = _plans(candidate_ledger)[0].html
    assert "Tick <strong>" not in binary
    for bucket in (1, 2):
        ids = [i.image_id for p in plans if p.bucket == bucket for i in p.items if not i.is_gold]
        expected = {
            r[0]
            for r in candidate_ledger.ledger.conn.execute(
                "SELECT image_id FROM candidates WHERE bucket = ?", [bucket]
            )
        }
        assert sorted(ids) == sorted(expected)


def test_gold_share_follows_the_rate_and_positions_vary(tmp_path: Path) -> None:
    with Ledger(tmp_path / "t.db") as ledger:
        cl = seed_candidates(ledger, tmp_path / "img", buckets=[1], per_bucket=180)
        for rate in (0.1, 0.25):
            plans = _plans(cl, gold_rate=rate, concepts=["bus"])
            items = [i for p in plans for i in p.items]
            gold = [i for i in items if i.is_gold]
            assert abs(len(gold) / len(items) - rate) <= 1 / len(items)
            sizes = [len(p.items) for p in plans]
            assert max(sizes) - min(sizes) <= 1 and max(sizes) <= 12
            positions = Counter(i.position for i in gold)
            assert len(positions) >= 6  # not always the same slot
            for plan in plans:
                ids = [i.image_id for i in plan.items]
                assert len(ids) == len(set(ids))
            answers = Counter(i.expected for i in gold)
            assert set(answers) == {"yes", "no"}
            assert abs(answers["yes"] - answers["no"]) <= 1  # alternating yes and no
            truth = {i: lab for i, _, lab in _gold_rows(cl.gold) if _ == "bus"}
            assert all(truth[i.image_id] == i.expected for i in gold)
            assert all(i.expected is None for i in items if not i.is_gold)


def _gold_rows(path: Path) -> list[tuple[int, str, str]]:
    return [(r.image_id, r.concept, r.label) for r in load_gold(path)]


def test_no_gold_without_a_gold_file_or_at_rate_zero(candidate_ledger: CandidateLedger) -> None:
    assert not any(i.is_gold for p in _plans(candidate_ledger, gold=None) for i in p.items)
    assert not any(i.is_gold for p in _plans(candidate_ledger, gold_rate=0) for i in p.items)


def _normalised_items(plan: HitPlan, html: str) -> list[str]:
    for item in plan.items:
        html = html.replace(item.token, "TOKEN")
    html = re.sub(r"item-\d+", "item-N", html)
    html = re.sub(r"Image \d+", "Image N", html)
    return re.findall(r"<li class=\"turk-item\".*?</li>", html, flags=re.S)


@pytest.mark.parametrize("task", ["binary", "multi"])
def test_nothing_in_the_page_tells_gold_apart(candidate_ledger: CandidateLedger, task: str) -> None:
    plans = _plans(candidate_ledger, task=task, gold_rate=0.3)
    secret = hit_secret(candidate_ledger.ledger)
    for plan in plans:
        assert any(i.is_gold for i in plan.items) and not all(i.is_gold for i in plan.items)
        for html in (plan.html, plan.fragment):
            blocks = _normalised_items(plan, html)
            assert len(blocks) == len(plan.items)
            assert len(set(blocks)) == 1  # gold and regular items: identical markup
        for item in plan.items:
            assert item.token == image_token(secret, plan.hit_key, item.position)
            assert f'src="{BASE}/{item.token}.jpg"' in plan.html
        sources = re.findall(r'<img src="([^"]*)" alt="Image', plan.html)
        assert sources == [f"{BASE}/{i.token}.jpg" for i in plan.items]  # page order = items
        assert all(re.fullmatch(r"[0-9a-f]{32}", i.token) for i in plan.items)
        assert "gold" not in plan.html.lower()
        assert len({i.token for i in plan.items}) == len(plan.items)


def test_tokens_depend_on_the_ledger_secret(tmp_path: Path) -> None:
    tokens = []
    for name in ("a", "b"):
        with Ledger(tmp_path / name / "t.db") as ledger:
            cl = seed_candidates(ledger, tmp_path / name / "img", per_bucket=4, buckets=[1])
            plans = _plans(cl)
            tokens.append([i.token for p in plans for i in p.items])
            keys = [p.hit_key for p in plans]
    assert tokens[0] != tokens[1]
    assert keys  # the keys themselves do not depend on the secret
    assert not set(tokens[0]) & set(tokens[1])


def test_batch_ids_change_with_the_inputs(candidate_ledger: CandidateLedger) -> None:
    base = {p.batch_id for p in _plans(candidate_ledger)}
    assert base.isdisjoint({p.batch_id for p in _plans(candidate_ledger, gold_rate=0.2)})
    assert base.isdisjoint({p.batch_id for p in _plans(candidate_ledger, items_per_hit=6)})
    assert base == {p.batch_id for p in _plans(candidate_ledger, image_base_url="other")}


def test_only_the_chosen_concepts_and_buckets(candidate_ledger: CandidateLedger) -> None:
    plans = _plans(candidate_ledger, concepts=["camera"], buckets=[2])
    assert {(p.concept, p.bucket) for p in plans} == {("camera", 2)}
    multi = _plans(candidate_ledger, task="multi", concepts=["camera"])
    assert all(p.classes == ("camera",) for p in multi)
    camera_html = multi[0].html
    assert 'data-classes="camera"' in camera_html and 'data-class="bus"' not in camera_html


def test_multi_gold_answers() -> None:
    from turk.hits.plan import GoldRow

    rows = [
        GoldRow(1, "", "bus", 2),
        GoldRow(2, "", "none", 3),
        GoldRow(3, "camera", "yes", 4),
        GoldRow(4, "bus", "no", 5),
        GoldRow(4, "camera", "no", 6),
        GoldRow(5, "bus", "no", 7),  # camera unknown: left out
        GoldRow(6, "", "kite", 8),  # not an offered class: none of them
    ]
    assert multi_gold(rows, ["bus", "camera"]) == {
        1: "bus",
        2: "none",
        3: "camera",
        4: "none",
        6: "none",
    }


def test_multi_select_gold_from_class_name_labels(candidate_ledger: CandidateLedger) -> None:
    bus_ids = candidate_ledger.gold_ids["bus"]
    gold = write_gold_csv(
        candidate_ledger.image_dir.parent / "multi_gold.csv",
        [(bus_ids[0], "", "bus"), (bus_ids[1], "", "none"), (bus_ids[2], "", "camera")],
    )
    plans = _plans(candidate_ledger, task="multi", gold=gold, gold_rate=0.2)
    expected = {i.image_id: i.expected for p in plans for i in p.items if i.is_gold}
    assert expected == {bus_ids[0]: "bus", bus_ids[1]: "none", bus_ids[2]: "camera"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("image,concept\n1,bus\n", "line 1: missing column(s) label"),
        ("image,concept,label\nabc,bus,yes\n", "line 2: image 'abc' is not an image id"),
        ("image,concept,label\n1,bus,\n", "line 2: empty label"),
        ("image,concept,label\n1,,yes\n", "line 2: label 'yes' needs a concept"),
        ("image,concept,label\n1,bus,yes\n1,bus,no\n", "line 3: image 1 is 'no' for 'bus'"),
    ],
)
def test_bad_gold_file_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "gold.csv"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        load_gold(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_gold_problems_found_while_planning(candidate_ledger: CandidateLedger) -> None:
    cl = candidate_ledger
    with pytest.raises(InputError, match="gold file not found"):
        _plans(cl, gold=cl.gold.parent / "absent.csv")
    unknown = write_gold_csv(cl.gold.parent / "g2.csv", [(42, "bus", "yes")])
    with pytest.raises(InputError, match=rf"{unknown}: line 2: image 42 is not in the ledger"):
        _plans(cl, gold=unknown)
    few = write_gold_csv(cl.gold.parent / "g3.csv", [(cl.gold_ids["bus"][0], "bus", "yes")])
    with pytest.raises(InputError, match=r"1 gold image\(s\) but a HIT needs 6 different"):
        _plans(cl, gold=few, gold_rate=0.5, concepts=["bus"])
    assert _plans(cl, gold=few, gold_rate=0.1, concepts=["bus"])


def test_bad_options(candidate_ledger: CandidateLedger) -> None:
    with pytest.raises(ConfigError, match="--task: 'grid'"):
        _plans(candidate_ledger, task="grid")
    with pytest.raises(ConfigError, match="--items-per-hit: 0"):
        _plans(candidate_ledger, items_per_hit=0)
    with pytest.raises(ConfigError, match=r"--gold-rate: 0\.6"):
        _plans(candidate_ledger, gold_rate=0.6)
    with pytest.raises(ConfigError, match="concept 'kite' has no ranked candidates"):
        _plans(candidate_ledger, concepts=["kite"])
    with pytest.raises(ConfigError, match="bucket 0 has no candidates"):
        _plans(candidate_ledger, buckets=[0])


def test_no_candidates_is_a_stage_error(tmp_path: Path) -> None:
    with (
        Ledger(tmp_path / "empty.db") as ledger,
        pytest.raises(StageError, match="run 'turk rank"),
    ):
        plan_hits(ledger, image_base_url=BASE)
