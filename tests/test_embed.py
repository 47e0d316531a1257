"""The embedding pipeline: shards, failures, resume, tar shards, and ``turk embed``."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from retrieval.decode import decode_to_square
from retrieval.embed import _EncoderThreads, embed_images
from retrieval.shards import read_shard, shard_paths
from retrieval.tarshards import iter_tar_samples
from turk.candidates.embed import plan_embedding, run_embedding
from turk.ledger import Ledger


def make_images(folder: Path, n: int, seed: int = 0) -> list[tuple[int, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        path = folder / f"{100 + i}.jpg"
        pixels = rng.integers(0, 256, (48 + i % 3 * 8, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, quality=80)
        items.append((100 + i, str(path)))
    return items


@pytest.fixture
def images_with_bad_ones(tmp_path):
    items = make_images(tmp_path / "img", 20)
    # A corrupt JPEG (truncated) and a missing file in the middle of the first shard,
    # and a text file posing as a JPEG in the second.
    corrupt = Path(items[3][1])
    corrupt.write_bytes(corrupt.read_bytes()[:300])
    Path(items[5][1]).unlink()
    Path(items[12][1]).write_text("hello")
    return items


@pytest.mark.parametrize("workers", [0, 2])
def test_shards_skip_bad_images_and_match_the_encoder(
    tiny_encoder, images_with_bad_ones, tmp_path, workers
):
    items = images_with_bad_ones
    seen = []
    summary = embed_images(
        items,
        tiny_encoder,
        tmp_path / "out",
        shard_size=8,
        batch_size=3,
        workers=workers,
        on_shard=seen.append,
    )
    assert [r.files.index for r in seen] == [0, 1, 2]
    assert [r.files.count for r in seen] == [6, 7, 4]
    assert seen[0].failures == [(103, seen[0].failures[0][1]), (105, "missing file")]
    assert seen[0].failures[0][1].startswith("corrupt image")
    assert seen[1].failures == [(112, "not an image")]
    assert summary.images == 17 and summary.failed == 3
    bad = {103, 105, 112}
    ids, vectors = read_shard(*shard_paths(tmp_path / "out", 0), count=6)
    assert ids.tolist() == [i for i, _ in items[:8] if i not in bad]
    assert vectors.dtype == np.float16 and vectors.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1, atol=2e-3)
    # Same vectors as encoding the decoded squares directly.
    pixels = np.stack([decode_to_square(p, 64) for i, p in items[:8] if i not in bad])
    direct = tiny_encoder.encode_images(torch.from_numpy(pixels).permute(0, 3, 1, 2))
    np.testing.assert_allclose(vectors.astype(np.float32), direct.astype(np.float32), atol=2e-3)
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_decode_to_square_is_centre_crop(tmp_path):
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 20:60] = 255  # the centre square is white, the sides black
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    square = decode_to_square(str(path), 16)
    # Bicubic support reaches a little past the box at the edges; never to the black sides.
    assert square.shape == (16, 16, 3) and square[:, 1:-1].min() > 240 and square.min() > 200


def test_max_shards_stops_and_library_resume(tiny_encoder, tmp_path):
    items = make_images(tmp_path / "img", 10)
    first = embed_images(
        items, tiny_encoder, tmp_path / "out", shard_size=4, workers=0, max_shards=1
    )
    assert first.stopped_early and [r.files.count for r in first.shards] == [4]
    done = set(read_shard(*shard_paths(tmp_path / "out", 0))[0].tolist())
    rest = [it for it in items if it[0] not in done]
    second = embed_images(
        rest, tiny_encoder, tmp_path / "out", first_shard=1, shard_size=4, workers=0
    )
    assert [r.files.count for r in second.shards] == [4, 2]


# --- ledger wiring ---------------------------------------------------------------------


def tiny_args(tiny_clip):
    config, weights = tiny_clip
    return ["--model", str(config), "--pretrained", str(weights), "--device", "cpu"]


def ledger_counts(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as conn:
        shards = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM embedding_shards"
        ).fetchone()
        failures = conn.execute("SELECT COUNT(*) FROM embedding_failures").fetchone()[0]
    return shards[0], shards[1], failures


def test_turk_embed_resumes_after_interruption(cli, ingested_db, tiny_clip):
    config, weights = tiny_clip
    with Ledger(ingested_db) as ledger:
        (total,) = ledger.conn.execute(
            "SELECT COUNT(*) FROM images WHERE local_path IS NOT NULL"
        ).fetchone()
        victims = [
            r[0]
            for r in ledger.conn.execute(
                "SELECT id, local_path FROM images ORDER BY id LIMIT 2 OFFSET 70"
            )
        ]
        paths = dict(ledger.conn.execute("SELECT id, local_path FROM images").fetchall())
    # A missing file and a corrupt JPEG in the middle of the second shard. The sample's
    # files are shared by the whole session: point the two victims at private copies.
    private = ingested_db.parent / "victims"
    private.mkdir()
    with Ledger(ingested_db) as ledger, ledger.conn:
        for image_id in victims:
            copy = private / Path(paths[image_id]).name
            shutil.copyfile(paths[image_id], copy)
            ledger.conn.execute(
                "UPDATE images SET local_path = ? WHERE id = ?", (str(copy), image_id)
            )
            paths[image_id] = str(copy)
    Path(paths[victims[0]]).rename(Path(paths[victims[0]]).with_suffix(".gone"))
    broken = Path(paths[victims[1]])
    broken.write_bytes(broken.read_bytes()[:200])
    with Ledger(ingested_db) as ledger:
        plan = plan_embedding(ledger, model=str(config), pretrained=str(weights), device="cpu")
        report = run_embedding(ledger, plan, shard_size=64, workers=0, max_shards=1)
    assert report.stopped_early and report.shards == 1
    assert ledger_counts(ingested_db) == (1, 64, 0)
    folder = ingested_db.parent / "embeddings" / "turk-tiny-clip--turk-tiny-clip"
    first_shard = (folder / "shard-00000.npy").read_bytes()
    # A shard written but never registered (killed between rename and commit) and a
    # temporary file of a shard in progress: both are redone / ignored.
    (folder / "shard-00001.npy").write_bytes(b"partial")
    (folder / "shard-00002.npy.tmp").write_bytes(b"partial")

    result = cli("embed", *tiny_args(tiny_clip), "--shard-size", "64", "--workers", "0")
    assert result.exit_code == 0, result.stderr
    assert "64 already done" in result.stdout and "2 unreadable (recorded)" in result.stdout
    shards, embedded, failures = ledger_counts(ingested_db)
    assert embedded + failures == total and failures == 2
    assert (folder / "shard-00000.npy").read_bytes() == first_shard
    with sqlite3.connect(ingested_db) as conn:
        reasons = dict(conn.execute("SELECT image_id, reason FROM embedding_failures").fetchall())
        registered = conn.execute("SELECT path, checksum FROM embedding_shards").fetchall()
    assert reasons[victims[0]] == "missing file"
    assert reasons[victims[1]].startswith("corrupt image")
    all_ids = []
    for path, _checksum in registered:
        vectors_path = ingested_db.parent / path
        ids, _ = read_shard(vectors_path, vectors_path.with_suffix(".ids.npy"))
        all_ids += ids.tolist()
    assert len(all_ids) == len(set(all_ids)) == total - 2

    again = cli("embed", *tiny_args(tiny_clip), "--workers", "0")
    assert again.exit_code == 0
    assert "0 images in 0 new shards" in again.stdout
    assert ledger_counts(ingested_db) == (shards, embedded, failures)


def write_tar(path: Path, samples: list[tuple[str, bytes | None, dict | None]]) -> None:
    with tarfile.open(path, "w") as tar:
        for key, image, meta in samples:
            for ext, data in (
                ("jpg", image),
                ("json", None if meta is None else json.dumps(meta).encode()),
            ):
                if data is None:
                    continue
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    "tar_args",
    [
        ["--tar", "{dir}/a.tar", "--tar", "{dir}/b.tar"],
        ["--tar", "{dir}/a.tar", "{dir}/b.tar"],  # what the shell makes of {a,b}.tar
        ["--tar", "{dir}/{{a,b}}.tar"],  # a quoted brace pattern
        ["--tar", "{dir}/shard-{{0..1}}.tar"],  # a numbered range
        ["--tar", "{dir}/*.tar"],  # a quoted glob
    ],
    ids=["repeated", "shell-expanded", "brace-list", "brace-range", "glob"],
)
def test_turk_embed_from_tar_shards(cli, ingested_db, tiny_clip, tmp_path, tar_args):
    with Ledger(ingested_db) as ledger:
        rows = ledger.conn.execute(
            "SELECT id, local_path, download_url FROM images ORDER BY id LIMIT 6"
        ).fetchall()
    samples = []
    for n, (image_id, path, url) in enumerate(rows):
        data = Path(path).read_bytes()
        if n == 0:
            samples.append((f"{n:09d}", data, {"key": f"{n:09d}", "url": url}))  # by url
        elif n == 1:
            samples.append((f"{n:09d}", data[:100], {"id": image_id}))  # corrupt
        else:
            samples.append((f"{n:09d}", data, {"photo_id": str(image_id)}))
    samples.append(("000000099", rows[2][1] and Path(rows[2][1]).read_bytes(), {"id": 1}))
    write_tar(tmp_path / "a.tar", samples[:3])
    write_tar(tmp_path / "b.tar", samples[3:])
    assert [s.key for s in iter_tar_samples([tmp_path / "a.tar"])] == [s[0] for s in samples[:3]]
    if "shard-" in tar_args[-1]:
        for n, name in enumerate(["a", "b"]):
            (tmp_path / f"{name}.tar").rename(tmp_path / f"shard-{n}.tar")

    args = [a.format(dir=tmp_path) for a in tar_args]
    result = cli("embed", *tiny_args(tiny_clip), "--workers", "0", *args)
    assert result.exit_code == 0, result.stderr
    assert "5 images in 1 new shard" in result.stdout
    assert (
        "1 unreadable (recorded), 0 already done, 1 tar samples not in the ledger" in result.stdout
    )
    with sqlite3.connect(ingested_db) as conn:
        (failed,) = conn.execute("SELECT image_id FROM embedding_failures").fetchone()
        (path,) = conn.execute("SELECT path FROM embedding_shards").fetchone()
    assert failed == rows[1][0]
    ids, _ = read_shard(
        ingested_db.parent / path, ingested_db.parent / path.replace(".npy", ".ids.npy")
    )
    assert sorted(ids.tolist()) == sorted(r[0] for r in rows if r[0] != rows[1][0])


def test_bad_tar_is_one_line_error(cli, ingested_db, tiny_clip, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\x00garbage" * 10)
    result = cli("embed", *tiny_args(tiny_clip), "--workers", "0", "--tar", junk)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "junk.tar: not a readable tar shard" in result.stderr


def test_tar_patterns_that_match_nothing_or_stray_paths_are_one_line_errors(
    cli, ingested_db, tiny_clip, tmp_path
):
    result = cli("embed", *tiny_args(tiny_clip), "--tar", f"{tmp_path}/*.tar")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "no file matches this pattern" in result.stderr
    result = cli("embed", *tiny_args(tiny_clip), f"{tmp_path}/a.tar")
    assert result.exit_code == 2
    assert "tar shards follow --tar" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "ViT-B-99", "--pretrained", "none"],
            "--model ViT-B-99: unknown open_clip model",
        ),
        (
            ["--pretrained", "/nonexistent/w.pt"],
            "--pretrained /nonexistent/w.pt: weights file not found",
        ),
        (
            ["--model", "ViT-S-32", "--pretrained", "{weights}"],
            "weights do not fit the ViT-S-32 architecture",
        ),
        (["--device", "cuda"], "--device cuda: CUDA is not available"),
    ],
)
def test_turk_embed_bad_model_input(cli, ingested_db, tiny_clip, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("CUDA present")
    config, weights = tiny_clip
    full = [a.replace("{weights}", str(weights)) for a in args]
    if "--model" not in full:
        full = ["--model", str(config), *full]
    result = cli("embed", *full)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("turk: error: ") and message in result.stderr
    assert ledger_counts(ingested_db) == (0, 0, 0)
    assert not (ingested_db.parent / "embeddings").exists()


def test_turk_embed_without_images(cli, db_path, tiny_clip):
    result = cli("embed", *tiny_args(tiny_clip))
    assert result.exit_code == 1
    assert "no ingested images; run 'turk ingest METADATA' first" in result.stderr
    assert result.stderr.count("\n") == 1
    assert ledger_counts(db_path) == (0, 0, 0)


def test_help_on_every_option(cli):
    for command in ("embed", "rank", "preview"):
        result = cli(command, "--help")
        assert result.exit_code == 0
    text = cli("embed", "--help").stdout
    for option in ("--model", "--pretrained", "--device", "--batch-size", "--workers", "--tar"):
        assert option in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_path_matches_cpu_path(tiny_clip, tiny_encoder, images_with_bad_ones, tmp_path):
    from retrieval.encoder import load_encoder

    config, weights = tiny_clip
    gpu = load_encoder(str(config), str(weights), device="cuda")
    items = images_with_bad_ones
    cpu_run = embed_images(items, tiny_encoder, tmp_path / "cpu", shard_size=8, workers=0)
    gpu_run = embed_images(items, gpu, tmp_path / "gpu", shard_size=8, workers=2)
    assert [r.failures for r in gpu_run.shards] == [r.failures for r in cpu_run.shards]
    for index in range(3):
        cpu_ids, cpu_vectors = read_shard(*shard_paths(tmp_path / "cpu", index))
        gpu_ids, gpu_vectors = read_shard(*shard_paths(tmp_path / "gpu", index))
        assert cpu_ids.tolist() == gpu_ids.tolist()
        cosine = (cpu_vectors.astype(np.float32) * gpu_vectors.astype(np.float32)).sum(axis=1)
        assert cosine.min() > 0.95  # nvJPEG + GPU bicubic + fp16 vs PIL + fp32


def test_resize_matrices_equal_antialiased_bicubic():
    import torch.nn.functional as F

    from retrieval.embed import resize_squares, resize_weights

    rng = np.random.default_rng(1)
    for side, size in [(375, 64), (40, 64), (64, 64), (1100, 224)]:
        squares = torch.from_numpy(rng.integers(0, 256, (2, 3, side, side), dtype=np.uint8))
        expected = F.interpolate(
            squares.double(), size=(size, size), mode="bicubic", antialias=True
        )
        weights = resize_weights(side, size)
        assert weights.shape == (size, side)
        exact = weights @ squares.double() @ weights.T
        assert (exact - expected).abs().max() < 1e-9
        got = resize_squares(squares, weights.float())
        assert got.dtype == torch.uint8 and got.shape == (2, 3, size, size)
        rounded = expected.round().clamp(0, 255)
        assert (got.double() - rounded).abs().max() <= 1


def test_batched_decode_path_matches_pil_path(tiny_encoder, images_with_bad_ones, tmp_path):
    from retrieval.embed import StageTimes

    items = list(images_with_bad_ones)
    png = tmp_path / "img" / "extra.png"
    Image.fromarray(np.full((30, 50, 3), 90, np.uint8)).save(png)
    items.insert(9, (999, str(png)))  # not a JPEG: decoded by PIL inside the batch
    cut = tmp_path / "img" / "cut.jpg"
    whole = Path(items[0][1]).read_bytes()
    cut.write_bytes(whole[: len(whole) * 3 // 5])
    items.insert(14, (998, str(cut)))  # header whole, picture data cut short
    pil = embed_images(items, tiny_encoder, tmp_path / "pil", shard_size=8, workers=0)
    timings = StageTimes()
    batched = embed_images(
        items,
        tiny_encoder,
        tmp_path / "batched",
        shard_size=8,
        batch_size=5,
        workers=2,
        batched_decode=True,
        timings=timings,
    )
    assert [r.failures for r in batched.shards] == [r.failures for r in pil.shards]
    assert [r.files.count for r in batched.shards] == [6, 6, 6]
    assert [f[0] for f in batched.shards[1].failures] == [112, 998]
    for index in range(3):
        pil_ids, pil_vectors = read_shard(*shard_paths(tmp_path / "pil", index))
        ids, vectors = read_shard(*shard_paths(tmp_path / "batched", index))
        assert ids.tolist() == pil_ids.tolist()
        cosine = (vectors.astype(np.float32) * pil_vectors.astype(np.float32)).sum(axis=1)
        assert cosine.min() > 0.99
    assert timings.read > 0 and timings.decode > 0 and timings.encode > 0
    assert timings.write > 0 and timings.preprocess > 0
    assert not list((tmp_path / "batched").glob("*.tmp"))


@pytest.mark.slow
def test_ctrl_c_in_embed_prints_one_line_and_keeps_finished_shards(ingested_db: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    # A model slow enough on the CPU that the run is still going when Ctrl-C comes.
    args = ["--model", "ViT-B-32", "--pretrained", "none", "--device", "cpu"]
    command = [sys.executable, "-m", "turk", "--db", str(ingested_db), "embed", *args]
    process = subprocess.Popen(
        [*command, "--workers", "2", "--batch-size", "8", "--shard-size", "16"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # and with Ctrl-C at its default, as there: a test run started in the background
        # (`make test &`, nohup) ignores SIGINT, and its children would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while ledger_counts(ingested_db)[0] == 0:  # the first shard is written: decoding runs
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: parent and workers alike
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["turk: interrupted; rerun the command to resume"]
    done = ledger_counts(ingested_db)[1]
    assert 0 < done < 240


def test_encoder_threads_stay_within_the_cpus_this_process_may_use(one_cpu):
    full = torch.get_num_threads()
    # Without decode processes every CPU is spare: here, the one CPU, not the machine's.
    threads = _EncoderThreads(active=True, decoders=0)
    assert threads.spare == 1
    threads.waiting, threads.encoding = 1.0, 0.1  # decoding is the bound
    threads.rebalance()
    assert torch.get_num_threads() == 1
    threads.restore()
    assert torch.get_num_threads() == full


def test_encoder_threads_never_exceed_torchs_own_count():
    assert 1 <= _EncoderThreads(active=True, decoders=1).spare <= torch.get_num_threads()
