"""The shipped demo model: files, checksum, and loading through the real weights path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.demomodel import DEMO_MODEL_LABEL, DEMO_MODEL_NAME, demo_model_paths
from retrieval.errors import ModelError


def test_demo_model_files_are_small_open_clip_config_and_weights() -> None:
    config, weights = demo_model_paths()
    assert config.name == f"{DEMO_MODEL_NAME}.json" and weights.name == f"{DEMO_MODEL_NAME}.pt"
    spec = json.loads(config.read_text(encoding="utf-8"))
    assert {"embed_dim", "vision_cfg", "text_cfg"} <= set(spec)
    assert weights.stat().st_size < 5_000_000
    assert "not CLIP" in DEMO_MODEL_LABEL and "\n" not in DEMO_MODEL_LABEL


def test_damaged_weights_are_refused_with_the_fix(tmp_path: Path) -> None:
    config, weights = demo_model_paths()
    shutil.copy(config, tmp_path / config.name)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / weights.name).write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"SHA-256 .* reinstall"):
        demo_model_paths(tmp_path)
    (tmp_path / weights.name).unlink()
    with pytest.raises(ModelError, match="missing"):
        demo_model_paths(tmp_path)


def test_demo_model_loads_like_user_weights_and_retrieves() -> None:
    import torch
    from PIL import Image, ImageDraw

    from retrieval.encoder import load_encoder

    config, weights = demo_model_paths()
    encoder = load_encoder(str(config), str(weights), device="cpu")
    assert encoder.embed_dim == 64 and encoder.image_size == 64
    # A yellow bus on a road against a green field: the bus text is the nearer one.
    img = Image.new("RGB", (64, 64), (135, 190, 235))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 48, 64, 64], fill=(90, 90, 95))
    d.rounded_rectangle([6, 28, 58, 46], radius=3, fill=(240, 190, 20))
    for x in range(10, 52, 8):
        d.rectangle([x, 31, x + 5, 36], fill=(200, 230, 250))
    d.ellipse([12, 42, 20, 50], fill=(20, 20, 20))
    d.ellipse([44, 42, 52, 50], fill=(20, 20, 20))
    pixels = torch.from_numpy(np.array(img)).permute(2, 0, 1).unsqueeze(0).contiguous()
    vector = encoder.encode_images(pixels)[0].astype(np.float32)
    texts = encoder.encode_texts(["a photo of a bus.", "a photo of flowers."])
    assert float(texts[0] @ vector) > float(texts[1] @ vector)
