"""The CLIP encoder: open_clip models, their weights, and image and text encoding.

The only module of the project that imports torch and open_clip at module level. A
model is named the way open_clip names it (``ViT-B-32``) or by the path of an open_clip
model config JSON (for custom or small architectures); weights are a pretrained tag
(``laion2b_s34b_b79k``, fetched through open_clip's own cache) or a local weights file
(a ``state_dict`` saved with ``torch.save``, or any checkpoint open_clip can read).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from retrieval.errors import ModelError, WeightsUnavailableError
from retrieval.modelnames import DEFAULT_MODEL, DEFAULT_PRETRAINED, model_slug

_CONFIG_KEYS = ("embed_dim", "vision_cfg", "text_cfg")

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "ClipEncoder",
    "check_model",
    "load_encoder",
    "model_slug",
]


def resolve_device(device: str) -> str:
    """Turn ``auto``, ``cpu`` or ``cuda`` into the device to use.

    Args:
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        ``cpu`` or a CUDA device string.

    Raises:
        ModelError: CUDA was asked for but is not available, or the name is unknown.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelError(
                f"--device {device}: CUDA is not available on this machine; "
                "pass --device cpu or --device auto"
            )
        return device
    raise ModelError(f"--device {device}: unknown device; pass auto, cpu or cuda")


def _register_config(path: Path) -> str:
    if not path.is_file():
        raise ModelError(
            f"{path}: model config file not found; pass an open_clip model name "
            "(e.g. ViT-B-32) or the path of a model config JSON"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable JSON model config ({exc})") from exc
    missing = [k for k in _CONFIG_KEYS if not isinstance(config, dict) or k not in config]
    if missing:
        raise ModelError(
            f"{path}: not an open_clip model config (missing {', '.join(missing)}); "
            "it needs embed_dim, vision_cfg and text_cfg"
        )
    open_clip.add_model_config(path)
    return path.stem


def model_name_for(model: str) -> str:
    """Return the open_clip model name for a name or config JSON path, registering configs.

    Args:
        model: An open_clip model name or the path of a model config JSON.

    Returns:
        The name open_clip knows the architecture by.

    Raises:
        ModelError: The name is unknown or the config file is unusable.
    """
    if model.endswith(".json"):
        return _register_config(Path(model))
    known = open_clip.list_models()
    if model.replace("/", "-") not in known:
        import difflib

        close = difflib.get_close_matches(model, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelError(
            f"--model {model}: unknown open_clip model{hint}; pass a name from "
            "open_clip.list_models() or the path of a model config JSON"
        )
    return model


def cached_pretrained(model: str, pretrained: str) -> Path | None:
    """Return the local file of a pretrained tag when open_clip's cache already holds it.

    Args:
        model: open_clip model name.
        pretrained: Pretrained tag.

    Returns:
        The cached weights file, or None when it would have to be downloaded.
    """
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        return None
    if cfg.get("file") and Path(cfg["file"]).is_file():
        return Path(cfg["file"])
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        repo, filename = os.path.split(hub)
        for name in (
            filename.replace(".bin", ".safetensors") if filename else "open_clip_model.safetensors",
            filename or "open_clip_pytorch_model.bin",
        ):
            found = try_to_load_from_cache(repo_id=repo, filename=name)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = cfg.get("url", "")
    if url:
        cached = Path.home() / ".cache" / "clip" / os.path.basename(url)
        if cached.is_file():
            return cached
    return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket

    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ClipEncoder:
    """An open_clip model ready to encode images and text on one device.

    Attributes:
        model: The open_clip model in eval mode.
        tokenizer: The matching tokenizer.
        model_arg: The model as the user named it (name or config path).
        pretrained: The weights as the user named them (tag, path) or None.
        device: ``cpu`` or a CUDA device.
        dtype: Compute dtype (float32 on CPU, float16 or bfloat16 on CUDA).
        image_size: Square input size in pixels.
        mean: Per-channel normalisation mean (0-1 scale).
        std: Per-channel normalisation std (0-1 scale).
        embed_dim: Length of the embedding vectors.
    """

    model: torch.nn.Module
    tokenizer: object
    model_arg: str
    pretrained: str | None
    device: str
    dtype: torch.dtype
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    embed_dim: int

    @property
    def slug(self) -> str:
        """Name of this model's embeddings folder (see :func:`model_slug`)."""
        return model_slug(self.model_arg, self.pretrained)

    def encode_images(self, pixels: torch.Tensor) -> np.ndarray:
        """Encode a batch of cropped uint8 images into L2-normalised float16 vectors.

        Args:
            pixels: ``uint8`` tensor ``(N, 3, S, S)`` with ``S == image_size``, on any
                device (moved to the encoder's device).

        Returns:
            ``float16`` array ``(N, embed_dim)`` of unit vectors.
        """
        if pixels.shape[0] == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float16)
        return self.encode_images_tensor(pixels).cpu().numpy()

    def encode_images_tensor(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encode like :meth:`encode_images`, leaving the vectors on the encoder's device.

        Nothing waits for the device: on CUDA the work is queued on the current stream,
        so the caller can prepare the next batch while this one is encoded.

        Args:
            pixels: ``uint8`` tensor ``(N, 3, S, S)``, on any device.

        Returns:
            ``float16`` tensor ``(N, embed_dim)`` of unit vectors on the encoder's device.
        """
        if pixels.shape[0] == 0:
            return torch.zeros((0, self.embed_dim), dtype=torch.float16, device=self.device)
        # fp16 holds 0..255 exactly, so fp16 models normalise in fp16 (fewer bytes moved).
        work = torch.float16 if self.dtype == torch.float16 else torch.float32
        mean = torch.tensor(self.mean, device=self.device, dtype=work).view(1, 3, 1, 1) * 255.0
        scale = 1.0 / (torch.tensor(self.std, device=self.device).view(1, 3, 1, 1) * 255.0)
        with torch.inference_mode():
            x = pixels.to(self.device, non_blocking=True).to(work, copy=True)
            x = x.sub_(mean).mul_(scale.to(work)).to(self.dtype)
            if self._needs_autocast():
                with torch.autocast("cuda", dtype=self.dtype):
                    feats = self.model.encode_image(x)  # type: ignore[operator]
            else:
                feats = self.model.encode_image(x)  # type: ignore[operator]
            feats = F.normalize(feats.float(), dim=-1)
        return feats.to(torch.float16)

    def _needs_autocast(self) -> bool:
        # A model already cast to its compute dtype runs as is: autocast would only add
        # casts (layer norms in float32 and back), and it turns off the fused attention
        # path of nn.MultiheadAttention in inference.
        if not self.device.startswith("cuda") or self.dtype == torch.float32:
            return False
        return any(p.dtype != self.dtype for p in self.model.parameters())

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Encode texts into L2-normalised float32 vectors.

        Args:
            texts: The texts.

        Returns:
            ``float32`` array ``(len(texts), embed_dim)``.
        """
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(texts), 256):
                tokens = self.tokenizer(texts[start : start + 256])  # type: ignore[operator]
                feats = self.model.encode_text(tokens.to(self.device))  # type: ignore[operator]
                out.append(F.normalize(feats.float(), dim=-1).cpu().numpy())
        if not out:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def encode_prompt_ensemble(
        self,
        prompts: list[str],
        templates: list[str] | None = None,
        prefix: str | None = None,
        negatives: list[str] | None = None,
    ) -> np.ndarray:
        """Encode one concept's query: a prompt ensemble minus its negatives.

        Every prompt (with the prefix, when given) is put in every template; the text
        embeddings are averaged and renormalised. Negative prompts go through the same
        templates; their normalised mean is subtracted, so that a score is the
        similarity to the concept minus the similarity to what it must not be, and the
        result is renormalised.

        Args:
            prompts: One or more prompts or synonyms.
            templates: Strings with ``{}``; None or empty uses each prompt as is.
            prefix: Text put before each prompt, e.g. ``a photo of``.
            negatives: Prompts whose direction is subtracted.

        Returns:
            ``float32`` unit vector ``(embed_dim,)``.
        """

        def expand(items: list[str]) -> list[str]:
            texts = [f"{prefix} {p}" if prefix else p for p in items]
            if not templates:
                return texts
            return [t.replace("{}", text) for text in texts for t in templates]

        positive = self.encode_texts(expand(prompts)).mean(axis=0)
        positive /= np.linalg.norm(positive) + 1e-12
        if negatives:
            negative = self.encode_texts(expand(negatives)).mean(axis=0)
            negative /= np.linalg.norm(negative) + 1e-12
            positive = positive - negative
            positive /= np.linalg.norm(positive) + 1e-12
        return positive.astype(np.float32)


def check_model(model: str, pretrained: str | None) -> str:
    """Check a model and its weights can be loaded here, without loading them.

    What :func:`load_encoder` checks first; a driver that sends the model to workers
    elsewhere (``turk embed --engine ray``) calls it to fail early with the same message.

    Args:
        model: open_clip model name or model config JSON path.
        pretrained: Pretrained tag, weights file path, or None.

    Returns:
        The open_clip model name.

    Raises:
        ModelError: Unknown model, missing weights file or unknown tag.
        WeightsUnavailableError: A tag whose weights are not cached and cannot be fetched.
    """
    name = model_name_for(model)
    if pretrained is not None:
        looks_like_path = os.sep in pretrained or Path(pretrained).suffix != ""
        is_tag = bool(open_clip.get_pretrained_cfg(name, pretrained))
        if looks_like_path and not is_tag and not Path(pretrained).is_file():
            raise ModelError(
                f"--pretrained {pretrained}: weights file not found; pass an existing "
                "weights file or a pretrained tag"
            )
        if not is_tag and not Path(pretrained).is_file():
            tags = open_clip.list_pretrained_tags_by_model(name)
            hint = f" (known tags for {name}: {', '.join(tags)})" if tags else ""
            raise ModelError(
                f"--pretrained {pretrained}: not a pretrained tag of {name} nor a file"
                f"{hint}; pass a tag or the path of a weights file"
            )
        if is_tag and cached_pretrained(name, pretrained) is None and not _hub_reachable():
            raise WeightsUnavailableError(
                f"--pretrained {pretrained}: {name} weights are not in the local cache and "
                "huggingface.co cannot be reached; connect to the network once, or pass "
                "--pretrained PATH to a weights file",
                model=name,
                pretrained=pretrained,
            )
    return name


def load_encoder(
    model: str = DEFAULT_MODEL,
    pretrained: str | None = DEFAULT_PRETRAINED,
    device: str = "auto",
    precision: str = "auto",
) -> ClipEncoder:
    """Load an open_clip model with its weights the normal open_clip way.

    Args:
        model: open_clip model name, or the path of an open_clip model config JSON
            (registered with open_clip under the file's stem).
        pretrained: Pretrained tag, path of a local weights file, or None for random
            weights (useful only for tests and speed measurements).
        device: ``auto``, ``cpu`` or ``cuda``.
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16`` or ``bf16``.

    Returns:
        The :class:`ClipEncoder`.

    Raises:
        ModelError: Unknown model, missing or wrong-architecture weights, weights that
            are not in the local cache and cannot be downloaded, CUDA absent.
    """
    resolved = resolve_device(device)
    name = check_model(model, pretrained)
    if precision == "auto":
        precision = "fp16" if resolved.startswith("cuda") else "fp32"
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in dtypes:
        raise ModelError(f"--dtype {precision}: unknown; pass fp32, fp16 or bf16")
    dtype = dtypes[precision] if resolved.startswith("cuda") else torch.float32
    if pretrained is None:
        logging.disable(logging.WARNING)  # random weights were asked for
    try:
        clip_model = open_clip.create_model(
            name,
            pretrained=pretrained,
            device=resolved,
            precision="fp32",
        )
    except RuntimeError as exc:
        text = " ".join(str(exc).split())
        if "size mismatch" in text or "Missing key" in text or "Unexpected key" in text:
            raise ModelError(
                f"--pretrained {pretrained}: weights do not fit the {name} architecture "
                f"({text[:160]}); pass the --model these weights were trained with"
            ) from exc
        if "Failed to download" in text and pretrained is not None:
            raise WeightsUnavailableError(
                f"--pretrained {pretrained}: {name} weights are not in the local cache and "
                "could not be downloaded; connect to the network once, or pass "
                "--pretrained PATH to a weights file",
                model=name,
                pretrained=pretrained,
            ) from exc
        raise ModelError(f"--model {model}: cannot build the model ({text[:200]})") from exc
    except AssertionError as exc:  # open_clip asserts on resized position embeddings
        raise ModelError(
            f"--pretrained {pretrained}: weights do not fit the {name} architecture "
            f"({exc}); pass the --model these weights were trained with"
        ) from exc
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ModelError(
            f"--pretrained {pretrained}: not a readable weights file ({exc}); pass a "
            "file saved with torch.save(model.state_dict()) or a pretrained tag"
        ) from exc
    except Exception as exc:  # pickle errors of corrupt checkpoints have no common base
        if type(exc).__name__ in {"UnpicklingError", "SafetensorError"}:
            raise ModelError(
                f"--pretrained {pretrained}: not a readable weights file ({exc}); pass a "
                "file saved with torch.save(model.state_dict()) or a pretrained tag"
            ) from exc
        raise
    finally:
        logging.disable(logging.NOTSET)
    if resolved.startswith("cuda") and dtype != torch.float32:
        clip_model = clip_model.to(dtype)
    clip_model.eval()
    visual = clip_model.visual
    cfg = getattr(visual, "preprocess_cfg", {}) or {}
    size = cfg.get("size", getattr(visual, "image_size", 224))
    if isinstance(size, list | tuple):
        size = int(size[0])
    mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
    with torch.inference_mode():
        probe = clip_model.encode_text(open_clip.get_tokenizer(name)(["probe"]).to(resolved))
    return ClipEncoder(
        model=clip_model,
        tokenizer=open_clip.get_tokenizer(name),
        model_arg=model,
        pretrained=pretrained,
        device=resolved,
        dtype=dtype,
        image_size=int(size),
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
        embed_dim=int(probe.shape[-1]),
    )


def save_random_model(config: dict[str, object], config_path: Path, weights_path: Path) -> None:
    """Build a model with random weights from a config and save config and weights.

    Used for tests and for running the pipeline where no pretrained weights exist; the
    files load back through :func:`load_encoder` like any user's config and weights.

    Args:
        config: An open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``).
        config_path: Where to write the config JSON (its stem becomes the model name).
        weights_path: Where to write the ``state_dict``.
    """
    config_path.parent.mkdir(parents=True, exist_ok=True)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    name = _register_config(config_path)
    torch.manual_seed(0)
    logging.disable(logging.WARNING)  # open_clip warns that the weights are random: meant
    try:
        model = open_clip.create_model(name, pretrained=None)
    finally:
        logging.disable(logging.NOTSET)
    torch.save(model.state_dict(), weights_path)


TINY_CLIP_CONFIG: dict[str, object] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
"""A tiny open_clip architecture (random weights) for tests and offline demos."""
