"""The README's commands run as written, in order, on this machine.

What the README assumes a user already has (a YFCC100M file and its downloaded images,
CLEAR's ranges file, img2dataset tar shards, their own concepts file) is made here from a
sample collection first. Only two things are changed in the commands themselves, both
because nothing can be downloaded here: CLIP weights become the demo model's files, and
the background sandbox gets a moment to start listening. The commands that need an
Amazon account (the mturk-sandbox blocks) are checked to exist, not run.
"""

from __future__ import annotations

import bz2
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from retrieval.demomodel import demo_model_paths
from tests.test_docs import README, shell_blocks

ROOT = README.parent
DOWNLOADED_WEIGHTS = "--model ViT-B-32 --pretrained laion2b_s34b_b79k"
"""The README's CLIP weights: replaced by the demo model's files (no download here)."""

NEEDS_AMAZON = ("AWS_PROFILE=mturk",)
"""Commands that need an Amazon MTurk account: their blocks are not run here."""


def _blocks() -> list[str]:
    return shell_blocks(README)


def _prepare_inputs(work: Path) -> None:
    """Make the files the README's walk-through expects the user to have."""
    from turk.collection.sample import write_sample

    sample = work / "prepared-sample"
    write_sample(sample, n=300, seed=3)
    # A YFCC100M-layout file, bz2-compressed, and the folder its images were downloaded to.
    (work / "yfcc100m_dataset.bz2").write_bytes(
        bz2.compress((sample / "metadata.tsv").read_bytes())
    )
    shutil.copytree(sample / "images", work / "downloads")
    # CLEAR's ranges file: three periods over the sample's upload times.
    ranges = [
        {"start": "2004-01-01 00:00:00.0", "end": "2008-12-31 23:59:59.0"},
        {"start": "2009-01-01 00:00:00.0", "end": "2011-12-31 23:59:59.0"},
        {"start": "2012-01-01 00:00:00.0", "end": "2014-12-31 23:59:59.0"},
    ]
    (work / "clear_10_time.json").write_text(json.dumps(ranges), encoding="utf-8")
    # The user's concepts file: the sample's.
    shutil.copyfile(sample / "concepts.yaml", work / "concepts.yaml")


def _write_shards(work: Path) -> None:
    """img2dataset-style shards 00000..00099 of the ingested images (``KEY.jpg`` + json)."""

    with sqlite3.connect(work / "turk.db") as conn:
        rows = conn.execute("SELECT id, local_path FROM images ORDER BY id").fetchall()
    (work / "shards").mkdir()
    for shard in range(100):
        with tarfile.open(work / "shards" / f"{shard:05d}.tar", "w") as tar:
            for n, (image_id, path) in enumerate(rows[shard::100]):
                key = f"{shard:05d}{n:04d}"
                for name, data in (
                    (f"{key}.jpg", Path(path).read_bytes()),
                    (f"{key}.json", json.dumps({"key": key, "photoid": str(image_id)}).encode()),
                ):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def _offline(command: str) -> str:
    """The README line with the demo model's weights in place of downloaded ones."""
    config, weights = demo_model_paths()
    demo = f"--model {config} --pretrained {weights}"
    if DOWNLOADED_WEIGHTS in command:
        return command.replace(DOWNLOADED_WEIGHTS, demo)
    if command.lstrip().startswith("turk embed"):
        head, sep, comment = command.partition("  #")
        return f"{head.rstrip()} {demo}{sep}{comment}"
    return command


def _run(script: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["COLUMNS"] = "120"
    env.pop("TURK_DB", None)
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_amazon_blocks_are_the_only_ones_not_run() -> None:
    blocks = _blocks()
    assert blocks[0].split()[:2] == ["make", "demo"]  # the set-up: CI runs 'make test'
    skipped = [b for b in blocks if any(marker in b for marker in NEEDS_AMAZON)]
    assert len(skipped) == 2
    assert all(
        all(marker in line for marker in NEEDS_AMAZON)
        for b in skipped
        for line in b.strip().splitlines()
    )
    assert DOWNLOADED_WEIGHTS in blocks[3]


@pytest.mark.slow
@pytest.mark.xdist_group("local-sandbox-port")  # the README's commands use the default port
def test_quick_start_project_runs_as_written(tmp_path: Path) -> None:
    block = _blocks()[1]
    assert "turk init clear-demo --from-sample" in block
    done = _run(f"set -euo pipefail\n{block}", tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "export (done)" in done.stdout and "doctor: " in done.stdout
    project = tmp_path / "clear-demo"
    report = json.loads((project / "report" / "report.json").read_text(encoding="utf-8"))
    summary = report["summary"]
    assert summary["accepted"] > 0
    assert any("demo model" in note for note in report["settings"]["notes"])
    # What a newcomer's first run must show: most cells filled, the accepted images right.
    assert summary["cells_at_quota"] * 2 > summary["cells"] == 50
    assert summary["truth_precision"] >= 0.97
    assert "cells hold their quota of 12" in done.stdout
    assert "against the sample's truth:" in done.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("local-sandbox-port")  # the README's commands use the default port
def test_walk_through_runs_as_written(tmp_path: Path) -> None:
    blocks = _blocks()
    collection, retrieval, crowd = blocks[2], blocks[3], blocks[4]
    assert collection.startswith("turk sample data/sample")
    assert "turk sandbox serve" in crowd
    _prepare_inputs(tmp_path)
    first = _run(f"set -euo pipefail\n{collection}", tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "11 buckets" in first.stdout or "buckets" in first.stdout
    _write_shards(tmp_path)
    lines = [_offline(line) for line in retrieval.splitlines()]
    serve, *rest = crowd.splitlines()
    assert serve.lstrip().startswith("turk sandbox serve") and "&" in serve
    wait = (
        f'{sys.executable} -c "import time, urllib.request as u\n'
        "for _ in range(100):\n"
        "    try: u.urlopen('http://127.0.0.1:8765/worker', timeout=1); break\n"
        '    except Exception: time.sleep(0.2)"'
    )
    script = "\n".join(
        ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT", *lines,
         serve, wait, *rest]
    )  # fmt: skip
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    assert "new shard" in out and (tmp_path / "preview" / "index.html").is_file()
    assert "review: approve" in out or "approved" in out
    assert (tmp_path / "media").is_dir()
