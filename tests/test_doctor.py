"""turk doctor: every failure it claims to detect is detected, with its fix, and exits 1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.demomodel import DEMO_MODEL_LABEL
from tests.fixtures.project import edit_yaml
from turk.project.config import load_project
from turk.project.doctor import (
    FAIL,
    OK,
    Finding,
    check_credentials,
    check_device,
    check_disk,
    check_model,
    check_sandbox,
    run_doctor,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny open_clip config and its random weights, saved to files."""
    from retrieval.encoder import TINY_CLIP_CONFIG, save_random_model

    folder = tmp_path_factory.mktemp("model")
    config, weights = folder / "tiny-clip.json", folder / "tiny-clip.pt"
    save_random_model(TINY_CLIP_CONFIG, config, weights)
    return config, weights


def _failed(findings: list[Finding], check: str) -> Finding:
    hits = [f for f in findings if f.check == check and f.status == FAIL]
    assert hits, [f.line() for f in findings]
    return hits[0]


def test_sample_project_with_tiny_model_is_ready(
    cli, sample_project: Path, tiny_model: tuple[Path, Path]
) -> None:
    path = sample_project / "turk.yaml"
    edit_yaml(path, "model.name", str(tiny_model[0]))
    edit_yaml(path, "model.pretrained", str(tiny_model[1]))
    edit_yaml(path, "model.device", "cpu")
    result = cli("doctor", "--project", sample_project)
    assert result.exit_code == 0, result.stdout
    for check in ("python", "packages", "device", "model", "disk", "aws", "sandbox", "templates"):
        assert f" {check}: " in result.stdout
    assert "64-d embeddings" in result.stdout
    assert "0 failed; ready" in result.stdout


@pytest.mark.parametrize(
    ("edit", "check", "expected"),
    [
        (lambda p: edit_yaml(p / "turk.yaml", "hits.seeed", 1), "config", "did you mean 'seed'?"),
        (
            lambda p: (p / "concepts.yaml").unlink(),
            "config",
            "concepts: concepts.yaml does not exist",
        ),
        (lambda p: (p / "gold.csv").write_text("image,concept,label\n"), "gold", "has no rows"),
        (
            lambda p: (p / "gold.csv").write_text("image,concept,label\n7,tram,yes\n"),
            "gold",
            "not in the concepts file: tram",
        ),
        (lambda p: (p / "instructions" / "hockey.md").unlink(), "templates", "hockey"),
        (lambda p: _formless_templates(p), "templates", "no form with id turk-form"),
    ],
)
def test_project_failures(sample_project: Path, edit, check: str, expected: str) -> None:
    edit(sample_project)
    findings = run_doctor(sample_project / "turk.yaml", model=False)
    finding = _failed(findings, check)
    assert expected in finding.message
    assert finding.fix


def _formless_templates(project: Path) -> None:
    folder = project / "templates"
    folder.mkdir()
    (folder / "binary.html.j2").write_text("<p>{{ concept }}</p>", encoding="utf-8")
    edit_yaml(project / "turk.yaml", "hits.templates", "templates")


def test_cli_exits_nonzero_with_one_line_per_finding(cli, sample_project: Path) -> None:
    (sample_project / "gold.csv").write_text("image,concept,label\n", encoding="utf-8")
    result = cli("doctor", "--project", sample_project, "--skip-model")
    assert result.exit_code == 1
    line = next(x for x in result.stdout.splitlines() if "gold:" in x)
    assert line.startswith("fail gold:") and "; add image,concept,label rows" in line
    assert "1 failed" in result.stdout


def test_cuda_asked_without_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        assert check_device("cuda").status == OK
    else:
        finding = check_device("cuda")
        assert finding.status == FAIL and "sees no CUDA device" in finding.message


def test_disk_too_small(sample_project: Path) -> None:
    config = load_project(sample_project / "turk.yaml")
    assert check_disk(config).status == OK
    finding = check_disk(config, free_bytes=1000)
    assert finding.status == FAIL and "images need" in finding.message
    assert "ledger:" in finding.fix


def test_model_weights_of_another_architecture(
    sample_project: Path, tiny_model: tuple[Path, Path], tmp_path: Path
) -> None:
    import json

    path = sample_project / "turk.yaml"
    other = json.loads(tiny_model[0].read_text())
    other["embed_dim"] = 32
    config_file = tmp_path / "other-clip.json"
    config_file.write_text(json.dumps(other))
    edit_yaml(path, "model.name", str(config_file))
    edit_yaml(path, "model.pretrained", str(tiny_model[1]))
    finding = check_model(load_project(path))
    assert finding.status == FAIL
    assert "do not fit" in finding.message


def test_model_tag_not_cached_offline_is_not_downloaded(sample_project: Path) -> None:
    from retrieval.encoder import _hub_reachable, cached_pretrained

    if _hub_reachable(timeout=2) or cached_pretrained("ViT-B-32", "laion2b_s34b_b79k"):
        pytest.skip("the model hub is reachable or the weights are cached here")
    path = sample_project / "turk.yaml"
    edit_yaml(path, "model.name", "ViT-B-32")
    edit_yaml(path, "model.pretrained", "laion2b_s34b_b79k")
    finding = check_model(load_project(path))
    assert finding.status == FAIL
    assert "no download was attempted" in finding.message


def test_sample_project_names_the_demo_model(sample_project: Path) -> None:
    finding = check_model(load_project(sample_project / "turk.yaml"))
    assert finding.status == "ok"
    assert finding.message.startswith(DEMO_MODEL_LABEL)
    assert "models/turk-demo-clip.pt" in finding.message


def test_aws_credentials_missing_and_present(
    sample_project: Path, sandbox_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    path = sample_project / "turk.yaml"
    edit_yaml(path, "crowd.simulated_workers", None)
    edit_yaml(path, "crowd.target", "mturk-sandbox")
    edit_yaml(path, "crowd.image_base_url", "https://example.org/media/")
    # The project's endpoint points the MTurk-sandbox target at the local server.
    edit_yaml(path, "crowd.endpoint", sandbox_server.url)
    missing = check_credentials(load_project(path))
    assert missing.status == FAIL and "no AWS credentials found" in missing.message
    secret = "wJalrXUtnFEMI-doctor-secret"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADOCTORTEST000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    present = check_credentials(load_project(path))
    assert present.status == OK, present.line()
    assert "credentials from env reach mturk-sandbox" in present.message
    assert "$10,000.00" in present.message
    assert secret not in present.line() and "AKIADOCTORTEST" not in present.line()


@pytest.fixture
def impostor() -> Iterator[int]:
    """A TCP server on a free port that answers every connection with garbage."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = int(server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    server.close()


def test_sandbox_reachable_or_impostor(sample_project: Path, sandbox_server, impostor: int) -> None:
    path = sample_project / "turk.yaml"
    idle = check_sandbox(load_project(path))
    assert idle.status == OK and "'turk run' will start the sandbox" in idle.message
    edit_yaml(path, "crowd.endpoint", sandbox_server.url)
    assert check_sandbox(load_project(path)).status == OK
    edit_yaml(path, "crowd.endpoint", f"http://127.0.0.1:{impostor}")
    finding = check_sandbox(load_project(path))
    assert finding.status == FAIL
    assert "does not answer as the sandbox" in finding.message
