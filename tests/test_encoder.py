"""The CLIP encoder: loading configs and weights the open_clip way, encoding, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.encoder import load_encoder, resolve_device
from retrieval.errors import ModelError
from retrieval.modelnames import model_slug
from tests.fixtures.retrieval import TINY_CONFIG


def test_tiny_model_loads_through_config_and_weights_paths(tiny_clip, tiny_encoder):
    _config, weights = tiny_clip
    assert tiny_encoder.image_size == 64
    assert tiny_encoder.embed_dim == 32
    assert tiny_encoder.slug == "turk-tiny-clip--turk-tiny-clip"
    # The saved weights are what the loaded model holds.
    saved = torch.load(weights, weights_only=True)
    loaded = tiny_encoder.model.state_dict()
    assert torch.equal(saved["visual.conv1.weight"], loaded["visual.conv1.weight"])


def test_encode_images_unit_float16_and_deterministic(tiny_encoder):
    pixels = torch.from_numpy(
        np.random.default_rng(0).integers(0, 256, (5, 3, 64, 64), dtype=np.uint8)
    )
    a = tiny_encoder.encode_images(pixels)
    b = tiny_encoder.encode_images(pixels)
    assert a.dtype == np.float16 and a.shape == (5, 32)
    np.testing.assert_allclose(np.linalg.norm(a.astype(np.float32), axis=1), 1.0, atol=2e-3)
    assert np.array_equal(a, b)
    assert tiny_encoder.encode_images(pixels[:0]).shape == (0, 32)


def test_prompt_ensemble_averages_renormalises_and_subtracts(tiny_encoder):
    templates = ["a photo of a {}.", "a drawing of the {}."]
    texts = [t.replace("{}", f"big {p}") for p in ["bus", "coach"] for t in templates]
    expected = tiny_encoder.encode_texts(texts).mean(axis=0)
    expected /= np.linalg.norm(expected)
    query = tiny_encoder.encode_prompt_ensemble(["bus", "coach"], templates, prefix="big")
    np.testing.assert_allclose(query, expected, atol=1e-5)

    negative = tiny_encoder.encode_texts([t.replace("{}", "big toy bus") for t in templates])
    negative = negative.mean(axis=0) / np.linalg.norm(negative.mean(axis=0))
    with_negative = tiny_encoder.encode_prompt_ensemble(
        ["bus", "coach"], templates, prefix="big", negatives=["toy bus"]
    )
    direction = expected - negative
    np.testing.assert_allclose(with_negative, direction / np.linalg.norm(direction), atol=1e-5)
    assert abs(np.linalg.norm(with_negative) - 1) < 1e-5


def test_model_slug_names_model_and_weights():
    assert model_slug("ViT-B-32", "laion2b_s34b_b79k") == "ViT-B-32--laion2b_s34b_b79k"
    assert model_slug("/x/my cfg.json", "/w/weights.pt") == "my-cfg--weights"
    assert model_slug("ViT-B-32", None) == "ViT-B-32--random"


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelError, match=r"--model ViT-B-23: unknown open_clip model.*ViT-B-32"):
        load_encoder("ViT-B-23", None, device="cpu")


def test_missing_weights_file(tiny_clip, tmp_path):
    config, _ = tiny_clip
    with pytest.raises(ModelError, match="weights file not found"):
        load_encoder(str(config), str(tmp_path / "nope.pt"), device="cpu")


def test_weights_of_another_architecture(tiny_clip, tmp_path):
    _, weights = tiny_clip
    other = json.loads(json.dumps(TINY_CONFIG))
    other["vision_cfg"]["width"] = 32
    other["text_cfg"]["width"] = 32
    config = tmp_path / "turk-tiny-narrow.json"
    config.write_text(json.dumps(other))
    with pytest.raises(ModelError, match="do not fit the turk-tiny-narrow architecture"):
        load_encoder(str(config), str(weights), device="cpu")


def test_unreadable_weights_file(tiny_clip, tmp_path):
    config, _ = tiny_clip
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable weights file"):
        load_encoder(str(config), str(junk), device="cpu")


def test_bad_config_files(tmp_path):
    with pytest.raises(ModelError, match="model config file not found"):
        load_encoder(str(tmp_path / "none.json"), None, device="cpu")
    bad = tmp_path / "bad.json"
    bad.write_text('{"embed_dim": 8}')
    with pytest.raises(ModelError, match="missing vision_cfg, text_cfg"):
        load_encoder(str(bad), None, device="cpu")


def test_unknown_pretrained_tag(tiny_clip):
    config, _ = tiny_clip
    with pytest.raises(ModelError, match="not a pretrained tag of turk-tiny-clip nor a file"):
        load_encoder(str(config), "laion9000", device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_requested_but_absent():
    with pytest.raises(ModelError, match="--device cuda: CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def test_unknown_device():
    with pytest.raises(ModelError, match="unknown device"):
        resolve_device("tpu")


def test_config_path_registers_with_open_clip(tiny_clip):
    import open_clip

    config, _ = tiny_clip
    load_encoder(str(config), None, device="cpu")
    assert Path(config).stem in open_clip.list_models()
