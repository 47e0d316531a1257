"""Image decoding to the encoder's square input, on the CPU with PIL.

Decoding runs in worker processes, so this module imports only PIL and numpy. JPEGs are
decoded at reduced scale when the image is much larger than the input (libjpeg's DCT
scaling through ``Image.draft``), then the centre square is resized to the input size in
one step, which equals "resize the shorter side, then centre-crop".
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

ImageSource = str | bytes
"""An image as a file path or as the encoded bytes."""

DecodeTask = Sequence[tuple[int, ImageSource]]
"""A run of ``(image_id, source)`` decoded together by one worker."""


class DecodedBatch:
    """Pixels of the images of one task that decoded, and why the others did not.

    Attributes:
        ids: ``int64`` ids of the decoded images, in task order.
        pixels: ``uint8`` array ``(n, size, size, 3)``.
        failures: ``(image_id, reason)`` for images that could not be used.
        count: Number of images in the task (decoded + failed).
    """

    __slots__ = ("count", "failures", "ids", "pixels")

    def __init__(
        self,
        ids: np.ndarray,
        pixels: np.ndarray,
        failures: list[tuple[int, str]],
        count: int,
    ) -> None:
        self.ids = ids
        self.pixels = pixels
        self.failures = failures
        self.count = count


def decode_to_square(source: ImageSource, size: int) -> np.ndarray:
    """Decode one image and return its centre square resized to ``size`` x ``size``.

    Args:
        source: File path or encoded bytes.
        size: Side of the output square in pixels.

    Returns:
        ``uint8`` RGB array ``(size, size, 3)``.

    Raises:
        OSError: The file is missing or unreadable.
        ValueError: The bytes are not an image PIL can decode.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(stream) as img:
        img.draft("RGB", (size, size))
        rgb = img.convert("RGB")
    width, height = rgb.size
    side = min(width, height)
    left = (width - side) / 2
    top = (height - side) / 2
    square = rgb.resize(
        (size, size),
        Image.Resampling.BICUBIC,
        box=(left, top, left + side, top + side),
    )
    return np.asarray(square, dtype=np.uint8)


def failure_reason(source: ImageSource, exc: BaseException) -> str:
    """Describe why an image could not be decoded, in a few words.

    Args:
        source: The image's path or bytes.
        exc: The exception decoding raised.

    Returns:
        A short reason such as ``missing file`` or ``corrupt image: ...``.
    """
    if isinstance(exc, FileNotFoundError):
        return "missing file"
    if isinstance(exc, IsADirectoryError | PermissionError):
        return f"unreadable file: {exc.__class__.__name__}"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image"
    if isinstance(source, str) and os.path.isfile(source) and os.path.getsize(source) == 0:
        return "empty file"
    text = " ".join(str(exc).split())[:120]
    return f"corrupt image: {text or exc.__class__.__name__}"


def decode_task(task: DecodeTask, size: int) -> DecodedBatch:
    """Decode a run of images, recording each one that fails instead of raising.

    Args:
        task: ``(image_id, source)`` pairs.
        size: Side of the output squares.

    Returns:
        The :class:`DecodedBatch`.
    """
    ids: list[int] = []
    pixels = np.empty((len(task), size, size, 3), dtype=np.uint8)
    failures: list[tuple[int, str]] = []
    for image_id, source in task:
        try:
            pixels[len(ids)] = decode_to_square(source, size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            failures.append((int(image_id), failure_reason(source, exc)))
            continue
        ids.append(int(image_id))
    return DecodedBatch(np.asarray(ids, dtype=np.int64), pixels[: len(ids)], failures, len(task))
