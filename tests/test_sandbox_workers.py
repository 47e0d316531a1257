"""Simulated workers against a running sandbox: recognise images by hash, answer, submit."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.fixtures.sandbox import contract_page, html_question
from turk.sandbox import SandboxError
from turk.sandbox.workers import load_truth, make_population, read_hit_form, run_workers

CONCEPTS = ["bus", "camera", "none", "bus", "camera", "none"]


@pytest.fixture
def truth_setup(sandbox_server, tmp_path):
    """Six images (distinct bytes) with truth.csv; copies in the media folder under opaque names."""
    folder = tmp_path / "sample"
    (folder / "images").mkdir(parents=True)
    rows = []
    for index, concept in enumerate(CONCEPTS):
        data = f"image-{index}-{concept}".encode() * 50
        (folder / "images" / f"{index}.jpg").write_bytes(data)
        (sandbox_server.media_dir / f"tok{index:02d}x.jpg").write_bytes(data)
        rows.append({"image": str(index), "concept": concept, "file": f"images/{index}.jpg"})
    with (folder / "truth.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "concept", "file"])
        writer.writeheader()
        writer.writerows(rows)
    return folder / "truth.csv"


def _publish(client, server, n_hits=2, max_assignments=3, multi=False):
    urls = [f"{server.media_url}/tok{i:02d}x.jpg" for i in range(len(CONCEPTS))]
    page = (
        contract_page(urls, classes=["bus", "camera"])
        if multi
        else contract_page(urls, concept="bus")
    )
    hit_ids = []
    for _ in range(n_hits):
        hit_ids.append(
            client.create_hit(
                Title="t",
                Description="d",
                Reward="0.05",
                AssignmentDurationInSeconds=600,
                LifetimeInSeconds=600,
                MaxAssignments=max_assignments,
                Question=html_question(page),
            )["HIT"]["HITId"]
        )
    return hit_ids


def _answers(client, hit_ids):
    out = {}
    for hit_id in hit_ids:
        for a in client.list_assignments_for_hit(HITId=hit_id, MaxResults=100)["Assignments"]:
            out[(hit_id, a["WorkerId"])] = a["Answer"]
    return out


def test_perfect_workers_answer_binary_from_truth(sandbox_server, mturk_client, truth_setup):
    client = mturk_client()
    hit_ids = _publish(client, sandbox_server)
    result = run_workers(sandbox_server.url, truth_setup, n=4, seed=1, accuracy=(1.0, 1.0))
    assert result.submitted == 6 and result.accepted == 6  # 2 HITs x 3 assignments
    assert result.items_answered == 36 and result.items_correct == 36 and result.unknown_images == 0
    answers = _answers(client, hit_ids)
    assert len(answers) == 6
    for xml in answers.values():
        for index, concept in enumerate(CONCEPTS):
            expected = "yes" if concept == "bus" else "no"
            assert (
                f"<QuestionIdentifier>item-{index}</QuestionIdentifier><FreeText>{expected}</FreeText>"
                in xml
            )


def test_multi_select_and_clickers(sandbox_server, mturk_client, truth_setup):
    client = mturk_client()
    hit_ids = _publish(client, sandbox_server, n_hits=1, max_assignments=2, multi=True)
    result = run_workers(
        sandbox_server.url, truth_setup, n=2, seed=3, accuracy=(1.0, 1.0), clickers=0.5
    )
    assert result.by_kind == {"clicker": 1, "honest": 1}
    answers = _answers(client, hit_ids)
    texts = sorted(answers.values())
    honest = [t for t in texts if "<FreeText>none</FreeText>" in t]
    clicker = [t for t in texts if "<FreeText>none</FreeText>" not in t]
    assert len(honest) == 1 and len(clicker) == 1
    assert "<QuestionIdentifier>item-1</QuestionIdentifier><FreeText>camera</FreeText>" in honest[0]
    assert clicker[0].count("<FreeText>bus</FreeText>") == len(CONCEPTS)


def test_same_seed_same_answers(sandbox_server, mturk_client, truth_setup, tmp_path):
    client = mturk_client()
    first_ids = _publish(client, sandbox_server, n_hits=2, max_assignments=2)
    run_workers(sandbox_server.url, truth_setup, n=2, seed=7, accuracy=(0.5, 0.7), spammers=0.5)
    first = [v for _, v in sorted(_answers(client, first_ids).items())]
    second_ids = _publish(client, sandbox_server, n_hits=2, max_assignments=2)
    run_workers(sandbox_server.url, truth_setup, n=2, seed=7, accuracy=(0.5, 0.7), spammers=0.5)
    second = [v for _, v in sorted(_answers(client, second_ids).items())]
    # same population, same HIT order: per-worker answer sequences repeat
    assert sorted(first) == sorted(second)


def test_max_hits_and_unknown_images(sandbox_server, mturk_client, truth_setup):
    client = mturk_client()
    (sandbox_server.media_dir / "tok00x.jpg").write_bytes(b"changed bytes")
    _publish(client, sandbox_server, n_hits=3, max_assignments=1)
    result = run_workers(sandbox_server.url, truth_setup, n=1, seed=0, max_hits=2)
    assert result.submitted == 2 and result.unknown_images == 2


def test_population_is_deterministic():
    a = make_population(10, seed=5, spammers=0.2, clickers=0.1)
    b = make_population(10, seed=5, spammers=0.2, clickers=0.1)
    assert [(w.worker_id, w.kind, w.accuracy) for w in a] == [
        (w.worker_id, w.kind, w.accuracy) for w in b
    ]
    assert sum(w.kind == "spammer" for w in a) == 2 and sum(w.kind == "clicker" for w in a) == 1


def test_reads_the_contract_around_instruction_images():
    page = (
        '<div data-task="binary" data-concept="bus"><img src="example.jpg">'
        '<ol><li data-item="item-0"><img src="a.jpg">'
        '<input type="radio" name="item-0" value="yes"></li>'
        '<li data-item="item-1"><img src="b.jpg"></li></ol></div>'
    )
    form = read_hit_form(page)
    assert form.task == "binary" and form.concept == "bus"
    assert form.items == [("item-0", "a.jpg"), ("item-1", "b.jpg")]


def test_bad_truth_files(tmp_path):
    with pytest.raises(SandboxError, match="cannot read the truth file"):
        load_truth(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("image,label\n1,bus\n")
    with pytest.raises(SandboxError, match="missing column"):
        load_truth(bad)
    dangling = tmp_path / "dangling.csv"
    dangling.write_text("image,concept,file\n1,bus,images/nope.jpg\n")
    with pytest.raises(SandboxError, match="line 2"):
        load_truth(dangling)


def test_unreachable_sandbox(truth_setup):
    with pytest.raises(SandboxError, match="did not answer"):
        run_workers("http://127.0.0.1:9", truth_setup, n=1)


def test_cli_workers(sandbox_server, mturk_client, truth_setup, cli):
    _publish(mturk_client(), sandbox_server, n_hits=1, max_assignments=2)

    def workers(*args: object):  # type: ignore[no-untyped-def]
        return cli("sandbox", "workers", "--endpoint-url", sandbox_server.url, *args)

    result = workers("--truth", truth_setup, "--n", "3", "--seed", "2")
    assert result.exit_code == 0, result.stderr
    assert "submitted 2 HITs" in result.stdout
    bad = workers("--truth", Path("/nonexistent.csv"))
    assert bad.exit_code == 1 and "nonexistent.csv" in bad.stderr
    bad = workers("--truth", truth_setup, "--accuracy", "x")
    assert bad.exit_code == 1 and "--accuracy" in bad.stderr


def test_misleading_kinds_raise_the_error_rate_within_the_real_crowds_cap(tmp_path):
    from turk.sandbox.workers import HARD_ERROR_CAP, error_rate

    assert error_rate(0.9, "clean") == pytest.approx(0.1)
    assert error_rate(0.9, "hard") == pytest.approx(0.22)
    assert error_rate(0.9, "trap") > error_rate(0.9, "")
    assert error_rate(0.5, "hard") == pytest.approx(max(0.5, HARD_ERROR_CAP))
    (tmp_path / "a.jpg").write_bytes(b"a")
    (tmp_path / "b.jpg").write_bytes(b"b")
    (tmp_path / "truth.csv").write_text("image,concept,file\n1,bus,a.jpg\n2,none,b.jpg\n")
    (tmp_path / "scenes.csv").write_text("image,kind,scene,other,word\n2,hard,bus stop,,\n")
    kinds = {e.image: e.kind for e in load_truth(tmp_path / "truth.csv").values()}
    assert kinds == {"1": "", "2": "hard"}
    (tmp_path / "scenes.csv").write_text("picture,kind\n2,hard\n")
    with pytest.raises(SandboxError, match=r"scenes\.csv: line 1"):
        load_truth(tmp_path / "truth.csv")
