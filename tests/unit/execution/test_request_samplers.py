"""Every sampler a request may name renders on the real tiny pipeline with the steps and CFG asked."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)

from rendercost.domain.presets import REQUEST_SAMPLERS, Sampler
from rendercost.execution.pipeline.runner import DiffusersRunner
from tests.unit.execution.plans import pixels, plan, spec

pytestmark = pytest.mark.slow

CLASSES = {
    Sampler.DPMPP_2M: DPMSolverMultistepScheduler,
    Sampler.EULER_A: EulerAncestralDiscreteScheduler,
    Sampler.EULER: EulerDiscreteScheduler,
    Sampler.DDIM: DDIMScheduler,
}


@pytest.mark.parametrize("sampler", REQUEST_SAMPLERS, ids=str)
def test_a_request_sampler_renders_the_steps_asked(tiny_runner: DiffusersRunner, sampler: Sampler) -> None:
    steps: list[tuple[int, int]] = []
    asked = spec(preset="speed", steps=3, guidance_scale=1.0, sampler=sampler, seed=9)

    result = tiny_runner.run(plan(asked), on_step=lambda done, total: steps.append((done, total)))

    assert steps[-1] == (3, 3)
    assert len(result.images) == 1 and result.weights_sha256
    model = tiny_runner._registry.get("default")
    if sampler in CLASSES:
        assert type(model.pipeline.scheduler) is CLASSES[sampler]


def test_guidance_and_sampler_change_the_pixels_and_a_batch_equals_each_image_alone(
    tiny_runner: DiffusersRunner,
) -> None:
    base = spec(preset="speed", steps=2, sampler=Sampler.EULER_A, seed=4)
    alone = [pixels(tiny_runner.run(plan(replace(base, seed=s))))[0] for s in (4, 5)]
    batched = pixels(tiny_runner.run(plan(base, replace(base, seed=5))))
    for single, together in zip(alone, batched, strict=True):  # per-image noise streams
        assert np.abs(single - together).max() <= 2
    other_cfg = pixels(tiny_runner.run(plan(replace(base, guidance_scale=7.0))))[0]
    other_sampler = pixels(tiny_runner.run(plan(replace(base, sampler=Sampler.DDIM))))[0]
    assert np.abs(alone[0] - other_cfg).max() > 2
    assert np.abs(alone[0] - other_sampler).max() > 2
