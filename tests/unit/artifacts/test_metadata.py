import io
import json

import numpy as np
import pytest
from PIL import Image

from rendercost.artifacts.metadata import embed_receipt, read_receipt
from rendercost.domain.specs import OutputFormat

PAYLOAD = {
    "prompt": 'white sneaker on beach, "golden" <hour> & café',
    "seed": 7,
    "receipt": {"lines": [], "total_usd": "0.0000012345"},
}
ENCODINGS = [
    ("png", {}),
    ("jpeg", {"quality": 90}),
    ("webp", {"quality": 80}),  # simple lossy: VP8
    ("webp", {"lossless": True}),  # simple lossless: VP8L
]


def _encode(fmt: str, options: dict[str, object], mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(0)
    channels = 4 if mode == "RGBA" else 3
    image = Image.fromarray(rng.integers(0, 256, (40, 56, channels), dtype=np.uint8), mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt.upper(), **options)
    return buffer.getvalue()


def _pixels(data: bytes) -> np.ndarray:  # type: ignore[type-arg]
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"))


@pytest.mark.parametrize(("fmt", "options"), ENCODINGS)
def test_round_trip_keeps_pixels(fmt: str, options: dict[str, object]) -> None:
    data = _encode(fmt, options)
    media_type = OutputFormat(fmt).media_type
    assert read_receipt(data, media_type) is None
    stamped = embed_receipt(data, media_type, PAYLOAD)
    assert read_receipt(stamped, media_type) == PAYLOAD
    assert np.array_equal(_pixels(stamped), _pixels(data))
    restamped = embed_receipt(stamped, media_type, {**PAYLOAD, "seed": 8})
    assert read_receipt(restamped, media_type) == {**PAYLOAD, "seed": 8}
    assert len(restamped) == len(stamped)  # replaced, not appended


def test_png_chunk_is_readable_by_pillow_and_image_data_is_untouched() -> None:
    data = _encode("png", {})
    stamped = embed_receipt(data, "image/png", PAYLOAD)
    with Image.open(io.BytesIO(stamped)) as image:
        assert json.loads(image.text["rendercost"]) == PAYLOAD
    idat_start = data.index(b"IDAT") - 4
    iend_start = data.index(b"IEND") - 4
    assert data[idat_start:iend_start] in stamped  # compressed pixels byte for byte
    assert stamped.endswith(data[iend_start:])


@pytest.mark.parametrize(("fmt", "options"), ENCODINGS[1:])
def test_xmp_is_readable_by_pillow(fmt: str, options: dict[str, object]) -> None:
    stamped = embed_receipt(_encode(fmt, options), OutputFormat(fmt).media_type, PAYLOAD)
    with Image.open(io.BytesIO(stamped)) as image:
        assert b"rendercost:payload" in image.info["xmp"]


def test_webp_with_alpha_keeps_alpha() -> None:
    data = _encode("webp", {"lossless": True}, mode="RGBA")
    stamped = embed_receipt(data, "image/webp", PAYLOAD)
    assert np.array_equal(_pixels(stamped), _pixels(data))
    assert read_receipt(stamped, "image/webp") == PAYLOAD


def test_wrong_container_or_media_type_is_refused() -> None:
    png = _encode("png", {})
    with pytest.raises(ValueError, match="not a JPEG"):
        embed_receipt(png, "image/jpeg", PAYLOAD)
    with pytest.raises(ValueError, match="not a WebP"):
        read_receipt(png, "image/webp")
    with pytest.raises(ValueError, match="image/gif"):
        embed_receipt(png, "image/gif", PAYLOAD)
    with pytest.raises(ValueError, match="no IEND"):
        embed_receipt(png[:-12], "image/png", PAYLOAD)
