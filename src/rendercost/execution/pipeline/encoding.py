"""Decoded images to files: PNG, WebP or JPEG bytes that depend only on the pixels.

No metadata, timestamps or color profiles are written, so the same pixels always give the same bytes
(the receipt is embedded later, by the artifacts layer).
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from rendercost.domain.specs import OutputFormat

WEBP_QUALITY = 90
# libwebp's effort (0..6) at the same quality: 0 encodes a 1024x1024 render about 3x faster than 4 and
# its files are no larger (bench/savings_profile.py --encode); the encode is a device stage's cost
WEBP_METHOD = 0
# zlib level: 1 encodes a 1024x1024 render about 30% faster than 6 for about 9% more bytes, and the device
# time saved is worth far more than the storage of those bytes for 30 days, on a CPU or a GPU price
PNG_COMPRESS_LEVEL = 1
JPEG_QUALITY = 92


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """VAE output (N, 3, H, W) in [-1, 1], any device/dtype, to uint8 (N, H, W, 3) on the CPU."""
    scaled = (images.detach().float() / 2 + 0.5).clamp(0, 1)
    return (scaled * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def encode_image(pixels: np.ndarray, output_format: OutputFormat) -> bytes:
    """Encode one (H, W, 3) uint8 image."""
    image = Image.fromarray(pixels)  # (H, W, 3) uint8 is RGB
    buffer = io.BytesIO()
    if output_format is OutputFormat.PNG:
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif output_format is OutputFormat.WEBP:
        image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    else:
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
