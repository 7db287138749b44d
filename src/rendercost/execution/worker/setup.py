"""Building a worker from settings: the parts ``rendercost worker``, ``rendercost batch`` and
``rendercost serve`` share (database + migrations, job store, model runner, artifact store, planner,
prices)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from rendercost.artifacts.factory import open_artifact_store
from rendercost.artifacts.protocol import ArtifactStore
from rendercost.batching.planner import BatchPlanner
from rendercost.batching.policies import create_policy
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.domain.batch import BatchPlan, RenderResult
from rendercost.domain.runner import Runner, StepCallback
from rendercost.domain.specs import Priority
from rendercost.execution.worker.health import WorkerHealth
from rendercost.execution.worker.loop import SettledHook, Worker
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.ledger.billing import Biller
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.idle import IdleMeteredRunner, idle_meter
from rendercost.queue.claims import ALL_PRIORITIES
from rendercost.queue.sql_store import SqlJobStore
from rendercost.settings import Settings

if TYPE_CHECKING:
    from rendercost.execution.models.registry import ModelRegistry


def default_worker_id() -> str:
    """``host-pid-xxxx``: unique per process, readable in the jobs table."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


@contextmanager
def idle_metered(settings: Settings, engine: Engine, runner: Runner, *, worker_id: str) -> Iterator[Runner]:
    """``runner`` wrapped so that, while inside, the device's idle time is written to the ledger as
    idle lines priced like its render lines (reports show busy vs idle; allocated + idle = machine
    cost). Wrap the one runner a device has, not each worker thread, so idle time is counted once."""
    catalog = PriceCatalog.load(settings.catalog_path)
    meter = idle_meter(
        engine,
        catalog,
        device_type=settings.device_type,
        pricing_model=settings.pricing_model,
        region=settings.region,
        worker_id=worker_id,
    )
    meter.start()
    try:
        yield IdleMeteredRunner(runner, meter)
    finally:
        meter.close()


@contextmanager
def open_job_store(settings: Settings) -> Iterator[SqlJobStore]:
    """The settings' database, migrated to the newest schema, as a ``JobStore``; disposed on exit."""
    engine: Engine = create_db_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        yield SqlJobStore.from_settings(engine, settings)
    finally:
        engine.dispose()


def build_runner(settings: Settings, registry: ModelRegistry | None = None) -> Runner:
    """The diffusers runner over ``registry`` (default: a new one over the settings' models; loaded
    lazily, on first use), with the prompt embedding cache, as ``rendercost serve`` builds it."""
    from rendercost.execution.models.registry import ModelRegistry  # imports torch: only when rendering
    from rendercost.execution.pipeline.prompt_embeddings import encoder_from_settings
    from rendercost.execution.pipeline.runner import DiffusersRunner

    registry = registry or ModelRegistry(settings)
    return DiffusersRunner(
        registry, settings, embeddings=encoder_from_settings(settings, registry.fingerprint)
    )


class LockedRunner:
    """A ``Runner`` several worker threads share: one pipeline call at a time on the device, while the
    other threads store, price and settle."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._lock = threading.Lock()

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult:
        with self._lock:
            return self._runner.run(plan, on_step)


def build_planner(settings: Settings) -> BatchPlanner:
    return BatchPlanner(
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        policy=create_policy("priority", aging_seconds=settings.aging_seconds),
    )


def favour_the_render_thread(settings: Settings) -> None:
    """Set the process's GIL switch interval to ``gil_switch_interval_ms``: a worker's render loop
    releases the GIL around every tensor op and must get it back quickly while API, settling and
    lease threads run Python beside it (process-wide; the last worker built sets it)."""
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)


def build_worker(
    settings: Settings,
    store: SqlJobStore,
    runner: Runner,
    *,
    worker_id: str,
    biller: Biller | None = None,
    artifacts: ArtifactStore | None = None,
    pricing: WorkerPricing | None = None,
    on_settled: SettledHook | None = None,
    priorities: Collection[Priority] = ALL_PRIORITIES,
    drain_seconds: float | None = None,
    health: WorkerHealth | None = None,
) -> Worker:
    """A ``Worker`` configured from ``settings``, settling through ``biller`` (default: a ``Biller`` on
    ``store``), its process's GIL switch interval set (``favour_the_render_thread``); ``InvalidRequest``
    if the catalog cannot price it. ``priorities``, ``drain_seconds`` and ``health``: see ``Worker`` (a
    standalone worker passes ``worker_drain_seconds``; in-process workers finish what they hold)."""
    artifacts = artifacts or open_artifact_store(settings.artifacts_url, settings.resolved_artifacts_dir)
    favour_the_render_thread(settings)
    return Worker(
        store,
        runner,
        artifacts,
        build_planner(settings),
        pricing or WorkerPricing.from_settings(settings, storage_backend=artifacts.backend),
        biller=biller or Biller.from_settings(store, settings),
        worker_id=worker_id,
        lease_seconds=settings.lease_seconds,
        on_settled=on_settled,
        priorities=priorities,
        drain_seconds=drain_seconds,
        health=health,
    )
