"""Embedding throughput: JPEG files on disk to vectors in shards, against a plain baseline.

The baseline is what most scripts do (and what clip-retrieval's ``clip_inference`` does
for file input): a torch ``DataLoader`` with ``num_workers`` over PIL + the model's
open_clip preprocess transform, then ``encode_image`` and ``np.save`` of the vectors.
Ours is :func:`retrieval.embed.embed_images` (PIL draft decode in worker processes on
the CPU; batched nvJPEG decode and GPU resize on CUDA). Same model, same images, same
run. On the CPU the ceiling is PIL decoding alone with the same workers
(:func:`retrieval.embed.decode_only`), reported as a ratio.

With ``--engine ray`` it measures the Ray engine (:func:`retrieval.rayembed.embed_on_ray`:
one Ray Data task per shard, actors that load the model once) against the in-process
path (``embed_images`` with the same number of decode workers) on the same images and
shards, on a local Ray cluster started once for the benchmark: Ray's overhead is
``1 - ray / in-process`` throughput, each run including the actors' start and model load.

Usage::

    .venv/bin/python benchmarks/bench_embed.py --mode cpu            # here: tiny + ViT-B-32
    .venv/bin/python benchmarks/bench_embed.py --mode gpu --n 20000  # on a CUDA machine
    .venv/bin/python benchmarks/bench_embed.py --engine ray          # Ray vs in-process, CPU

Prints the figures and appends them to ``benchmarks/RESULTS.md`` (``--no-append`` not to).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import append_results
from common import machine as cpu_machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORK = ROOT / "benchmarks" / ".work"
TINY = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def _write_jpeg(task: tuple[int, str]) -> None:
    from PIL import Image

    i, path = task
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:375, 0:500]
    base = (np.sin(xx / (20 + i % 50)) * 60 + np.cos(yy / (15 + i % 30)) * 60 + 128)[..., None]
    noise = rng.normal(0, 12, (375, 500, 3))
    pixels = np.clip(base * rng.uniform(0.6, 1.2, 3) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=85)


def make_jpegs(folder: Path, n: int) -> list[tuple[int, str]]:
    """Write n 500x375 photo-like JPEGs (gradients + noise), reused across runs."""
    import multiprocessing

    folder.mkdir(parents=True, exist_ok=True)
    items = [(i, str(folder / f"{i:06d}.jpg")) for i in range(n)]
    missing = [it for it in items if not Path(it[1]).exists()]
    if missing:
        with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2) as pool:
            pool.map(_write_jpeg, missing, chunksize=64)
    return items


def machine() -> str:
    """The machine line, with the GPU when one is there."""
    text = cpu_machine()
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def load(model: str, device: str, work: Path):
    from retrieval.encoder import load_encoder

    if model == "tiny":
        config = work / "bench-tiny.json"
        config.write_text(json.dumps(TINY))
        return load_encoder(str(config), None, device=device)
    return load_encoder(model, None, device=device)


def run_ours(items, encoder, out: Path, batch: int, workers: int, stages=None) -> float:
    from retrieval.embed import embed_images

    shutil.rmtree(out, ignore_errors=True)
    if encoder.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    start = time.perf_counter()
    summary = embed_images(
        items,
        encoder,
        out,
        shard_size=10_000,
        batch_size=batch,
        workers=workers,
        timings=stages,
    )
    seconds = time.perf_counter() - start
    assert summary.images == len(items), summary
    return len(items) / seconds


class _Files:
    """Dataset for the baseline: PIL open + open_clip preprocess."""

    def __init__(self, items, transform) -> None:
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image

        image_id, path = self.items[i]
        with Image.open(path) as img:
            return self.transform(img.convert("RGB")), image_id


def run_baseline(items, encoder, out: Path, batch: int, workers: int) -> float:
    import open_clip
    import torch
    from torch.utils.data import DataLoader

    transform = open_clip.image_transform(
        encoder.image_size, is_train=False, mean=encoder.mean, std=encoder.std
    )
    on_gpu = encoder.device.startswith("cuda")
    loader = DataLoader(
        _Files(items, transform),
        batch_size=batch,
        num_workers=workers,
        pin_memory=on_gpu,
        persistent_workers=False,
    )
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    vectors, ids = [], []
    with torch.inference_mode():
        for x, y in loader:
            x = x.to(encoder.device, non_blocking=True).to(encoder.dtype)
            feats = encoder.model.encode_image(x)
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
            vectors.append(feats.half().cpu().numpy())
            ids.append(y.numpy())
    np.save(out / "vectors.npy", np.concatenate(vectors))
    np.save(out / "ids.npy", np.concatenate(ids))
    return len(items) / (time.perf_counter() - start)


def run_decode_only(items, size: int, workers: int) -> float:
    from retrieval.embed import decode_only

    start = time.perf_counter()
    decode_only(items, size, workers=workers)
    return len(items) / (time.perf_counter() - start)


def run_encode_only(encoder, n: int, batch: int) -> float:
    import torch

    pixels = torch.randint(
        0, 256, (batch, 3, encoder.image_size, encoder.image_size), dtype=torch.uint8
    )
    if encoder.device.startswith("cuda"):
        pixels = pixels.to(encoder.device)
    encoder.encode_images(pixels)
    done = 0
    start = time.perf_counter()
    while done < n:
        encoder.encode_images(pixels)
        done += batch
    return done / (time.perf_counter() - start)


def run_encode_queued(encoder, n: int, batch: int, autocast: bool = False) -> float:
    """Encoder alone as the pipeline drives it: batches queued, one wait at the end.

    ``autocast=True`` wraps it in ``torch.autocast`` (how the encoder ran before the
    model's own dtype was used as is), for comparison.
    """
    import contextlib

    import torch

    pixels = torch.randint(
        0, 256, (batch, 3, encoder.image_size, encoder.image_size), dtype=torch.uint8
    ).to(encoder.device)
    context = torch.autocast("cuda", dtype=encoder.dtype) if autocast else contextlib.nullcontext()
    with context:
        encoder.encode_images_tensor(pixels)
        torch.cuda.synchronize()
        done = 0
        start = time.perf_counter()
        while done < n:
            encoder.encode_images_tensor(pixels)
            done += batch
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def gpu_stage_ceilings(items, encoder, batch: int, workers: int) -> dict[str, float]:
    """Each GPU-path stage alone, in images/s: read, nvJPEG, crop+resize, read+decode+resize."""
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    from retrieval.embed import _read_chunk, decode_only, resize_squares, resize_weights

    out: dict[str, float] = {}
    chunks = [items[i : i + 32] for i in range(0, len(items), 32)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max(4, 4 * workers)) as pool:
        datas = [d for part, _ in pool.map(_read_chunk, chunks) for d in part]
    out["read"] = len(items) / (time.perf_counter() - start)
    tensors = [torch.frombuffer(d, dtype=torch.uint8) for d in datas[: 4 * batch]]
    decode_jpeg(tensors[:batch], mode=ImageReadMode.RGB, device=encoder.device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for first in range(0, len(tensors), batch):
        images = decode_jpeg(
            tensors[first : first + batch], mode=ImageReadMode.RGB, device=encoder.device
        )
    torch.cuda.synchronize()
    out["nvjpeg"] = len(tensors) / (time.perf_counter() - start)
    height, width = int(images[0].shape[1]), int(images[0].shape[2])
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    weights = resize_weights(side, encoder.image_size).to(encoder.device, torch.float16)
    resize_squares(
        torch.stack([im[:, top : top + side, left : left + side] for im in images]), weights
    )
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(4):
        crops = torch.stack([im[:, top : top + side, left : left + side] for im in images])
        resize_squares(crops, weights)
    torch.cuda.synchronize()
    out["crop_resize"] = 4 * len(images) / (time.perf_counter() - start)
    start = time.perf_counter()
    done = decode_only(
        items, encoder.image_size, workers=workers, task_size=batch, device=encoder.device
    )
    out["read_decode_resize"] = done / (time.perf_counter() - start)
    return out


def gpu_vs_cpu_check(items, encoder, workers: int) -> dict:
    """Compare the GPU path with the CPU path on the same images and weights.

    A JPEG cut inside its header, one cut inside its picture data, a missing file and a
    PNG are mixed in. Returns whether both paths kept the same ids in the same order
    and recorded the same failures, and the lowest cosine between their vectors.
    """
    import copy
    import dataclasses

    import torch
    from PIL import Image

    from retrieval.embed import embed_images
    from retrieval.shards import read_shard, shard_paths

    extra = WORK / "cmp-extra"
    extra.mkdir(parents=True, exist_ok=True)
    whole = Path(items[0][1]).read_bytes()
    (extra / "cut-header.jpg").write_bytes(whole[:300])
    (extra / "cut-data.jpg").write_bytes(whole[: len(whole) * 3 // 5])
    png = extra / "picture.png"
    with Image.open(items[1][1]) as img:
        img.save(png)
    items = list(items)
    items[100:100] = [
        (-1, str(extra / "cut-header.jpg")),
        (-2, str(extra / "missing.jpg")),
        (-3, str(png)),
        (-4, str(extra / "cut-data.jpg")),
    ]
    cpu = dataclasses.replace(
        encoder, model=copy.deepcopy(encoder.model).float().cpu(), device="cpu", dtype=torch.float32
    )
    for name in ("cmp-gpu", "cmp-cpu"):
        shutil.rmtree(WORK / name, ignore_errors=True)
    gpu_run = embed_images(
        items, encoder, WORK / "cmp-gpu", shard_size=len(items), batch_size=256, workers=workers
    )
    cpu_run = embed_images(items, cpu, WORK / "cmp-cpu", shard_size=len(items), workers=workers)
    gpu_failures = [f for r in gpu_run.shards for f in r.failures]
    cpu_failures = [f for r in cpu_run.shards for f in r.failures]
    gi, gv = read_shard(*shard_paths(WORK / "cmp-gpu", 0))
    ci, cv = read_shard(*shard_paths(WORK / "cmp-cpu", 0))
    common = sorted(set(gi.tolist()) & set(ci.tolist()))
    g_rows = {v: i for i, v in enumerate(gi.tolist())}
    c_rows = {v: i for i, v in enumerate(ci.tolist())}
    g = gv[[g_rows[i] for i in common]].astype(np.float32)
    c = cv[[c_rows[i] for i in common]].astype(np.float32)
    result = {
        "same_ids": gi.tolist() == ci.tolist(),
        "same_failures": gpu_failures == cpu_failures,
        "failures": gpu_failures,
        "min_cosine": float((g * c).sum(axis=1).min()),
    }
    if not result["same_failures"]:
        print(f"failures differ: GPU {gpu_failures} CPU {cpu_failures}", flush=True)
    return result


def bench(model: str, items, device: str, batch: int, workers: int, repeats: int) -> dict:
    from retrieval.embed import StageTimes

    encoder = load(model, device, WORK)
    gpu = device.startswith("cuda")
    extra: dict = {}
    if gpu:
        # Correctness first (short), then one warm-up of each pipeline on 2 batches, so
        # that one-off start-up (nvJPEG state, cuBLAS handles) is not in the timings.
        extra["check"] = gpu_vs_cpu_check(items[:512], encoder, workers)
        print(f"GPU vs CPU path: {extra['check']}", flush=True)
        run_ours(items[: 2 * batch], encoder, WORK / "ours", batch, workers)
        run_baseline(items[: 2 * batch], encoder, WORK / "base", batch, workers)
    results: dict[str, list[float]] = {"ours": [], "baseline": [], "decode": [], "encode": []}
    stages: list[StageTimes] = []
    for _ in range(repeats):
        stages.append(StageTimes())
        results["ours"].append(run_ours(items, encoder, WORK / "ours", batch, workers, stages[-1]))
        print(f"ours {results['ours'][-1]:,.0f} images/s, stages {stages[-1]}", flush=True)
        results["baseline"].append(run_baseline(items, encoder, WORK / "base", batch, workers))
        print(f"baseline {results['baseline'][-1]:,.0f} images/s", flush=True)
        if not gpu:
            results["decode"].append(run_decode_only(items, encoder.image_size, workers))
        results["encode"].append(run_encode_only(encoder, min(len(items), 4 * batch), batch))
    med = {k: statistics.median(v) for k, v in results.items() if v}
    if gpu:
        n = min(len(items), 8 * batch)
        extra["encode_queued"] = run_encode_queued(encoder, n, batch)
        extra["encode_autocast"] = run_encode_queued(encoder, n, batch, autocast=True)
        extra["ceilings"] = gpu_stage_ceilings(items, encoder, batch, workers)
        print(f"ceilings {extra['ceilings']}", flush=True)
    median_run = sorted(range(repeats), key=lambda i: results["ours"][i])[repeats // 2]
    extra["stages"] = stages[median_run]
    med["runs"] = results  # type: ignore[assignment]
    med["extra"] = extra  # type: ignore[assignment]
    return med


def bench_ray(args: argparse.Namespace) -> None:
    """Ray engine vs in-process path: same images, same shards, same model and workers."""
    import tempfile

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from retrieval.embed import embed_images
    from retrieval.rayembed import ShardTask, connect, embed_on_ray

    gpu = args.mode == "gpu"
    device = "cuda" if gpu else "cpu"
    n = args.n or (20_000 if gpu else 2400)
    workers = args.workers if args.workers is not None else (os.cpu_count() or 2)
    repeats = args.repeats or 3
    shard_size = args.shard_size
    batch = 1024 if gpu else 128
    items = make_jpegs(WORK / "jpegs", n)
    config = WORK / "bench-tiny.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(TINY))
    model = str(config) if args.model == "tiny" else args.model
    encoder = load(args.model, device, WORK)
    tasks = [
        ShardTask(
            k, [i for i, _ in items[s : s + shard_size]], [p for _, p in items[s : s + shard_size]]
        )
        for k, s in enumerate(range(0, n, shard_size))
    ]
    temp = tempfile.mkdtemp(prefix="turk-bench-ray-", dir="/tmp")
    started = time.perf_counter()
    options = {"_temp_dir": temp} if not gpu else {}
    if not gpu:
        options.update(num_cpus=os.cpu_count() or 2, num_gpus=0)
    results: dict[str, list[float]] = {"local": [], "ray": [], "first": []}
    with connect(None, **options):
        init_seconds = time.perf_counter() - started
        resources = ray.cluster_resources()
        # One short warm-up of each: page cache, Ray's worker processes.
        embed_images(
            items[:shard_size], encoder, WORK / "warm", shard_size=shard_size, workers=workers
        )
        embed_on_ray(
            tasks[:2],
            model=model,
            pretrained=None,
            out_dir=str(WORK / "warm-ray"),
            device=device,
            batch_size=batch,
            workers=workers,
            actors=args.actors,
        )
        shape = None
        for _ in range(repeats):
            shutil.rmtree(WORK / "local", ignore_errors=True)
            start = time.perf_counter()
            summary = embed_images(
                items,
                encoder,
                WORK / "local",
                shard_size=shard_size,
                batch_size=batch,
                workers=workers,
            )
            results["local"].append(summary.images / (time.perf_counter() - start))
            shutil.rmtree(WORK / "ray", ignore_errors=True)
            arrivals: list[tuple[float, int]] = []
            start = time.perf_counter()
            _, shape = embed_on_ray(
                tasks,
                model=model,
                pretrained=None,
                out_dir=str(WORK / "ray"),
                device=device,
                batch_size=batch,
                workers=workers,
                actors=args.actors,
                on_shard=lambda meta, seen=arrivals: seen.append(
                    (time.perf_counter(), meta.files.count)
                ),
            )
            done = sum(count for _, count in arrivals)
            results["ray"].append(done / (time.perf_counter() - start))
            assert done == n, done
            results["first"].append(arrivals[0][0] - start)
            print(
                f"local {results['local'][-1]:,.0f} ray {results['ray'][-1]:,.0f} images/s",
                flush=True,
            )
    shutil.rmtree(temp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items() if v}
    ratio = med["ray"] / med["local"]
    overhead = f"Ray overhead {100 * (1 - ratio):.0f}%" if ratio < 1 else "no overhead: Ray faster"
    assert shape is not None
    line = (
        f"- {args.model} (random weights) on {device}, {n} JPEGs 500x375 in {len(tasks)} shards "
        f"of {shard_size}, batch {batch}: in-process ({workers} decode workers) "
        f"{med['local']:,.0f} images/s, Ray ({shape.actors} actors x {shape.num_cpus:g} CPU, "
        f"{int(resources.get('CPU', 0))}-CPU local cluster) {med['ray']:,.0f} images/s, ratio "
        f"{ratio:.2f}x ({overhead}), each Ray run including its actors' start and model "
        f"load (first shard registered after {med['first']:.1f} s); ray.init "
        f"{init_seconds:.1f} s once "
        f"[runs in-process {', '.join(f'{v:,.0f}' for v in results['local'])}; Ray "
        + ", ".join(f"{v:,.0f}" for v in results["ray"])
        + "]"
    )
    print(line, flush=True)
    if not args.no_append:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = "python benchmarks/bench_embed.py " + " ".join(sys.argv[1:])
        text = (
            f"\n## Embedding on Ray vs in-process, {args.mode} ({stamp})\n\n"
            f"- command: `{command}`\n- machine: {machine()}\n"
            f"- baseline: the in-process path (`embed_images`, same images, shards, model "
            f"and decode workers)\n{line}\n"
        )
        append_results(text)
        if args.out is not None:
            args.out.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: the Ray engine against the in-process path",
    )
    parser.add_argument("--shard-size", type=int, default=200, help="images per shard (ray)")
    parser.add_argument("--actors", type=int, default=None, help="Ray actors (ray)")
    parser.add_argument("--model", default="tiny", help="tiny or an open_clip name (ray)")
    parser.add_argument("--n", type=int, default=None, help="JPEGs (default 600 cpu, 20000 gpu)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the section here")
    args = parser.parse_args()
    if args.engine == "ray":
        bench_ray(args)
        return
    gpu = args.mode == "gpu"
    n = args.n or (20_000 if gpu else 600)
    workers = args.workers if args.workers is not None else (os.cpu_count() or 2)
    repeats = args.repeats or (2 if gpu else 3)
    items = make_jpegs(WORK / "jpegs", n)
    lines = []
    if gpu:
        cases = [("ViT-B-32", items, "cuda", 1024)]
    else:
        cases = [("tiny", items, "cpu", 128), ("ViT-B-32", items[: max(64, n // 6)], "cpu", 32)]
    for model, subset, device, batch in cases:
        med = bench(model, subset, device, batch, workers, repeats)
        runs = med.pop("runs")
        extra = med.pop("extra")
        ratio = med["ours"] / med["baseline"]
        line = (
            f"- {model} (random weights) on {device}, {len(subset)} JPEGs 500x375, batch {batch}, "
            f"{workers} workers: ours {med['ours']:,.0f} images/s, baseline {med['baseline']:,.0f} "
            f"images/s, ratio {ratio:.2f}x; encoder alone {med['encode']:,.0f} images/s"
        )
        if "check" in extra:
            check = extra["check"]
            line += (
                "; GPU-path vs CPU-path (512 images + a JPEG cut in its header, one cut in "
                f"its data, a missing file, a PNG): same ids in order {check['same_ids']}, "
                f"same failures {check['same_failures']}, min cosine {check['min_cosine']:.4f}"
            )
        if "ceilings" in extra:
            c = extra["ceilings"]
            line += (
                f"; each stage alone: read {c['read']:,.0f}, nvJPEG {c['nvjpeg']:,.0f}, "
                f"crop+resize {c['crop_resize']:,.0f}, read+decode+resize pipeline "
                f"{c['read_decode_resize']:,.0f}, encoder queued {extra['encode_queued']:,.0f} "
                f"(under autocast {extra['encode_autocast']:,.0f}) images/s"
            )
        st = extra["stages"]
        line += (
            f"; busy seconds in the median run of ours: read {st.read:.2f} (thread-s), decode "
            f"{st.decode:.2f}, preprocess {st.preprocess:.2f}, encode {st.encode:.2f}, write "
            f"{st.write:.2f}, encoder loop waiting for decode {st.wait:.2f}"
        )
        if "decode" in med:
            ceiling = min(med["decode"], med["encode"])
            line += (
                f"; PIL decode alone (same workers) {med['decode']:,.0f} images/s; ours / "
                f"min(decode, encoder) = {med['ours'] / ceiling:.2f}x (ours / decode "
                f"{med['ours'] / med['decode']:.2f}x)"
            )
        line += (
            f" [runs ours {', '.join(f'{v:,.0f}' for v in runs['ours'])}; baseline "
            + ", ".join(f"{v:,.0f}" for v in runs["baseline"])
            + "]"
        )
        print(line, flush=True)
        lines.append(line)
    if not args.no_append:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = "python benchmarks/bench_embed.py " + " ".join(sys.argv[1:])
        text = (
            f"\n## Embedding throughput, {args.mode} ({stamp})\n\n"
            f"- command: `{command}`\n- machine: {machine()}\n"
            "- baseline: torch DataLoader (same workers) + PIL + open_clip preprocess + "
            "encode_image + np.save\n" + "\n".join(lines) + "\n"
        )
        append_results(text)
        if args.out is not None:
            args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
