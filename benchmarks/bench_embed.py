"""Embedding throughput: JPEG files on disk to vectors in shards, against a plain baseline.

The baseline is what most scripts do (and what clip-retrieval's ``clip_inference`` does
for file input): a torch ``DataLoader`` with ``num_workers`` over PIL + the model's
open_clip preprocess transform, then ``encode_image`` and ``np.save`` of the vectors.
Ours is :func:`retrieval.embed.embed_images` (PIL draft decode in worker processes on
the CPU; batched nvJPEG decode and GPU resize on CUDA). Same model, same images, same
run. On the CPU the ceiling is PIL decoding alone with the same workers
(:func:`retrieval.embed.decode_only`), reported as a ratio.

Usage::

    .venv/bin/python benchmarks/bench_embed.py --mode cpu            # here: tiny + ViT-B-32
    .venv/bin/python benchmarks/bench_embed.py --mode gpu --n 20000  # on a CUDA machine

Prints the figures and appends them to ``benchmarks/RESULTS.md`` (``--no-append`` not to).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

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
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{platform.machine()}, {os.cpu_count()} cores, {model}"
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


def run_ours(items, encoder, out: Path, batch: int, workers: int) -> float:
    from retrieval.embed import embed_images

    shutil.rmtree(out, ignore_errors=True)
    if encoder.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    start = time.perf_counter()
    summary = embed_images(
        items, encoder, out, shard_size=10_000, batch_size=batch, workers=workers
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


def gpu_vs_cpu_cosine(items, encoder, workers: int) -> float:
    """Lowest cosine between the GPU path's vectors and the CPU path's, same weights."""
    import copy
    import dataclasses

    import torch

    from retrieval.embed import embed_images
    from retrieval.shards import read_shard, shard_paths

    cpu = dataclasses.replace(
        encoder, model=copy.deepcopy(encoder.model).float().cpu(), device="cpu", dtype=torch.float32
    )
    embed_images(items, encoder, WORK / "cmp-gpu", shard_size=len(items), workers=workers)
    embed_images(items, cpu, WORK / "cmp-cpu", shard_size=len(items), workers=workers)
    gi, gv = read_shard(*shard_paths(WORK / "cmp-gpu", 0))
    ci, cv = read_shard(*shard_paths(WORK / "cmp-cpu", 0))
    assert gi.tolist() == ci.tolist()
    return float((gv.astype(np.float32) * cv.astype(np.float32)).sum(axis=1).min())


def bench(model: str, items, device: str, batch: int, workers: int, repeats: int) -> dict:
    encoder = load(model, device, WORK)
    results: dict[str, list[float]] = {"ours": [], "baseline": [], "decode": [], "encode": []}
    for _ in range(repeats):
        results["ours"].append(run_ours(items, encoder, WORK / "ours", batch, workers))
        results["baseline"].append(run_baseline(items, encoder, WORK / "base", batch, workers))
        if not device.startswith("cuda"):
            results["decode"].append(run_decode_only(items, encoder.image_size, workers))
        results["encode"].append(run_encode_only(encoder, min(len(items), 4 * batch), batch))
    med = {k: statistics.median(v) for k, v in results.items() if v}
    if device.startswith("cuda"):
        med["cpu_cosine"] = gpu_vs_cpu_cosine(items[:512], encoder, workers)
    med["runs"] = results  # type: ignore[assignment]
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--n", type=int, default=None, help="JPEGs (default 600 cpu, 20000 gpu)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
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
        ratio = med["ours"] / med["baseline"]
        line = (
            f"- {model} (random weights) on {device}, {len(subset)} JPEGs 500x375, batch {batch}, "
            f"{workers} workers: ours {med['ours']:,.0f} images/s, baseline {med['baseline']:,.0f} "
            f"images/s, ratio {ratio:.2f}x; encoder alone {med['encode']:,.0f} images/s"
        )
        if "cpu_cosine" in med:
            line += f"; GPU-path vs CPU-path vectors: min cosine {med['cpu_cosine']:.4f}"
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
        with (ROOT / "benchmarks" / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
