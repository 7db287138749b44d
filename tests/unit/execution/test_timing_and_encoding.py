"""Stage timing on the CPU, and image files that depend only on their pixels."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from rendercost.domain.costs import Stage
from rendercost.domain.specs import OutputFormat
from rendercost.execution.pipeline.encoding import encode_image, to_pixels
from rendercost.execution.pipeline.timing import StageTimer


def test_stage_timer_measures_and_accumulates_wall_time_on_cpu() -> None:
    timer = StageTimer("cpu")

    with timer.stage(Stage.DENOISE):
        time.sleep(0.02)
    with timer.stage(Stage.DENOISE):
        time.sleep(0.01)
    with timer.stage(Stage.DECODE):
        pass

    assert timer.seconds[Stage.DENOISE] >= 0.03
    assert 0 <= timer.seconds[Stage.DECODE] < 0.01
    assert set(timer.seconds) == {Stage.DENOISE, Stage.DECODE}


def test_to_pixels_maps_minus_one_to_one_onto_bytes() -> None:
    images = torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)

    pixels = to_pixels(images)

    assert pixels.shape == (1, 1, 4, 3) and pixels.dtype == np.uint8
    assert pixels[0, 0, :, 0].tolist() == [0, 128, 255, 255]


@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_encoding_is_deterministic_and_carries_no_metadata(output_format: OutputFormat) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(16, 24, 3), dtype=np.uint8)

    data = encode_image(pixels, output_format)

    assert data == encode_image(pixels.copy(), output_format)
    image = Image.open(io.BytesIO(data))
    assert image.size == (24, 16)
    assert not image.info.get("exif") and not image.info.get("icc_profile")
    if output_format is OutputFormat.PNG:
        assert np.array_equal(np.asarray(image), pixels)  # lossless
