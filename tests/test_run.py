"""turk run: resumes after SIGKILL between and inside stages, detects invalidation, refuses
stages whose inputs do not exist."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.project import edit_yaml
from turk.collection.sample import write_sample
from turk.errors import ConfigError
from turk.project.pipeline import NEEDS, STAGES, select_stages
from turk.project.scaffold import init_project

BIG_N = 40_000


@pytest.fixture(scope="module")
def big_metadata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A metadata-only sample large enough that ingest takes a few seconds."""
    folder = tmp_path_factory.mktemp("big") / "sample"
    write_sample(folder, n=BIG_N, metadata_only=True)
    return folder / "metadata.tsv"


@pytest.fixture
def big_project(tmp_path: Path, big_metadata: Path) -> Path:
    folder = tmp_path / "project"
    init_project(folder)
    path = folder / "turk.yaml"
    edit_yaml(path, "collection.metadata", [str(big_metadata)])
    edit_yaml(path, "collection.images", None)
    edit_yaml(path, "gold.file", None)
    return folder


def _turk(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "turk", "run", "--project", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


def _stage_status(db: Path, name: str) -> str | None:
    rows = _query(db, f"SELECT status FROM stages WHERE name = '{name}'")
    return str(rows[0][0]) if rows else None


def _kill_when(process: subprocess.Popen[str], ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never reached the point to kill it"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _finish(project: Path, *args: str) -> str:
    process = _turk(project, *args)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


@pytest.mark.slow
def test_resume_after_sigkill_inside_a_stage(big_project: Path) -> None:
    db = big_project / "turk.db"
    process = _turk(big_project, "--until", "buckets")
    _kill_when(process, lambda: _stage_status(db, "ingest") == "running")
    assert _stage_status(db, "ingest") == "running"  # killed half-way: left as it was
    out = _finish(big_project, "--until", "buckets")
    assert "ingest (done)" in out and "buckets (done)" in out
    assert _query(db, "SELECT COUNT(*) FROM images") == [(BIG_N,)]
    assert _query(db, "SELECT COUNT(*) FROM images WHERE bucket IS NULL") == [(0,)]
    assert _query(db, "SELECT SUM(image_count) FROM buckets") == [(BIG_N,)]
    assert {r[0] for r in _query(db, "SELECT status FROM stages")} == {"done"}


@pytest.mark.slow
def test_resume_after_sigkill_between_stages(big_project: Path) -> None:
    db = big_project / "turk.db"
    process = _turk(big_project, "--until", "buckets")
    _kill_when(process, lambda: _stage_status(db, "ingest") == "done")
    out = _finish(big_project, "--until", "buckets")
    assert "ingest (skipped)" in out and "already done" in out
    assert "buckets (done)" in out or "buckets (skipped)" in out
    assert _query(db, "SELECT COUNT(*) FROM images WHERE bucket IS NOT NULL") == [(BIG_N,)]
    again = _finish(big_project, "--until", "buckets")
    assert "ingest (skipped)" in again and "buckets (skipped)" in again


def test_changed_setting_is_reported_with_the_stages_it_invalidates(
    cli, sample_project: Path
) -> None:
    path = sample_project / "turk.yaml"
    first = cli("run", "--project", sample_project, "--until", "buckets")
    assert first.exit_code == 0, first.stderr
    assert "2 stages run" in first.stdout
    edit_yaml(path, "buckets.count", 4)
    refused = cli("run", "--project", sample_project, "--until", "buckets")
    assert refused.exit_code == 1
    message = refused.stderr.strip()
    assert message.count("\n") == 0
    assert "buckets.count (7 -> 4) changed since buckets ran" in message
    assert "invalidates buckets, rank, publish, collect, review, rounds, report, export" in message
    assert "'turk run --from buckets'" in message
    before = _query(sample_project / "turk.db", "SELECT COUNT(*) FROM buckets")
    assert before == [(7,)]  # nothing was redone silently
    redo = cli("run", "--project", sample_project, "--from", "buckets", "--until", "buckets")
    assert redo.exit_code == 0, redo.stderr
    assert _query(sample_project / "turk.db", "SELECT COUNT(*) FROM buckets") == [(4,)]
    again = cli("run", "--project", sample_project, "--until", "buckets")
    assert "0 stages run, 2 already done" in again.stdout


def test_changed_input_file_invalidates_everything_after_it(cli, sample_project: Path) -> None:
    assert cli("run", "--project", sample_project, "--until", "buckets").exit_code == 0
    metadata = sample_project / "sample" / "metadata.tsv"
    with metadata.open("a", encoding="utf-8") as handle:
        handle.write("")
    os.utime(metadata, ns=(time.time_ns(), time.time_ns() + 10_000_000_000))
    refused = cli("run", "--project", sample_project)
    assert refused.exit_code == 1
    assert "collection.metadata (file changed) changed since ingest ran" in refused.stderr
    assert "invalidates ingest, buckets, embed, rank" in refused.stderr
    assert "'turk run --from ingest'" in refused.stderr


def test_stage_before_its_inputs(cli, sample_project: Path) -> None:
    result = cli("run", "--project", sample_project, "buckets")
    assert result.exit_code == 1
    assert (
        "stage buckets needs ingest, which has not run; run 'turk run --until buckets'"
        in result.stderr
    )
    assert cli("run", "--project", sample_project, "ingest").exit_code == 0
    assert cli("run", "--project", sample_project, "buckets").exit_code == 0


def test_stage_whose_input_was_killed_half_way(cli, sample_project: Path) -> None:
    assert cli("run", "--project", sample_project, "ingest").exit_code == 0
    with sqlite3.connect(sample_project / "turk.db") as conn:  # as a SIGKILL leaves it
        conn.execute("UPDATE stages SET status = 'running' WHERE name = 'ingest'")
    result = cli("run", "--project", sample_project, "buckets")
    assert result.exit_code == 1
    assert "needs ingest, which did not finish (running)" in result.stderr


def test_stage_selection() -> None:
    assert select_stages([]) == (list(STAGES), set())
    assert select_stages(["rank", "collect"]) == (["rank", "collect"], {"rank"})
    chosen, forced = select_stages(start="rank", until="collect")
    assert chosen == ["rank", "publish", "collect"] and forced == set(chosen)
    assert select_stages(start="report") == (["report", "export"], {"report", "export"})
    with pytest.raises(ConfigError, match=r"unknown stage 'rnak' \(did you mean 'rank'\?\)"):
        select_stages(["rnak"])
    with pytest.raises(ConfigError, match="--from report comes after --until rank"):
        select_stages(start="report", until="rank")
    with pytest.raises(ConfigError, match="not both"):
        select_stages(["rank"], until="rank")
    assert all(need in STAGES[: STAGES.index(s)] for s in STAGES for need in NEEDS[s])


@pytest.fixture
def ranked_project(sample_project: Path, tmp_path: Path) -> Path:
    """The sample project on the tiny model, run until rank."""
    from retrieval.encoder import TINY_CLIP_CONFIG, save_random_model
    from turk.project.config import load_project
    from turk.project.pipeline import run_pipeline

    config, weights = tmp_path / "tiny-clip.json", tmp_path / "tiny-clip.pt"
    save_random_model(TINY_CLIP_CONFIG, config, weights)
    path = sample_project / "turk.yaml"
    edit_yaml(path, "model.name", str(config))
    edit_yaml(path, "model.pretrained", str(weights))
    edit_yaml(path, "model.device", "cpu")
    run_pipeline(load_project(path), until="rank")
    return sample_project


@pytest.mark.slow
def test_money_guards_and_budget_below_published(
    cli, ranked_project: Path, sandbox_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from turk.project.doctor import run_doctor

    path = ranked_project / "turk.yaml"
    db = ranked_project / "turk.db"
    published = cli("run", "--project", ranked_project, "publish")
    assert published.exit_code == 0, published.stderr
    assert "committed" in published.stdout
    cost = _query(db, "SELECT SUM(CAST(cost AS REAL)) FROM hits WHERE target='local'")[0][0]
    assert isinstance(cost, float) and cost > 0.2
    edit_yaml(path, "budget", 0.2)
    refused = cli("run", "--project", ranked_project, "publish")
    assert refused.exit_code == 1
    assert "budget: $0.20 is lower than the $" in refused.stderr
    assert "already committed on target local" in refused.stderr
    budget = [f for f in run_doctor(path, model=False) if f.check == "budget"]
    assert budget and budget[0].status == "fail"

    # Production, pointed at the local server so nothing leaves this machine.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIARUNTEST000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "run-test-secret")
    edit_yaml(path, "budget", 100)
    edit_yaml(path, "crowd.simulated_workers", None)
    edit_yaml(path, "crowd.target", "mturk")
    edit_yaml(path, "crowd.endpoint", sandbox_server.url)
    edit_yaml(path, "crowd.image_base_url", "https://media.example.org/m/")
    no_live = cli("run", "--project", ranked_project, "publish")
    assert no_live.exit_code == 1
    assert "production (real money)" in no_live.stderr and "crowd.live: true" in no_live.stderr
    edit_yaml(path, "crowd.live", True)
    assert "production" in cli("run", "--project", ranked_project, "publish").stderr
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    declined = cli("run", "--project", ranked_project, "publish", "--live")
    assert declined.exit_code == 1
    assert "not confirmed; nothing was sent" in declined.stderr
    assert _query(db, "SELECT COUNT(*) FROM hits WHERE target='mturk'") == [(0,)]
    sent = cli("run", "--project", ranked_project, "publish", "--live", "--yes")
    assert sent.exit_code == 0, sent.stderr
    count = _query(db, "SELECT COUNT(*) FROM hits WHERE target='mturk' AND hit_id IS NOT NULL")
    assert count[0][0] > 0
    assert "run-test-secret" not in sent.stdout + sent.stderr


@pytest.mark.slow
def test_budget_caps_everything_committed_across_a_new_plan(cli, ranked_project: Path) -> None:
    from turk.crowd.spend import target_spend
    from turk.ledger import Ledger

    path = ranked_project / "turk.yaml"
    db = ranked_project / "turk.db"
    first = cli("run", "--project", ranked_project, "publish")
    assert first.exit_code == 0, first.stderr
    with Ledger(db) as ledger:
        committed = target_spend(ledger, "local").committed
    budget = committed + Decimal("0.40")  # two more HITs of $0.18
    edit_yaml(path, "budget", str(budget))
    # Other HIT settings make new HIT keys: a whole new plan meets the same cap.
    edit_yaml(path, "hits.items_per_hit", 8)
    again = cli("run", "--project", ranked_project, "--from", "publish", "--until", "publish")
    assert again.exit_code == 0, again.stderr
    assert f"target local: ${committed} committed, $0.00 spent; budget ${budget}" in again.stdout
    with Ledger(db) as ledger:
        after = target_spend(ledger, "local").committed
    assert after == committed + Decimal("0.36") <= budget
    assert "HITs not sent because of the budget" in again.stdout


def test_offline_without_weights_names_the_turk_yaml_key(cli, sample_project: Path) -> None:
    from retrieval.encoder import _hub_reachable, cached_pretrained

    if _hub_reachable(timeout=2) or cached_pretrained("ViT-B-32", "laion2b_s34b_b79k"):
        pytest.skip("the model hub is reachable or the weights are cached here")
    path = sample_project / "turk.yaml"
    edit_yaml(path, "model.name", "ViT-B-32")
    edit_yaml(path, "model.pretrained", "laion2b_s34b_b79k")
    result = cli("run", "--project", sample_project, "--until", "embed")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "--pretrained" not in line
    assert f"{path}: model.pretrained: 'laion2b_s34b_b79k'" in line
    assert "turk-demo-clip.pt" in line  # a weights file that is on this machine


def test_pretrained_none_in_turk_yaml_means_random_weights(sample_project: Path) -> None:
    from turk.project.config import load_project

    path = sample_project / "turk.yaml"
    edit_yaml(path, "model.pretrained", "none")
    assert load_project(path).model.pretrained is None
