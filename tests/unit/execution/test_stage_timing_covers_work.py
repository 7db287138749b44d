"""Receipts are exact: the seconds a stage reports cover the model work done inside it (CPU).

tests/gpu/test_gpu_receipts.py checks the same against CUDA events where a GPU is present.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from rendercost.domain.costs import Stage
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.pipeline.runner import DiffusersRunner
from rendercost.execution.pipeline.timing import StageTimer
from tests.unit.execution.plans import fewer_steps, plan, spec


@contextmanager
def timed_forwards(module: Any) -> Iterator[list[float]]:
    """perf_counter seconds of every forward call of ``module`` inside the block."""
    seconds: list[float] = []
    started: list[float] = []
    pre = module.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
    post = module.register_forward_hook(lambda *_: seconds.append(time.perf_counter() - started.pop()))
    try:
        yield seconds
    finally:
        pre.remove()
        post.remove()


def test_a_stage_covers_the_busy_work_inside_it() -> None:
    timer = StageTimer("cpu")
    x = torch.randn(128, 128)

    with timer.stage(Stage.DENOISE):
        start = time.perf_counter()
        for _ in range(40):
            x = torch.tanh(x @ x)
        floor = time.perf_counter() - start

    assert timer.seconds[Stage.DENOISE] >= floor > 0


def test_runner_stage_seconds_cover_the_models_work(tiny_registry: ModelRegistry) -> None:
    runner = DiffusersRunner(tiny_registry, tiny_registry.settings, preset_lookup=fewer_steps(2))
    pipeline = tiny_registry.get("default").pipeline

    with (
        timed_forwards(pipeline.unet) as unet,
        timed_forwards(pipeline.vae.decoder) as decoder,
        timed_forwards(pipeline.text_encoder_2) as encoder,
    ):
        result = runner.run(plan(spec("a lighthouse timed to the microsecond", preset="speed")))

    seconds = result.stage_seconds
    assert len(unet) >= 2 and len(decoder) == 1
    assert seconds[Stage.DENOISE] >= sum(unet) > 0
    assert seconds[Stage.DECODE] >= sum(decoder) > 0
    assert seconds[Stage.TEXT_ENCODE] >= sum(encoder)  # zero calls when the embedding cache answers
