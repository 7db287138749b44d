"""Device-seconds per stage: the numbers every receipt is priced from.

On CUDA, kernels run asynchronously, so wall time around a Python call measures only the launch; the
timer synchronizes the device before and after each stage so a stage owns exactly its own kernels. On
CPU the work is synchronous and wall time (``perf_counter``) is the device time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from rendercost.domain.costs import Stage


class StageTimer:
    """Accumulates seconds per stage for one pipeline call on ``device``."""

    def __init__(self, device: str) -> None:
        self._device = torch.device(device)
        self._seconds: dict[Stage, float] = {}

    @contextmanager
    def stage(self, stage: Stage) -> Iterator[None]:
        """Time the block as ``stage`` (added to any earlier time for the same stage)."""
        self._synchronize()
        start = time.perf_counter()
        yield
        self._synchronize()
        elapsed = time.perf_counter() - start
        self._seconds[stage] = self._seconds.get(stage, 0.0) + elapsed

    @property
    def seconds(self) -> dict[Stage, float]:
        """A copy of the seconds measured so far, by stage."""
        return dict(self._seconds)

    def _synchronize(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
