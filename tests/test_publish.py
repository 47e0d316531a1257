"""turk publish: to the local sandbox through real boto3, its money rules, guards and bad input."""

from __future__ import annotations

import io
import os
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.crowd import CrowdProject
from turk.crowd.boto import BotoBackend, connect
from turk.crowd.publish import (
    execute_publish,
    load_publish_config,
    plan_for_publish,
    prepare_publish,
)
from turk.crowd.records import parse_annotation, request_token
from turk.errors import ConfigError, CrowdError, InputError, MoneyError
from turk.sandbox import SandboxConfig, SandboxServer


def _publish(cli, project: CrowdProject, *extra: object):
    return cli(
        "--db",
        project.db_path,
        "publish",
        *project.cli_target(),
        "--media-dir",
        project.media_dir,
        "--gold",
        project.seeded.gold,
        "--gold-rate",
        "0.2",
        *extra,
    )


def _server_hits(project: CrowdProject) -> list[str]:
    return [h.annotation for h in project.backend.list_hits()]


def _ledger_hits(project: CrowdProject) -> list[sqlite3.Row]:
    conn = sqlite3.connect(project.db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM hits ORDER BY id").fetchall()
    finally:
        conn.close()


def test_publish_creates_each_hit_once_and_a_rerun_sends_nothing(cli, crowd_project):
    result = _publish(cli, crowd_project)
    assert result.exit_code == 0, result.stderr
    assert "8 HITs published to local" in result.stdout
    assert "$1.44" in result.stdout  # 8 HITs x 3 x (0.05 + 0.01 fee), shown before sending
    rows = _ledger_hits(crowd_project)
    annotations = _server_hits(crowd_project)
    assert len(rows) == 8 == len(annotations) == len(set(annotations))
    for row in rows:
        assert row["target"] == "local" and row["status"] == "published" and row["hit_id"]
        assert row["token"] == request_token("local", "hit", row["hit_key"])
        assert len(row["token"]) <= 64
        assert parse_annotation(row["annotation"]) == (row["batch_id"], row["hit_key"])
    # Every item image is where the sandbox serves /media/, under its opaque name.
    tokens = (
        sqlite3.connect(crowd_project.db_path)
        .execute("SELECT media_token FROM hit_items")
        .fetchall()
    )
    assert tokens and all((crowd_project.media_dir / f"{t}.jpg").is_file() for (t,) in tokens)

    again = _publish(cli, crowd_project)
    assert again.exit_code == 0, again.stderr
    assert "0 HITs published to local, 8 already there" in again.stdout
    assert len(_server_hits(crowd_project)) == 8


def test_budget_is_a_hard_cap(cli, crowd_project):
    result = _publish(cli, crowd_project, "--budget", "0.60")  # $0.18 per HIT: 3 fit
    assert result.exit_code == 0, result.stderr
    assert "stopped by --budget $0.60: 5 HITs not published" in result.stderr
    assert len(_server_hits(crowd_project)) == 3
    again = _publish(cli, crowd_project, "--budget", "0.60")
    assert "too small for one more HIT" in again.stderr and again.exit_code == 1
    assert len(_server_hits(crowd_project)) == 3
    more = _publish(cli, crowd_project, "--budget", "0.90")
    assert more.exit_code == 0 and len(_server_hits(crowd_project)) == 5
    committed = sum(Decimal(r["cost"]) for r in _ledger_hits(crowd_project) if r["hit_id"])
    assert committed <= Decimal("0.90")


def test_budget_too_small_sends_and_writes_nothing(cli, crowd_project):
    result = _publish(cli, crowd_project, "--budget", "0.10")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "too small for one more HIT ($0.18" in result.stderr
    assert _server_hits(crowd_project) == [] and _ledger_hits(crowd_project) == []
    assert crowd_project.backend.stats.total_calls == 1  # the test's own ListHITs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--reward", "abc"), "--reward: 'abc' is not an amount"),
        (("--reward", "0.005"), "fractions of a cent"),
        (("--budget", "-1"), "--budget: '-1' is negative"),
        (("--budget", "lots"), "--budget: 'lots' is not an amount"),
        (("--max-assignments", "3", "--extend-to", "12"), "cannot extend a HIT created with"),
        (("--task", "ranking"), "--task: 'ranking' is not a task"),
    ],
)
def test_bad_options_fail_in_one_line_before_sending(cli, crowd_project, args, message):
    result = _publish(cli, crowd_project, *args)
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert _server_hits(crowd_project) == [] and _ledger_hits(crowd_project) == []


def test_unknown_target_is_refused(cli, crowd_project):
    result = cli("--db", crowd_project.db_path, "publish", "--target", "mturk-prod")
    assert result.exit_code == 1
    assert (
        "--target 'mturk-prod': unknown crowd target; use one of "
        "local, turkle, handoff, mturk-sandbox, mturk" in (result.stderr)
    )


def test_config_file_missing_field_and_unknown_qualification(cli, crowd_project, tmp_path):
    config = tmp_path / "hit.yaml"
    config.write_text("hit_type:\n  description: Say yes or no\n  reward: '0.05'\n")
    result = _publish(cli, crowd_project, "--config", config)
    assert result.exit_code == 1
    assert f"{config}: hit_type.title is missing; add it to the file" in result.stderr
    config.write_text(
        "hit_type:\n  title: Photos\n  description: Say yes or no\n  reward: '0.07'\n"
        "qualifications:\n  require: [no-such-qualification]\n"
    )
    result = _publish(cli, crowd_project, "--config", config)
    assert result.exit_code == 1
    assert "qualification 'no-such-qualification' does not exist on target local" in result.stderr
    assert _server_hits(crowd_project) == []


def test_config_file_sets_hit_type_and_qualifications(crowd_project, tmp_path):
    project = crowd_project
    trusted = project.backend.create_qualification_type("trusted", "good workers")
    config = tmp_path / "hit.yaml"
    config.write_text(
        "hit_type:\n  title: 'Is it a {concept}?'\n  description: Look closely at {items} photos\n"
        "  reward: '0.12'\n  keywords: [photo, quick]\n  assignment_duration: 15m\n"
        "  auto_approval_delay: 2d\n  lifetime: 3d\n  max_assignments: 10\n"
        "  max_total_assignments: 12\n"
        "qualifications:\n  locale: [US, ca]\n  approval_rate: 95\n  approved_hits: 100\n"
        "  require: [trusted]\n"
    )
    settings = load_publish_config(config)
    assert settings.hit_type.reward == Decimal("0.12")
    assert settings.hit_type.assignment_duration_s == 900
    plans = plan_for_publish(project.ledger, project.backend, concepts=["bus"], buckets=[1])
    prepared = prepare_publish(
        project.ledger, project.backend, plans, settings, media_dir=project.media_dir
    )
    assert prepared.per_hit == Decimal("1.20") + Decimal("0.50")  # 40% fee from 10 assignments
    report = execute_publish(project.ledger, project.backend, prepared)
    hit = project.backend.get_hit(
        project.ledger.conn.execute("SELECT hit_id FROM hits").fetchone()[0]
    )
    assert report.published == 1 and hit.max_assignments == 10 and hit.reward == "0.12"
    raw = project.backend.client.get_hit(HITId=hit.hit_id)["HIT"]
    assert raw["Title"] == "Is it a bus?" and raw["AutoApprovalDelayInSeconds"] == 172800
    items = project.ledger.conn.execute("SELECT COUNT(*) FROM hit_items").fetchone()[0]
    assert raw["Description"] == f"Look closely at {items} photos"  # the HIT's own count
    quals = {q["QualificationTypeId"]: q for q in raw["QualificationRequirements"]}
    assert quals["00000000000000000071"]["LocaleValues"] == [{"Country": "US"}, {"Country": "CA"}]
    assert quals["000000000000000000L0"]["IntegerValues"] == [95]
    assert quals["00000000000000000040"]["IntegerValues"] == [100]
    assert quals[trusted]["Comparator"] == "Exists"


def test_extension_boundary_is_explained():
    with pytest.raises(ConfigError, match="--max-assignments 10 or more, or keep --extend-to at 9"):
        load_publish_config(max_assignments=5, max_total_assignments=10)
    assert load_publish_config(max_assignments=9).hit_type.max_total_assignments == 9
    assert load_publish_config(max_assignments=10).hit_type.max_total_assignments == 12


def test_dry_run_calls_no_service(cli, crowd_project, tmp_path):
    crowd_project.server.stop()  # nothing listens: any call would fail
    out = tmp_path / "pages"
    result = _publish(cli, crowd_project, "--dry-run", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "publish --dry-run: " in result.stdout and (out / "index.html").is_file()
    assert _ledger_hits(crowd_project) == []


def test_missing_credentials_on_an_mturk_target(cli, crowd_project, monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = cli("--db", crowd_project.db_path, "publish", "--target", "mturk-sandbox")
    assert result.exit_code == 1
    assert "target mturk-sandbox: no AWS credentials found" in result.stderr
    assert _ledger_hits(crowd_project) == []


def test_production_guards_and_confirmation(cli, crowd_project, monkeypatch):
    # Production's guards, exercised against the local server through --endpoint-url.
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTPRODGUARD")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    base = (
        "--db",
        crowd_project.db_path,
        "publish",
        "--target",
        "mturk",
        "--endpoint-url",
        crowd_project.server.url,
        "--media-dir",
        crowd_project.media_dir,
    )
    result = cli(*base)
    assert result.exit_code == 1 and "--image-base-url is required for target mturk" in (
        result.stderr
    )
    base = (*base, "--image-base-url", "https://media.example.org/turk/")  # type: ignore[assignment]
    result = cli(*base)
    assert result.exit_code == 1 and "pass --live" in result.stderr
    result = cli(*base, "--live")
    assert result.exit_code == 1 and "needs a budget: pass --budget USD" in result.stderr
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))  # the user says no
    result = cli(*base, "--live", "--budget", "1.00")
    assert result.exit_code == 1 and "not confirmed; nothing was sent" in result.stderr
    assert "Publish 4 HITs on PRODUCTION MTurk, committing up to $0.72?" in result.stderr
    assert _server_hits(crowd_project) == []
    result = cli(*base, "--live", "--budget", "1.00", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "4 HITs published to mturk" in result.stdout
    assert all(r["target"] == "mturk" for r in _ledger_hits(crowd_project))
    # Credentials never reach the ledger or the output.
    assert secret.encode() not in crowd_project.db_path.read_bytes()
    assert secret not in result.stdout + result.stderr


def test_each_target_keeps_its_own_hits(crowd_project, tmp_path, request):
    project = crowd_project
    plans = plan_for_publish(project.ledger, project.backend, concepts=["bus"])
    settings = load_publish_config()
    prepared = prepare_publish(
        project.ledger, project.backend, plans, settings, media_dir=project.media_dir
    )
    execute_publish(project.ledger, project.backend, prepared)
    # The production code path, pointed at a second local server (another account):
    # nothing of local's counts.
    other = SandboxServer(SandboxConfig(state_path=tmp_path / "production.db")).start()
    request.addfinalizer(other.stop)
    client = connect("local", endpoint_url=other.url).client
    production = BotoBackend("mturk", client, other.url, live=True)
    prepared = prepare_publish(
        project.ledger,
        production,
        plans,
        settings,
        budget=Decimal("5"),
        live=True,
        media_dir=project.media_dir,
    )
    assert prepared.hit_keys_done == set() and len(prepared.to_publish) == 2
    execute_publish(project.ledger, production, prepared)
    rows = _ledger_hits(project)
    by_key: dict[str, dict[str, sqlite3.Row]] = {}
    for row in rows:
        by_key.setdefault(row["hit_key"], {})[row["target"]] = row
    assert len(by_key) == 2
    for pair in by_key.values():
        assert set(pair) == {"local", "mturk"}
        assert pair["local"]["token"] != pair["mturk"]["token"]
        assert pair["local"]["hit_id"] != pair["mturk"]["hit_id"]
    unguarded = BotoBackend("mturk", client, other.url, live=False)
    with pytest.raises(MoneyError, match="pass --live"):
        prepare_publish(project.ledger, unguarded, plans, settings, budget=Decimal("5"))
    with pytest.raises(MoneyError, match="refused: pass --live"):
        unguarded.expire_hit(pair["mturk"]["hit_id"])


def test_reconciles_hits_sent_before_a_crash_even_past_the_token_window(crowd_project):
    project = crowd_project
    plans = plan_for_publish(
        project.ledger, project.backend, gold=project.seeded.gold, gold_rate=0.2
    )
    settings = load_publish_config()
    prepared = prepare_publish(
        project.ledger, project.backend, plans, settings, media_dir=project.media_dir
    )
    execute_publish(project.ledger, project.backend, prepared, concurrency=4)
    # As if killed after each call went out and before its answer was written down.
    with project.ledger.conn:
        project.ledger.conn.execute("UPDATE hits SET hit_id=NULL, status='intent'")
    project.server.advance_clock(25 * 3600)  # MTurk forgets tokens after 24 hours
    before = dict(project.backend.stats.calls)
    prepared = prepare_publish(
        project.ledger, project.backend, plans, settings, media_dir=project.media_dir
    )
    report = execute_publish(project.ledger, project.backend, prepared, concurrency=4)
    assert report.reconciled == 8 and report.published == 0
    assert project.backend.stats.calls.get("CreateHITWithHITType", 0) == before.get(
        "CreateHITWithHITType", 0
    )
    assert len(_server_hits(project)) == 8


def test_no_candidates_is_a_stage_error(cli, tmp_path, sandbox_server):
    db = tmp_path / "empty.db"
    from turk.ledger import Ledger

    Ledger(db).close()
    result = cli("--db", db, "publish", "--target", "local", "--endpoint-url", sandbox_server.url)
    assert result.exit_code == 1 and "no ranked candidates" in result.stderr
    assert "run 'turk rank" in result.stderr


def test_intent_is_written_before_the_call(crowd_project, crowd_backend):
    project = crowd_project
    backend = crowd_backend(project.server, max_attempts=2)
    plans = plan_for_publish(project.ledger, backend, concepts=["bus"], buckets=[1])
    settings = load_publish_config()
    prepared = prepare_publish(
        project.ledger, backend, plans, settings, media_dir=project.media_dir
    )
    project.server.stop()  # the call fails: the intent must be there, ready for a rerun
    with pytest.raises(CrowdError, match="cannot reach"):
        execute_publish(project.ledger, backend, prepared)
    rows = project.ledger.conn.execute("SELECT status, hit_id, error FROM hits").fetchall()
    assert [r[:2] for r in rows] == [("intent", None)]
    project.server.start()
    prepared = prepare_publish(
        project.ledger, backend, plans, settings, media_dir=project.media_dir
    )
    report = execute_publish(project.ledger, backend, prepared)
    assert report.published + report.reconciled == 1 and len(_server_hits(project)) == 1


def test_media_files_must_exist(crowd_project):
    project = crowd_project
    plans = plan_for_publish(project.ledger, project.backend, concepts=["bus"], buckets=[1])
    Path(plans[0].items[0].local_path or "").unlink()
    prepared = prepare_publish(
        project.ledger, project.backend, plans, load_publish_config(), media_dir=project.media_dir
    )
    with pytest.raises(InputError, match="image file is missing"):
        execute_publish(project.ledger, project.backend, prepared)
    assert _server_hits(project) == []
