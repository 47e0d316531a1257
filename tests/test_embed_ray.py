"""``turk embed --engine ray`` on a real local Ray cluster, against the in-process path.

The sample is embedded with the demo model on the CPU both ways: the same images in the
same shards, vectors within cosine 0.999. A run killed mid-way and rerun registers
every image once; shards at a URL are written, registered and ranked from there.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.demomodel import demo_model_paths
from retrieval.errors import ModelError
from retrieval.rayembed import pool_shape, resolve_device
from retrieval.shards import read_shard
from tests.fixtures.project import edit_yaml
from turk.candidates.embed import (
    RAY_INSTALL_HINT,
    plan_embedding,
    registered_shards,
    run_embedding,
)
from turk.ledger import Ledger

SLUG = "turk-demo-clip--turk-demo-clip"


def demo_args() -> list[str]:
    config, weights = demo_model_paths()
    return ["--model", str(config), "--pretrained", str(weights), "--device", "cpu"]


def copy_ledger(source: Path, target: Path) -> Path:
    """A copy of a ledger in another folder (its own embeddings/ beside it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def embed_locally(db: Path, shard_size: int) -> None:
    config, weights = demo_model_paths()
    with Ledger(db) as ledger:
        plan = plan_embedding(ledger, model=str(config), pretrained=str(weights), device="cpu")
        run_embedding(ledger, plan, batch_size=64, workers=2, shard_size=shard_size)


def shards_of(db: Path) -> list[tuple[int, list[int], np.ndarray]]:
    with Ledger(db) as ledger:
        return [
            (s.shard, *_read(s.vectors_path, s.ids_path, s.count))
            for s in registered_shards(ledger, SLUG)
        ]


def _read(vectors: object, ids: object, count: int) -> tuple[list[int], np.ndarray]:
    got_ids, got_vectors = read_shard(vectors, ids, count)  # type: ignore[arg-type]
    return got_ids.tolist(), np.asarray(got_vectors, dtype=np.float32)


def vectors_by_id(db: Path) -> dict[int, np.ndarray]:
    return {i: v for _, ids, vectors in shards_of(db) for i, v in zip(ids, vectors, strict=True)}


def min_cosine(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return min(float(a[i] @ b[i]) for i in a)


def shard_rows(db: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT shard, path, checksum FROM embedding_shards ORDER BY shard"
        ).fetchall()


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_ray_engine_matches_the_in_process_path(cli, ingested_db, ray_cluster, tmp_path):
    local_db = copy_ledger(ingested_db, tmp_path / "local" / "turk.db")
    embed_locally(local_db, 64)

    result = cli("embed", *demo_args(), "--shard-size", "64", "--engine", "ray")
    assert result.exit_code == 0, result.stderr
    assert "240 images in 4 new shards" in result.stdout, result.stdout
    ours, theirs = shards_of(ingested_db), shards_of(local_db)
    assert [(s, ids) for s, ids, _ in ours] == [(s, ids) for s, ids, _ in theirs]
    assert min_cosine(vectors_by_id(ingested_db), vectors_by_id(local_db)) >= 0.999
    with sqlite3.connect(ingested_db) as conn:
        (settings,) = conn.execute(
            "SELECT settings FROM runs WHERE command='embed' ORDER BY id DESC"
        ).fetchone()
    assert '"engine": "ray"' in settings

    before = shard_rows(ingested_db)
    again = cli("embed", *demo_args(), "--shard-size", "64", "--engine", "ray")
    assert again.exit_code == 0, again.stderr
    assert "0 images in 0 new shards" in again.stdout and "240 already done" in again.stdout
    assert shard_rows(ingested_db) == before


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
@pytest.mark.slow
def test_a_killed_ray_run_resumes_and_registers_every_image_once(
    cli, ingested_db, ray_cluster, tmp_path
):
    local_db = copy_ledger(ingested_db, tmp_path / "local" / "turk.db")
    embed_locally(local_db, 4)
    command = [sys.executable, "-m", "turk", "--db", str(ingested_db), "embed", *demo_args()]
    command += ["--engine", "ray", "--address", ray_cluster, "--actors", "1"]
    process = subprocess.Popen(
        [*command, "--shard-size", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not shard_rows(ingested_db):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.kill()  # no clean-up at all: the driver dies between two shards or inside one
    process.communicate(timeout=60)
    killed = shard_rows(ingested_db)
    assert 0 < len(killed) < 60

    # A registered shard whose files changed after registration (a repeated task that
    # rewrote it, or a hand edit) is not trusted: its images are embedded again.
    changed, path, _ = killed[0]
    vectors_file = ingested_db.parent / path
    ids, vectors = read_shard(vectors_file, vectors_file.with_suffix(".ids.npy"))
    np.save(vectors_file, np.asarray(vectors)[::-1].copy())

    result = cli("embed", *demo_args(), "--shard-size", "4", "--engine", "ray")
    assert result.exit_code == 0, result.stderr
    rows = shard_rows(ingested_db)
    assert changed not in [r[0] for r in rows]
    assert {r[0] for r in killed[1:]} <= {r[0] for r in rows}
    every = [i for _, shard_ids, _ in shards_of(ingested_db) for i in shard_ids]
    assert len(every) == len(set(every)) == 240
    assert set(ids.tolist()) <= set(every)
    assert min_cosine(vectors_by_id(ingested_db), vectors_by_id(local_db)) >= 0.999


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_ray_shards_at_a_url_are_registered_as_urls_and_ranked(
    cli, ingested_db, ray_cluster, sample_dir, tmp_path
):
    url = f"file://{tmp_path}/store/embeddings"
    result = cli("embed", *demo_args(), "--shard-size", "100", "--engine", "ray", "--out", url)
    assert result.exit_code == 0, result.stderr
    rows = shard_rows(ingested_db)
    assert [r[0] for r in rows] == [0, 1, 2]
    assert all(r[1].startswith(f"{url}/{SLUG}/shard-") for r in rows)
    assert not (ingested_db.parent / "embeddings").exists()
    ranked = cli("rank", sample_dir / "concepts.yaml", *demo_args())
    assert ranked.exit_code == 0, ranked.stderr
    assert "over 240 embeddings" in ranked.stdout


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_shards_the_driver_cannot_read_are_one_line_errors(cli, ingested_db, ray_cluster):
    # memory:// lives inside one process: the workers' files are not the driver's, as
    # a local folder on a cluster without shared storage.
    result = cli("embed", *demo_args(), "--engine", "ray", "--out", "memory://turk-ray/x")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "cannot be read here" in line and "storage every node shares" in line
    assert shard_rows(ingested_db) == []


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_ray_engine_refuses_tar_shards_and_bad_weights_before_starting(
    cli, ingested_db, ray_cluster, tmp_path
):
    config, _ = demo_model_paths()
    bad = cli("embed", "--model", config, "--pretrained", tmp_path / "no.pt", "--engine", "ray")
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines() == [
        f"turk: error: --pretrained {tmp_path / 'no.pt'}: weights file not found; pass an "
        "existing weights file or a pretrained tag"
    ]
    tar = cli("embed", *demo_args(), "--engine", "ray", "--tar", tmp_path / "a.tar")
    assert tar.exit_code != 0 and "--engine local" in tar.stderr
    assert shard_rows(ingested_db) == []


def test_memory_url_output_in_process_is_ranked(cli, ingested_db, sample_dir, tmp_path):
    url = f"memory://{tmp_path.name}/embeddings"
    result = cli("embed", *demo_args(), "--workers", "0", "--out", url)
    assert result.exit_code == 0, result.stderr
    assert all(r[1].startswith(f"{url}/{SLUG}/") for r in shard_rows(ingested_db))
    ranked = cli("rank", sample_dir / "concepts.yaml", *demo_args())
    assert ranked.exit_code == 0, ranked.stderr
    again = cli("embed", *demo_args(), "--workers", "0", "--out", url)
    assert "240 already done" in again.stdout


def test_without_the_extra_ray_engine_is_one_line(ingested_db):
    config, weights = demo_model_paths()
    args = ["--db", str(ingested_db), "embed", "--model", str(config), "--pretrained"]
    args += [str(weights), "--engine", "ray"]
    code = (
        "import sys; sys.modules['ray'] = None\n"  # what a missing package looks like
        "from turk.cli.main import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"turk: error: {RAY_INSTALL_HINT}"]
    assert shard_rows(ingested_db) == []


def test_pool_never_holds_every_cpu_and_gpu_actors_take_one_gpu_each():
    two = pool_shape("cpu", 2, 0)
    assert (two.actors, two.num_gpus) == (2, 0) and two.actors * two.num_cpus == 1
    assert pool_shape("cpu", 1, 0).num_cpus == 0.5
    eight = pool_shape("cuda", 64, 8)
    assert (eight.actors, eight.num_gpus, eight.num_cpus) == (8, 1, 1.0)
    assert pool_shape("cuda", 4, 2).actors * pool_shape("cuda", 4, 2).num_cpus <= 3
    with pytest.raises(ModelError, match=r"--actors 3: .* has 2;"):
        pool_shape("cuda", 16, 2, actors=3)
    assert resolve_device("auto", 8) == "cuda" and resolve_device("auto", 0) == "cpu"
    with pytest.raises(ModelError, match="no GPUs"):
        resolve_device("cuda", 0)


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_turk_run_embeds_on_ray_when_the_project_says_so(cli, sample_project, ray_cluster):
    edit_yaml(sample_project / "turk.yaml", "embed.engine", "ray")
    edit_yaml(sample_project / "turk.yaml", "model.device", "cpu")
    result = cli("run", "--project", sample_project, "--until", "rank")
    assert result.exit_code == 0, result.stderr
    assert "(engine ray)" in result.stdout
    db = sample_project / "turk.db"
    with sqlite3.connect(db) as conn:
        (settings,) = conn.execute("SELECT settings FROM runs WHERE command='embed'").fetchone()
        (embedded,) = conn.execute("SELECT SUM(count) FROM embedding_shards").fetchone()
        (candidates,) = conn.execute("SELECT COUNT(*) FROM candidates").fetchone()
    assert '"engine": "ray"' in settings and embedded == 150 and candidates > 0
