"""The dataset report over DataFrames (analysis.report) and from the ledger (turk report)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.report import ALL, CostSummary, ReportSettings, build_report, write_report

HOSTILE = "<script>alert('x')</script>"


def _verified(n_per_cell: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items of two concepts x two buckets with 3 answers each, and the answers."""
    rng = np.random.default_rng(seed)
    items = []
    answers = []
    for concept in ("bus", "camera"):
        for bucket in (1, 2):
            for rank in range(n_per_cell):
                image_id = 10_000 * bucket + 100 * len(concept) + rank
                task = f"{concept}/{image_id}"
                truth_yes = rank < n_per_cell * 0.8
                labels = []
                for w in range(3):
                    right = rng.random() < 0.9
                    label = (
                        ("yes" if truth_yes else "no") if right else ("no" if truth_yes else "yes")
                    )
                    labels.append(label)
                    worker = HOSTILE if w == 0 and rank == 0 else f"W{(rank + w) % 7}"
                    answers.append((task, worker, label))
                yes = labels.count("yes")
                items.append(
                    {
                        "task": task,
                        "concept": concept,
                        "bucket": bucket,
                        "image_id": image_id,
                        "label": "yes" if yes >= 2 else "no",
                        "accepted": yes >= 2,
                        "posterior": [0.02, 0.2, 0.9, 0.995][yes],
                        "score": 0.3 - rank * 0.001,
                        "rank": rank,
                    }
                )
    return pd.DataFrame(items), pd.DataFrame(answers, columns=["task", "worker", "label"])


def _audit_all(items: pd.DataFrame, wrong: int = 0) -> pd.DataFrame:
    accepted = items[items["accepted"]]
    audits = accepted[["concept", "bucket", "image_id"]].copy()
    audits["correct"] = True
    audits.iloc[:wrong, audits.columns.get_loc("correct")] = False
    audits["source"] = "requester"
    return audits


def test_precision_table_certified_vs_estimated() -> None:
    items, answers = _verified()
    accepted = items[items["accepted"]]
    # Audit only bus: every accepted bus item, no error.
    bus = _audit_all(items)
    bus = bus[bus["concept"] == "bus"].assign(
        audit_id=1, scope_concept="bus", scope_bucket=None, in_pooled=True
    )
    report = build_report(items, answers, audits=bus, settings=ReportSettings(target=0.9))
    table = report.precision.set_index(["concept", "bucket"])
    bus_all = table.loc[("bus", ALL)]
    n_bus = int((accepted["concept"] == "bus").sum())
    assert bus_all["accepted"] == n_bus
    assert bus_all["audited"] == n_bus
    assert bool(bus_all["census"])  # every accepted bus item was audited
    assert bus_all["certified_lower"] == 1.0
    assert bus_all["status"] == "certified"
    # A concept-scoped audit says nothing about the whole dataset or other concepts.
    assert table.loc[(ALL, ALL)]["status"] == "not audited"
    assert table.loc[("camera", ALL)]["status"] == "not audited"
    cam = table.loc[("camera", "1")]
    cam_accepted = accepted[(accepted["concept"] == "camera") & (accepted["bucket"] == 1)]
    assert cam["estimated_precision"] == pytest.approx(cam_accepted["posterior"].mean())
    kinds = {c["scope"]: c["kind"] for c in report.claims}
    assert kinds["concept bus (all buckets)"] == "certified"
    assert kinds["whole dataset"] == "estimated"
    assert "an estimate, not a certificate" in next(
        c["text"] for c in report.claims if c["scope"] == "whole dataset"
    )
    # A census says so, with the exact precision, and how few images it covers.
    census = next(c["text"] for c in report.claims if c["scope"] == "concept bus (all buckets)")
    assert f"all {n_bus} accepted images audited (a census), 0 error(s)" in census
    assert "precision 100.00% exactly" in census and "Clopper-Pearson" not in census
    assert "Only" not in census  # 29 clean audits certify 90%: this census is no handful
    strict = build_report(items, answers, audits=bus, settings=ReportSettings(target=0.99))
    census = next(c["text"] for c in strict.claims if c["scope"] == "concept bus (all buckets)")
    assert f"Only {n_bus} images: too few" in census  # 99% would take 299


def test_certificates_use_the_finite_population_bound_beside_clopper_pearson() -> None:
    # 600 accepted images: 208 audited without error certify 99% at 95% (sampling
    # without replacement), 207 do not; Clopper-Pearson alone would need 299.
    rows = []
    answers = []
    for i in range(600):
        rows.append(
            {
                "task": f"bus/{i}",
                "concept": "bus",
                "bucket": 1,
                "image_id": i,
                "label": "yes",
                "accepted": True,
                "posterior": 0.999,
            }
        )
        answers.append((f"bus/{i}", "W1", "yes"))
    items = pd.DataFrame(rows)
    answers_df = pd.DataFrame(answers, columns=["task", "worker", "label"])
    for n, expected in ((208, "certified"), (207, "not certified")):
        audits = items.iloc[:n][["concept", "bucket", "image_id"]].assign(correct=True)
        report = build_report(items, answers_df, audits=audits)
        dataset = report.precision.iloc[-1]
        assert dataset["status"] == expected, n
        assert (dataset["certified_lower"] >= 0.99) == (expected == "certified")
        assert dataset["binomial_lower"] < 0.99  # Clopper-Pearson: 299 needed
    assert report.summary["zero_error_sample_needed"] == 208
    assert report.summary["one_error_sample_needed"] == 312
    # Clopper-Pearson's reference figures stay beside it: 299 clean, 473 with one error.
    audits = items.iloc[:299][["concept", "bucket", "image_id"]].assign(correct=True)
    assert (
        build_report(items, answers_df, audits=audits).precision.iloc[-1]["binomial_lower"] >= 0.99
    )
    one = items.iloc[:312][["concept", "bucket", "image_id"]].assign(correct=True)
    one.iloc[0, one.columns.get_loc("correct")] = False
    assert build_report(items, answers_df, audits=one).precision.iloc[-1]["status"] == "certified"
    assert (
        build_report(
            items, answers_df, audits=one.iloc[1:312].assign(correct=[False] + [True] * 310)
        ).precision.iloc[-1]["status"]
        == "not certified"
    )


def test_refuted_and_stale_audits() -> None:
    items, answers = _verified()
    audits = _audit_all(items, wrong=20)
    rejected = items[~items["accepted"]].iloc[:3]
    stale = rejected[["concept", "bucket", "image_id"]].assign(correct=True, source="requester")
    report = build_report(items, answers, audits=pd.concat([audits, stale]))
    assert report.precision.iloc[-1]["status"] == "refuted"
    assert report.summary["stale_audits"] == 3
    assert any("no longer accepted" in w for w in report.warnings)


def test_pooled_rows_use_only_pooled_sample() -> None:
    items, answers = _verified()
    audits = _audit_all(items).assign(audit_id=7, scope_concept=None, scope_bucket=None)
    audits["in_pooled"] = False
    audits.iloc[:10, audits.columns.get_loc("in_pooled")] = True
    report = build_report(items, answers, audits=audits)
    table = report.precision.set_index(["concept", "bucket"])
    assert table.loc[(ALL, ALL)]["audited"] == 10
    cell_audited = table.loc[[(c, b) for c in ("bus", "camera") for b in ("1", "2")]]["audited"]
    assert int(cell_audited.sum()) == len(audits)


def test_report_bad_input() -> None:
    items, answers = _verified()
    with pytest.raises(AnalysisError, match="no answers to report on yet"):
        build_report(items.iloc[0:0], answers.iloc[0:0])
    with pytest.raises(AnalysisError, match="not verified items"):
        build_report(
            items,
            pd.concat(
                [
                    answers,
                    pd.DataFrame(
                        [("bus/999999", "W1", "yes")], columns=["task", "worker", "label"]
                    ),
                ]
            ),
        )
    with pytest.raises(AnalysisError, match="never verified"):
        build_report(
            items,
            answers,
            audits=pd.DataFrame(
                [{"concept": "bus", "bucket": 1, "image_id": 424242, "correct": True}]
            ),
        )
    with pytest.raises(AnalysisError, match="missing column"):
        build_report(items.drop(columns=["posterior"]), answers)
    with pytest.raises(AnalysisError, match="strictly between"):
        build_report(items, answers, settings=ReportSettings(target=1.0))


def test_no_gold_concept_warning_and_cost() -> None:
    items, answers = _verified()
    cost = CostSummary(
        rewards=Decimal("4.80"), fees=Decimal("0.96"), bonuses=Decimal("0.50"), assignments=96
    )
    report = build_report(items, answers, cost=cost, gold_by_concept={"bus": 12})
    assert any("concept camera: no gold" in w for w in report.warnings)
    assert not any("concept bus: no gold" in w for w in report.warnings)
    data = report.to_json()
    accepted = int(items["accepted"].sum())
    assert data["cost"]["total"] == "6.26"
    assert Decimal(data["cost"]["per_accepted_image"]) == (Decimal("6.26") / accepted).quantize(
        Decimal("0.0001")
    )


def test_rank_agreement_and_answers_per_item() -> None:
    items, answers = _verified(n_per_cell=50)
    report = build_report(items, answers, settings=ReportSettings(rank_bins=5))
    ra = report.rank_agreement
    assert len(ra) == 5
    assert ra["items"].sum() == len(items)
    assert ra.iloc[0]["share_accepted"] > ra.iloc[-1]["share_accepted"]
    assert ((ra["agreement"] > 0.5) & (ra["agreement"] <= 1)).all()
    assert ra["share_true"].isna().all()  # no truth known
    truth = items["rank"] < 40  # what _verified made true
    known = build_report(items.assign(true=truth), answers, settings=ReportSettings(rank_bins=5))
    shares = known.rank_agreement["share_true"].tolist()
    assert shares[0] == 1.0 and shares[-1] == 0.0
    api = report.answers_per_item
    assert api.to_dict(orient="records") == [{"answers": 3, "items": len(items)}]


def test_write_report_files_are_self_contained_and_escaped(tmp_path: Path) -> None:
    items, answers = _verified()
    items.loc[0, "concept"] = HOSTILE
    items.loc[0, "task"] = f"{HOSTILE}/1"
    answers.loc[answers["task"] == "bus/" + str(items.loc[0, "image_id"]), "task"] = f"{HOSTILE}/1"
    workers = pd.DataFrame(
        {
            "worker": [HOSTILE, "W1"],
            "answers": [3, 9],
            "gold_answers": [2, 4],
            "gold_correct": [1, 4],
            "accuracy": [0.5, 1.0],
            "spammer": [True, False],
            "clicker": [False, False],
        }
    )
    report = build_report(
        items,
        answers,
        workers=workers,
        audits=_audit_all(items),
        settings=ReportSettings(title=f"Report {HOSTILE}", notes=(HOSTILE,)),
    )
    files = write_report(report, tmp_path / "out")
    html = files.html.read_text()
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    assert html.count("<svg") == 4
    data = json.loads(files.json.read_text())
    assert data["summary"]["accepted"] == int(items["accepted"].sum())
    assert set(files.csvs) >= {"precision", "workers", "answers_per_item", "rank_agreement"}
    precision_csv = pd.read_csv(files.csvs["precision"])
    assert list(precision_csv["concept"])[-1] == ALL
