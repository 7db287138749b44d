"""Helpers for the execution tests: plans from specs, decoded pixels, UNet call counting."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from rendercost.domain.batch import BatchItem, BatchPlan, RenderResult
from rendercost.domain.presets import Preset, get_preset
from rendercost.domain.specs import RenderSpec

SMALL = {"width": 64, "height": 64}


def spec(prompt: str = "a red fox in the snow", **fields: Any) -> RenderSpec:
    """A 64x64 spec (lightning unless asked otherwise)."""
    values: dict[str, Any] = {"preset": "lightning", **SMALL, **fields}
    return RenderSpec(prompt=prompt, **values)


def plan(*specs: RenderSpec, batch_id: str = "batch-1") -> BatchPlan:
    return BatchPlan(batch_id, tuple(BatchItem("job", i, s) for i, s in enumerate(specs)))


def pixels(result: RenderResult) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(io.BytesIO(image.data)).convert("RGB"), dtype=np.int16)
        for image in result.images
    ]


def fewer_steps(steps: int) -> Any:
    """A preset lookup for ``DiffusersRunner(preset_lookup=...)`` that caps every preset at ``steps``."""

    def lookup(name: str) -> Preset:
        return replace(get_preset(name), steps=steps)

    return lookup


@contextmanager
def forward_batches(module: Any) -> Iterator[list[int]]:
    """Record the batch dimension of every forward call of ``module`` while inside the block."""
    batches: list[int] = []

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        first = args[0] if args else next(iter(kwargs.values()))
        batches.append(int(first.shape[0]))

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield batches
    finally:
        handle.remove()
