"""Train the demo model (``retrieval/demomodel.py``) contrastively on sample scenes.

Writes a sample collection (``turk.collection.sample.write_sample``) of ``--seed`` (not the seed
demos and benchmarks evaluate on), decodes its photos exactly as ``turk embed`` does
(centre square, bicubic, the model's mean and std), captions each photo from what
``scenes.csv`` says it shows (the concept's own prompts in the concepts' templates;
the distractor and hard-negative scenes by their names, a poster as "a poster of a
bus", as web captions name what a picture shows; a trap by its object, not its word)
and trains the tiny open_clip model of ``DEMO_MODEL_CONFIG`` with a contrastive loss
whose targets count every caption of the same class as a match. Saves the config
JSON and a float16 ``state_dict`` into ``retrieval/data/demo_model/`` and writes the
weights' SHA-256 into ``retrieval/demomodel.py``.

Usage::

    python scripts/train_demo_model.py [--seed 1000] [--n 4000] [--steps 150] [--batch 128]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRAIN_SEED = 1000
"""Sample seed the demo model is trained on (evaluation uses other seeds)."""

TRAIN_COMMAND = (
    "python scripts/train_demo_model.py --seed 1000 --n 4000 --steps 150 --batch 128 "
    "(torch seed 1000; about 35 s on 2 shared CPU cores: 15 s sample + decode, 20 s training)"
)
"""How the shipped weights were made (reported beside the demo model's figures)."""

_SCENE_WORDS = {
    "football pitch": "empty football pitch",
    "ice rink": "empty ice rink",
    "beach ball": "ball on the beach",
}


def captioner(concepts_path: Path, rnd: random.Random):  # type: ignore[no-untyped-def]
    """Return ``caption(kind, scene, other) -> (caption, class key)`` for the sample's concepts."""
    from retrieval.concepts import load_concepts

    concepts = {c.name: c for c in load_concepts(concepts_path).concepts}

    def caption(concept: str, kind: str, scene: str, other: str) -> tuple[str, str]:
        if concept in concepts:
            spec = concepts[concept]
            prompt = rnd.choice([concept, *spec.prompts])
            if spec.prefix:
                prompt = f"{spec.prefix} {prompt}"
            template = rnd.choice(spec.templates) if spec.templates else "{}"
            text = template.replace("{}", prompt)
            if kind == "small" and rnd.random() < 0.5:
                text = f"a photo of a small {prompt} in front of {other}"
            elif kind == "multi" and rnd.random() < 0.5:
                text = f"a photo of a {prompt} and {other}"
            return text, concept
        name = _SCENE_WORDS.get(scene, scene)
        if scene.endswith(" poster"):  # as on the web, the caption names what is pictured
            name = f"poster of a {scene.removesuffix(' poster')}"
        template = rnd.choice(next(iter(concepts.values())).templates or ("{}",))
        return template.replace("{}", name), scene

    return caption


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=TRAIN_SEED, help="sample seed to train on")
    parser.add_argument("--n", type=int, default=4000, help="photos in the training sample")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "retrieval" / "data" / "demo_model")
    args = parser.parse_args()

    import numpy as np
    import open_clip
    import torch
    import torch.nn.functional as F

    from retrieval.decode import decode_to_square
    from retrieval.demomodel import DEMO_MODEL_CONFIG, DEMO_MODEL_NAME
    from retrieval.encoder import model_name_for
    from turk.collection.sample import write_sample

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rnd = random.Random(args.seed)
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    config_path = args.out / f"{DEMO_MODEL_NAME}.json"
    config_path.write_text(json.dumps(DEMO_MODEL_CONFIG, indent=2) + "\n", encoding="utf-8")
    name = model_name_for(str(config_path))
    model = open_clip.create_model(name, pretrained=None)
    tokenizer = open_clip.get_tokenizer(name)
    cfg = model.visual.preprocess_cfg
    size = int(DEMO_MODEL_CONFIG["vision_cfg"]["image_size"])  # type: ignore[index]

    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample"
        write_sample(sample, n=args.n, seed=args.seed)
        files = {r["image"]: (r["concept"], r["file"]) for r in _rows(sample / "truth.csv")}
        scenes = _rows(sample / "scenes.csv")
        pixels = np.stack([decode_to_square(sample / files[r["image"]][1], size) for r in scenes])
        caption = captioner(sample / "concepts.yaml", rnd)
    sampled_s = time.perf_counter() - started
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    x_all = (torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
    meta = [(files[r["image"]][0], r["kind"], r["scene"], r["other"]) for r in scenes]

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.steps, pct_start=0.1)
    model.train()
    loss_value = 0.0
    for step in range(args.steps):
        pick = torch.randint(0, len(meta), (args.batch,))
        texts, keys = zip(*(caption(*meta[i]) for i in pick.tolist()), strict=True)
        image_f = F.normalize(model.encode_image(x_all[pick]), dim=-1)
        text_f = F.normalize(model.encode_text(tokenizer(list(texts))), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * image_f @ text_f.T
        same = torch.tensor([[a == b for b in keys] for a in keys], dtype=torch.float32)
        target = same / same.sum(dim=1, keepdim=True)
        loss = (
            -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
            - (target * F.log_softmax(logits.T, dim=1)).sum(1).mean()
        ) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss_value:.3f}", flush=True)
    model.eval()
    weights_path = args.out / f"{DEMO_MODEL_NAME}.pt"
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(state, weights_path)
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    module = ROOT / "retrieval" / "demomodel.py"
    text = module.read_text(encoding="utf-8")
    module.write_text(
        re.sub(r'DEMO_WEIGHTS_SHA256 = "[0-9a-f]{64}"', f'DEMO_WEIGHTS_SHA256 = "{digest}"', text),
        encoding="utf-8",
    )
    total = time.perf_counter() - started
    print(
        f"trained {DEMO_MODEL_NAME} on sample seed {args.seed} ({len(meta)} photos): "
        f"{args.steps} steps x batch {args.batch}, final loss {loss_value:.3f}; "
        f"{total:.0f} s in all ({sampled_s:.0f} s sample + decode, "
        f"{total - sampled_s:.0f} s training); "
        f"weights {weights_path.stat().st_size / 1e6:.1f} MB, sha256 {digest}"
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


if __name__ == "__main__":
    main()
