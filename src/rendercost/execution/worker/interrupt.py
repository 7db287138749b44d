"""Draining with a deadline, and booking the device time of work cut short.

On SIGTERM a worker stops claiming and has ``drain_seconds`` (setting ``worker_drain_seconds``) to
finish what it holds. ``DrainClock`` starts counting when the worker first notices the stop and says
when the time is up; a pipeline call still running then is cut short at its next denoising step
(``DrainTimeout`` raised from the step callback). Every job still held at the end is released to the
queue (no attempt counted) and the device-seconds already spent on it, its share of the batch cut
short plus the images it had rendered but not settled, become one ``Stage.INTERRUPTED`` line through
``Biller.interrupted``: a spot interruption's cost shows in reports. ``LostWork`` keeps that tally.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

from rendercost.domain.batch import BatchPlan
from rendercost.domain.costs import DEVICE_STAGES, CostLine, Stage
from rendercost.domain.jobs import Job
from rendercost.domain.money import SECONDS_PER_HOUR, cost_of_seconds
from rendercost.execution.worker.assembly import JobAssembly
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.ledger.pricing import DEVICE_HOUR, QUANTITY_QUANTUM, work_units


class DrainTimeout(Exception):
    """The drain's time ran out while a batch was rendering: the batch is abandoned."""


class DrainClock:
    """When a draining worker must let go. ``drain_seconds`` None: never (finish everything)."""

    def __init__(
        self,
        stop: threading.Event,
        drain_seconds: float | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stop = stop
        self._drain_s = drain_seconds
        self._monotonic = monotonic
        self._noticed: float | None = None

    @property
    def draining(self) -> bool:
        """True once the stop is set."""
        return self._stop.is_set()

    def expired(self) -> bool:
        """True once ``drain_seconds`` have passed since the stop was first noticed."""
        if self._drain_s is None or not self._stop.is_set():
            return False
        now = self._monotonic()
        if self._noticed is None:
            self._noticed = now
        return now - self._noticed >= self._drain_s

    def check(self) -> None:
        """Raise ``DrainTimeout`` when ``expired``; called at each denoising step."""
        if self.expired():
            raise DrainTimeout("drain time is up")


class LostWork:
    """Device-seconds per job spent on batches cut short (the shares of their items)."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    def batch_cut_short(self, plan: BatchPlan, seconds: float) -> None:
        """``plan`` ran ``seconds`` before it was abandoned: each job gets its items' work share."""
        weights = [work_units(item.spec) for item in plan.items]
        total = sum(weights) or 1
        for item, weight in zip(plan.items, weights, strict=True):
            self._seconds[item.job_id] = self._seconds.get(item.job_id, 0.0) + seconds * weight / total

    def seconds(self, job_id: str, assembly: JobAssembly | None) -> float:
        """All device time ``job_id`` spent in this attempt: batches cut short plus the device stages
        of the images it had rendered (those never reach the ledger as a receipt)."""
        rendered = 0.0
        if assembly is not None:
            rendered = sum(
                line.device_seconds
                for image in assembly.images.values()
                for line in image.receipt.lines
                if line.stage in DEVICE_STAGES
            )
        return self._seconds.get(job_id, 0.0) + rendered


def interrupted_line(job: Job, seconds: float, pricing: WorkerPricing, *, worker_id: str) -> CostLine:
    """The ``Stage.INTERRUPTED`` line of ``job``: ``seconds`` of device time at the worker's
    device-hour price. ``image_index`` -1 is a placeholder: ``Biller.interrupted`` numbers each
    interruption of a job (-1, -2, ...) so a job interrupted twice keeps both lines."""
    price = pricing.catalog.device_price(pricing.device_type, pricing.pricing_model, pricing.region)
    return CostLine(
        job_id=job.id,
        image_index=-1,
        stage=Stage.INTERRUPTED,
        device_seconds=seconds,
        unit_price=price,
        unit=DEVICE_HOUR,
        quantity=(Decimal(repr(seconds)) / SECONDS_PER_HOUR).quantize(QUANTITY_QUANTUM),
        cost=cost_of_seconds(seconds, price),
        device_type=pricing.device_type,
        pricing_model=pricing.pricing_model,
        batch_id="",
        batch_size=0,
        details={"worker": worker_id, "attempt": job.attempts},
    )
