"""The seam between the worker and the model: one method, so tests can answer with a function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rendercost.domain.batch import BatchPlan, RenderResult

StepCallback = Callable[[int, int], None]  # (steps done, steps total), called from the model thread


class Runner(Protocol):
    """Runs one plan as one batched pipeline call."""

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult: ...
