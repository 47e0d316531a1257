"""Inside a project folder every command takes its ledger and its defaults from turk.yaml;
options on the command line still win."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.core import CliResult
from tests.fixtures.project import edit_yaml
from turk.cli.main import main
from turk.ledger import Ledger
from turk.project.config import load_project
from turk.project.defaults import command_defaults
from turk.sandbox import SandboxConfig, SandboxServer


def _turk_in(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> CliResult:
    monkeypatch.chdir(folder)
    monkeypatch.delenv("TURK_DB", raising=False)
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return CliResult(code, out.out, out.err)


def test_every_default_names_a_real_option_of_its_command(sample_project: Path) -> None:
    import inspect

    from turk.cli import commands  # noqa: F401  (registers the commands)
    from turk.cli.app import app

    callbacks = {info.name: info.callback for info in app.registered_commands}
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            callbacks[f"{group.typer_instance.info.name} {info.name}"] = info.callback
    defaults = command_defaults(load_project(sample_project / "turk.yaml"))
    flat = {name: values for name, values in defaults.items() if name != "sandbox"}
    flat.update({f"sandbox {sub}": values for sub, values in defaults["sandbox"].items()})
    for command, options in flat.items():
        assert command in callbacks, command
        params = set(inspect.signature(callbacks[command]).parameters)  # type: ignore[arg-type]
        assert set(options) <= params, (command, set(options) - params)


def test_commands_in_a_sub_folder_use_the_project_ledger(
    sample_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_project(sample_project / "turk.yaml")
    with Ledger(config.ledger):
        pass
    inner = sample_project / "sample"
    done = _turk_in(inner, capsys, monkeypatch, "status")
    assert done.exit_code == 0, done.stderr
    assert not (inner / "turk.db").exists()
    # --db still wins.
    done = _turk_in(inner, capsys, monkeypatch, "--db", "other.db", "status")
    assert done.exit_code == 1 and "other.db: no ledger here" in done.stderr


@pytest.mark.slow
def test_render_in_a_project_builds_the_hits_publish_builds(
    sample_project: Path,
    tiny_clip: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = sample_project / "turk.yaml"
    edit_yaml(path, "model.name", str(tiny_clip[0]))
    edit_yaml(path, "model.pretrained", str(tiny_clip[1]))
    edit_yaml(path, "model.device", "cpu")
    edit_yaml(path, "hits.items_per_hit", 7)
    done = _turk_in(sample_project, capsys, monkeypatch, "run", "--until", "rank")
    assert done.exit_code == 0, done.stderr
    rendered = _turk_in(sample_project, capsys, monkeypatch, "render")
    assert rendered.exit_code == 0, rendered.stderr
    planned = _turk_in(sample_project, capsys, monkeypatch, "publish", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    count = re.compile(r"(\d+) HITs")
    hits = count.search(rendered.stdout)
    assert hits is not None and hits.group(0) in planned.stdout
    assert "gold" in rendered.stdout
    # publish and expire from a sub-folder go to crowd.endpoint, not the default port.
    config = load_project(path)
    port = int(str(config.crowd.endpoint).rsplit(":", 1)[1])
    (sample_project / "media").mkdir(exist_ok=True)
    server = SandboxServer(
        SandboxConfig(
            state_path=sample_project / "sandbox.db",
            port=port,
            media_dir=sample_project / "media",
        )
    ).start()
    try:
        inner = sample_project / "sample"
        published = _turk_in(inner, capsys, monkeypatch, "publish")
        assert published.exit_code == 0, published.stderr
        with Ledger(config.ledger) as ledger:
            (items,) = ledger.conn.execute(
                "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM hit_items GROUP BY hit_key)"
            ).fetchone()
        assert items <= 7
        elsewhere = _turk_in(
            inner, capsys, monkeypatch, "expire", "--endpoint-url", "http://127.0.0.1:9"
        )
        assert elsewhere.exit_code == 1 and "127.0.0.1:9" in elsewhere.stderr
        expired = _turk_in(inner, capsys, monkeypatch, "expire")
        assert expired.exit_code == 0, expired.stderr
        assert hits.group(0).replace("HITs", "HITs expired") in expired.stdout
    finally:
        server.stop()


def test_a_broken_project_file_is_one_line_for_commands_that_use_it(
    sample_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sample_project / "turk.yaml"
    path.write_text(path.read_text() + "\nbudgte: 3\n")
    done = _turk_in(sample_project, capsys, monkeypatch, "status")
    assert done.exit_code == 1
    assert done.stderr.count("\n") == 1 and "budgte" in done.stderr
    # doctor reads the file itself and reports it.
    done = _turk_in(sample_project, capsys, monkeypatch, "doctor", "--skip-model")
    assert "budgte" in done.stdout + done.stderr
    with Ledger(sample_project / "turk.db"):
        pass
