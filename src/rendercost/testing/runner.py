"""A fake ``Runner`` that paints real images at once, and a wrapper that times a real runner."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image

from rendercost.domain.batch import BatchPlan, RenderedImage, RenderResult
from rendercost.domain.costs import Stage
from rendercost.domain.runner import Runner, StepCallback
from rendercost.domain.specs import OutputFormat, RenderSpec

Colour = tuple[int, int, int]
BeforeHook = Callable[[BatchPlan, StepCallback | None], None]

DEFAULT_STAGE_SECONDS: Mapping[Stage, float] = {
    Stage.TEXT_ENCODE: 0.01,
    Stage.DENOISE: 0.05,
    Stage.DECODE: 0.02,
    Stage.POSTPROCESS: 0.001,
}


def seed_colour(spec: RenderSpec) -> Colour:
    """A flat colour that differs from seed to seed (the first 65,536 seeds all differ)."""
    return (spec.seed % 256, (spec.seed // 256) % 256, 128)


@lru_cache(maxsize=512)
def _encode(colour: Colour, size: tuple[int, int], output_format: OutputFormat) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, output_format.value.upper())
    return buffer.getvalue()


@dataclass
class FakeRunner:
    """A ``Runner`` that answers each plan with one flat-colour image per item, in the spec's format.

    ``stage_seconds`` is what every call reports (``sleep=True`` also waits that long, for benchmarks
    that need calls to take time). ``image_size`` None paints at the spec's size. ``before`` runs at
    the start of every call with the plan and step callback: it may block, act on the queue, or raise
    to fail the call; ``fail_with`` fails every call with that error. ``plans`` keeps every plan
    received (failed calls included); ``calls`` the batch sizes of the calls that returned images.
    """

    stage_seconds: Mapping[Stage, float] = field(default_factory=lambda: dict(DEFAULT_STAGE_SECONDS))
    image_size: tuple[int, int] | None = None
    colour: Callable[[RenderSpec], Colour] = seed_colour
    before: BeforeHook | None = None
    fail_with: Exception | None = None
    sleep: bool = False
    device: str = "cpu"
    plans: list[BatchPlan] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult:
        self.plans.append(plan)
        if self.before is not None:
            self.before(plan, on_step)
        if self.fail_with is not None:
            raise self.fail_with
        if self.sleep:
            time.sleep(sum(self.stage_seconds.values()))
        images = tuple(
            RenderedImage(item, self.paint(item.spec), item.spec.output_format.media_type, item.spec.seed)
            for item in plan.items
        )
        self.calls.append(plan.size)
        return RenderResult(plan.batch_id, images, dict(self.stage_seconds), device=self.device)

    def paint(self, spec: RenderSpec) -> bytes:
        """The bytes this runner answers ``spec`` with."""
        size = self.image_size or (spec.width, spec.height)
        return _encode(self.colour(spec), size, spec.output_format)


class TimedRunner:
    """Passes every call to ``runner``; keeps each result and how long each call took (wall seconds)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.results: list[RenderResult] = []
        self.call_seconds: list[float] = []

    @property
    def seconds(self) -> float:
        """Wall seconds spent inside the wrapped runner so far."""
        return sum(self.call_seconds)

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult:
        started = time.perf_counter()
        try:
            result = self.runner.run(plan, on_step)
        finally:
            self.call_seconds.append(time.perf_counter() - started)
        self.results.append(result)
        return result
