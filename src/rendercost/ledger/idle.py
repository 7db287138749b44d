"""Idle device time as the worker's own ledger lines, so allocated + idle = what the machine cost.

``IdleMeteredRunner`` wraps a device's ``Runner``: the time between pipeline calls is idle device time,
counted by a ``DeviceIdleMeter`` (one per device, however many worker threads share it). The meter's
``tick()`` (from its own thread, ``start()``, every ``tick_s``) hands idle time to ``IdleRecorder`` even
while no batch runs; ``close()`` flushes the rest. Wiring, where a device's runner is built::

    meter = idle_meter(engine, catalog, device_type=..., pricing_model=..., region=..., worker_id=...)
    runner = IdleMeteredRunner(runner, meter); meter.start()  # ... meter.close() on shutdown

``IdleRecorder.add(seconds)`` gathers idle seconds and flushes by itself once ``flush_after_s`` have
gathered; ``flush()`` writes what is left. Each flush is
one line: ``Stage.IDLE``, ``image_index = -1``, ``job_id = "idle:<worker>:<window start>"``, tenant
``IDLE_TENANT``, priced at the worker's device-hour price. Reports show it as idle time and spread it
over the renders for the fully loaded cost per render; the FOCUS export marks it ``x_CostBasis=idle``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine

from rendercost.db.clock import Clock, utcnow
from rendercost.domain.batch import BatchPlan, RenderResult
from rendercost.domain.costs import Attribution, CostLine, PricingModel, Stage
from rendercost.domain.money import SECONDS_PER_HOUR, cost_of_seconds
from rendercost.domain.runner import Runner, StepCallback
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.ledger import Ledger

IDLE_TENANT = "_machine"  # tenant of idle lines: no one's render
IDLE_MODEL = "-"  # idle lines ran no model or preset
QUANTITY_QUANTUM = Decimal("1e-18")


class IdleRecorder:
    """Gathers one worker's idle seconds and writes them as idle lines. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        *,
        worker_id: str,
        usd_per_hour: Decimal,
        device_type: str,
        pricing_model: PricingModel = PricingModel.ON_DEMAND,
        flush_after_s: float = 60.0,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._ledger = Ledger(engine, clock=clock)
        self._worker = worker_id
        self._price = usd_per_hour
        self._device = device_type
        self._pricing_model = pricing_model
        self._flush_after = flush_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = 0.0
        self._window_start: datetime | None = None

    def add(self, seconds: float) -> None:
        """Count ``seconds`` of idle device time; flush when enough has gathered."""
        if seconds <= 0:
            return
        with self._lock:
            if self._window_start is None:
                self._window_start = self._clock()
            self._pending += seconds
            due = self._pending >= self._flush_after
        if due:
            self.flush()

    def flush(self) -> int:
        """Write the gathered idle time as one line (none when nothing gathered); return lines written."""
        with self._lock:
            seconds, start = self._pending, self._window_start
            self._pending, self._window_start = 0.0, None
        if seconds <= 0 or start is None:
            return 0
        job_id = f"idle:{self._worker}:{start:%Y-%m-%dT%H:%M:%S.%fZ}"
        line = CostLine(
            job_id=job_id,
            image_index=-1,
            stage=Stage.IDLE,
            device_seconds=seconds,
            unit_price=self._price,
            unit="device-hour",
            quantity=(Decimal(repr(seconds)) / SECONDS_PER_HOUR).quantize(QUANTITY_QUANTUM),
            cost=cost_of_seconds(seconds, self._price),
            device_type=self._device,
            pricing_model=self._pricing_model,
            batch_id="",
            batch_size=0,
            details={"worker": self._worker},
        )
        with self._engine.begin() as conn:
            attribution = Attribution(IDLE_TENANT, IDLE_MODEL, IDLE_MODEL)
            return self._ledger.insert_lines(conn, [line], attribution)


class DeviceIdleMeter:
    """Counts the time a device runs no batch and feeds it to an ``IdleRecorder``. Thread-safe."""

    def __init__(
        self, recorder: IdleRecorder, *, tick_s: float = 15.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._recorder = recorder
        self._tick_s = tick_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._busy = 0  # pipeline calls in progress
        self._idle_since: float | None = monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        """A pipeline call starts: the idle stretch before it is counted."""
        with self._lock:
            self._busy += 1
            idle = self._take_idle()
        self._recorder.add(idle)

    def end(self) -> None:
        """A pipeline call ended: idle time starts again when none is left running."""
        with self._lock:
            self._busy -= 1
            if self._busy == 0:
                self._idle_since = self._monotonic()

    def tick(self) -> None:
        """Count the idle time so far (called periodically while no batch runs)."""
        with self._lock:
            idle = self._take_idle()
            if self._busy == 0:
                self._idle_since = self._monotonic()
        self._recorder.add(idle)

    def start(self) -> None:
        """Tick every ``tick_s`` from a daemon thread until ``close``."""
        self._thread = threading.Thread(target=self._loop, name="idle-meter", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop ticking and write every idle second counted so far."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.tick()
        self._recorder.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self._tick_s):
            self.tick()

    def _take_idle(self) -> float:
        if self._idle_since is None:
            return 0.0
        idle = self._monotonic() - self._idle_since
        self._idle_since = None
        return max(0.0, idle)


class IdleMeteredRunner:
    """A ``Runner`` that tells a ``DeviceIdleMeter`` when the device is busy."""

    def __init__(self, runner: Runner, meter: DeviceIdleMeter) -> None:
        self._runner = runner
        self._meter = meter

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult:
        self._meter.begin()
        try:
            return self._runner.run(plan, on_step)
        finally:
            self._meter.end()


def idle_meter(
    engine: Engine,
    catalog: PriceCatalog,
    *,
    device_type: str,
    pricing_model: PricingModel | str,
    region: str,
    worker_id: str,
    tick_s: float = 15.0,
) -> DeviceIdleMeter:
    """A meter for one device, priced from ``catalog`` like the device's render lines."""
    model = PricingModel(pricing_model)
    recorder = IdleRecorder(
        engine,
        worker_id=worker_id,
        usd_per_hour=catalog.device_price(device_type, model, region),
        device_type=device_type,
        pricing_model=model,
    )
    return DeviceIdleMeter(recorder, tick_s=tick_s)
