"""`rendercost worker`: render queued jobs from the settings' database until stopped.

Start one per device. Workers on any number of machines can share one PostgreSQL database
(``RENDERCOST_DATABASE_URL``); SQLite (the default) serves workers on one machine. SIGTERM or Ctrl-C
drains: the batch in hand and the jobs already started finish, jobs claimed but not started go back to
the queue, then the process exits 0. ``--burst`` renders until the queue is empty and exits. A
long-running worker also sweeps expired artifacts every ``artifact_sweep_interval_s``.
"""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from rendercost.cli.common import cli_errors, load_settings
from rendercost.observability.logging import configure_logging


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("worker")(worker)


def worker(
    ctx: typer.Context,
    burst: Annotated[bool, typer.Option("--burst", help="Exit once the queue is empty.")] = False,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="Name in the jobs table (default: host-pid-xxxx).")
    ] = None,
) -> None:
    """Render queued jobs: claim, batch, render, store, bill. Runs until SIGTERM (or --burst)."""
    settings = load_settings(ctx)
    configure_logging()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The execution package (torch, diffusers) and the stores: imported only when this command runs.
    from rendercost.admission.exact_cache import ExactCache, storing_hook
    from rendercost.artifacts.factory import open_artifact_store
    from rendercost.artifacts.maintenance import MaintenanceThread, build_maintenance
    from rendercost.caches.result_cache import ResultCache
    from rendercost.execution.models.registry import ModelRegistry
    from rendercost.execution.worker.setup import (
        build_runner,
        build_worker,
        default_worker_id,
        idle_metered,
        open_job_store,
    )

    worker_id = worker_id or default_worker_id()

    with cli_errors():
        registry = ModelRegistry(settings)  # one registry: the runner's models are the ones fingerprinted
        artifacts = open_artifact_store(settings.artifacts_url, settings.resolved_artifacts_dir)
        runner = build_runner(settings, registry)
        with (
            open_job_store(settings) as store,
            idle_metered(settings, store.engine, runner, worker_id=worker_id) as metered,
        ):
            cache = ResultCache(store.engine, settings.result_cache_ttl_seconds)
            gate = ExactCache(cache, artifacts, registry.fingerprint)
            the_worker = build_worker(
                settings,
                store,
                metered,
                worker_id=worker_id,
                artifacts=artifacts,
                on_settled=storing_hook(gate),  # results answer exact repeats over HTTP
            )
            interval = 0.0 if burst else settings.artifact_sweep_interval_s
            upkeep = MaintenanceThread(build_maintenance(settings, store.engine, artifacts), interval)
            upkeep.start()
            try:
                stats = the_worker.run_burst(stop) if burst else the_worker.run_forever(stop)
            finally:
                upkeep.stop()
    summary = {
        "worker_id": the_worker.worker_id,
        "jobs_succeeded": stats.jobs_succeeded,
        "jobs_failed": stats.jobs_failed,
        "batches": stats.batches,
        "images": stats.images,
        "device_seconds": round(stats.device_seconds, 6),
        "cost_usd": str(stats.cost),
        "batch_fill_ratio": round(stats.fill_ratio(settings.max_batch_size), 4),
    }
    typer.echo(json.dumps(summary))
