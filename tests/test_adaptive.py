"""The adaptive redundancy policy as the rule of ``turk review --extend``."""

from __future__ import annotations

import pytest

from tests.crowd_ledger import CrowdLedger, build_crowd_ledger
from turk.crowd.adaptive import item_decisions, policy_rule
from turk.crowd.review import answers_disagree, uncertain_items
from turk.crowd.tables import load_answers
from turk.ledger import Ledger


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> CrowdLedger:
    return build_crowd_ledger(tmp_path_factory.mktemp("adaptive"), answers_per_item=3)


def test_policy_asks_more_only_where_the_outcome_is_open(crowd: CrowdLedger) -> None:
    with Ledger(crowd.db_path) as ledger:
        decisions = item_decisions(ledger, "local", threshold=0.99, max_answers=5)
        assert set(decisions["decision"]) <= {"accept", "reject", "more"}
        more = decisions[decisions["decision"] == "more"]
        decided = decisions[decisions["decision"] != "more"]
        assert len(more) and len(decided)
        assert (more["confidence"] < 0.99).all()
        assert (decided["confidence"] >= 0.99).all()
        # The spammer and the clicker carry no weight: no item counts their answers.
        answers, _, _ = load_answers(ledger, "local")
        good = answers[~answers["is_gold"] & ~answers["worker"].isin(["SPAMMER", "CLICKER"])]
        counted = good.groupby("task").size().reindex(decisions.index, fill_value=0)
        assert (decisions["answers"] == counted).all()

        rule = policy_rule(ledger, "local", threshold=0.99, max_answers=5)
        hit_keys = [r[0] for r in ledger.conn.execute("SELECT hit_key FROM hits ORDER BY id")]
        by_policy = [i for h in hit_keys for i in uncertain_items(ledger, "local", h, rule)]
        by_disagreement = [
            i for h in hit_keys for i in uncertain_items(ledger, "local", h, answers_disagree)
        ]
        assert {f"{i.concept}/{i.image_id}" for i in by_policy} == set(more.index)
        # Unanimous answers from a spammer and a clicker do not settle an item, while a
        # lone dissent from them does not unsettle one: the two rules differ.
        assert {(i.hit_key, i.position) for i in by_policy} != {
            (i.hit_key, i.position) for i in by_disagreement
        }


def test_capped_items_are_not_extended(crowd: CrowdLedger) -> None:
    with Ledger(crowd.db_path) as ledger:
        capped = item_decisions(ledger, "local", threshold=0.99, max_answers=2)
        at_cap = capped[capped["answers"] >= 2]
        assert len(at_cap) and (at_cap["decision"] != "more").all()
        # Below the cap (answers from flagged workers do not count) the item stays open.
        assert (capped.loc[capped["answers"] < 2, "decision"] == "more").all()
