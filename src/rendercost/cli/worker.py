"""`rendercost worker`: render queued jobs from the settings' database until stopped.

Start one per device (``--device cuda:N``), or let ``--devices all`` (or a comma list) supervise one
process per device and restart one that dies (``cli.worker_supervisor``). Workers on any number of
machines can share one PostgreSQL database (``RENDERCOST_DATABASE_URL``); SQLite (the default) serves
workers on one machine. ``--priorities batch`` claims only batch work (spot pools), ``interactive``
only interactive work; the default takes both.

SIGTERM or Ctrl-C drains: no more claims; jobs claimed but not started go back to the queue; the jobs
already started have ``worker_drain_seconds`` to finish, after which a batch still rendering is cut
short, the rest is released, and the device time spent on it is booked as ``interrupted`` ledger
lines. Then the process prints its summary and exits 0. ``--burst`` renders until the queue is empty
and exits. ``--metrics-bind HOST:PORT`` (setting ``worker_metrics_bind``) serves ``/metrics`` and
``/healthz`` (200 while the loop turns and the database answers, 503 while draining). A long-running
worker also sweeps expired artifacts every ``artifact_sweep_interval_s``.
"""

from __future__ import annotations

import json
import re
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from rendercost.cli.common import CliState, cli_errors, fail, load_settings
from rendercost.observability.logging import configure_logging

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

    from rendercost.domain.jobs import Job
    from rendercost.domain.specs import Priority
    from rendercost.execution.worker.health import WorkerHealth
    from rendercost.execution.worker.settle import SettledHook
    from rendercost.observability.metrics import Metrics
    from rendercost.observability.ops_server import Health
    from rendercost.settings import Settings

DEVICE_PATTERN = re.compile(r"^(cpu|mps|cuda(:[0-9]+)?)$")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("worker")(worker)


def worker(
    ctx: typer.Context,
    burst: Annotated[bool, typer.Option("--burst", help="Exit once the queue is empty.")] = False,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="Name in the jobs table (default: host-pid-xxxx).")
    ] = None,
    priorities: Annotated[
        str, typer.Option("--priorities", help="Priorities to claim: interactive,batch (spot pools: batch).")
    ] = "interactive,batch",
    device: Annotated[str | None, typer.Option("--device", help="Torch device: cpu, cuda, cuda:N.")] = None,
    devices: Annotated[
        str | None, typer.Option("--devices", help="'all' or cpu,cuda:1,...: one supervised process each.")
    ] = None,
    metrics_bind: Annotated[
        str | None, typer.Option("--metrics-bind", help="HOST:PORT for /metrics and /healthz.")
    ] = None,
) -> None:
    """Render queued jobs: claim, batch, render, store, bill. Runs until SIGTERM (or --burst)."""
    wanted = _parse_priorities(priorities)
    for name in filter(None, (device, *(devices or "").split(","))):
        if name.strip() != "all" and not DEVICE_PATTERN.match(name.strip()):
            fail(f"unknown device {name.strip()!r}: use cpu, cuda or cuda:N")
    if device is not None and devices is not None:
        fail("give --device (one worker) or --devices (one per device), not both")
    settings = load_settings(ctx, device=device, worker_metrics_bind=metrics_bind)
    configure_logging()
    stop = _stop_on_signals()
    if devices is not None:
        _supervise(ctx, settings, devices, stop, burst=burst, worker_id=worker_id, priorities=priorities)
        return
    summary = _run_worker(settings, stop, burst=burst, worker_id=worker_id, priorities=wanted)
    typer.echo(json.dumps(summary))


def _parse_priorities(text: str) -> frozenset[Priority]:
    from rendercost.queue.claims import parse_priorities

    try:
        return parse_priorities(text)
    except ValueError as exc:
        fail(f"--priorities: {exc}")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _supervise(
    ctx: typer.Context,
    settings: Settings,
    devices: str,
    stop: threading.Event,
    *,
    burst: bool,
    worker_id: str | None,
    priorities: str,
) -> None:
    from rendercost.cli.worker_supervisor import Supervisor, child_command, resolve_devices

    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    global_args: list[str] = []
    if state.config is not None:
        global_args += ["--config", str(state.config)]
    if state.data_dir is not None:
        global_args += ["--data-dir", str(state.data_dir)]
    worker_args = ["--priorities", priorities, *(["--burst"] if burst else [])]
    with cli_errors():
        found = resolve_devices(devices)

    def command(index: int, device: str) -> list[str]:
        extra = ["--worker-id", f"{worker_id}-{index}"] if worker_id else []
        return [*child_command(global_args, worker_args, settings.worker_metrics_bind)(index, device), *extra]

    typer.echo(json.dumps({"supervising": found}))
    Supervisor(found, command).run(stop)


def _run_worker(
    settings: Settings,
    stop: threading.Event,
    *,
    burst: bool,
    worker_id: str | None,
    priorities: frozenset[Priority],
) -> dict[str, object]:
    # The execution package (torch, diffusers) and the stores: imported only when this command runs.
    from rendercost.admission.exact_cache import ExactCache, storing_hook
    from rendercost.artifacts.factory import open_artifact_store
    from rendercost.artifacts.maintenance import MaintenanceThread, build_maintenance
    from rendercost.caches.result_cache import ResultCache
    from rendercost.execution.models.registry import ModelRegistry
    from rendercost.execution.worker.health import WorkerHealth
    from rendercost.execution.worker.setup import (
        build_runner,
        build_worker,
        default_worker_id,
        idle_metered,
        open_job_store,
    )
    from rendercost.observability.metrics import MeteredRunner, Metrics
    from rendercost.observability.ops_server import OpsServer

    worker_id = worker_id or default_worker_id()
    metrics = Metrics(component="worker")
    health = WorkerHealth()
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
                MeteredRunner(metered, metrics),
                worker_id=worker_id,
                artifacts=artifacts,
                on_settled=storing_hook(gate, _metrics_hook(metrics)),  # results answer exact repeats
                priorities=priorities,
                drain_seconds=settings.worker_drain_seconds,
                health=health,
            )
            metrics.watch_worker(worker_id, lambda: the_worker.held_count, lambda: health.is_draining)
            ops = None
            if settings.worker_metrics_bind is not None:
                check = _health_check(health, store.engine)
                ops = OpsServer(settings.worker_metrics_bind, metrics.registry, check).start()
            interval = 0.0 if burst else settings.artifact_sweep_interval_s
            upkeep = MaintenanceThread(build_maintenance(settings, store.engine, artifacts), interval)
            upkeep.start()
            try:
                stats = the_worker.run_burst(stop) if burst else the_worker.run_forever(stop)
            finally:
                upkeep.stop()
                if ops is not None:
                    ops.close()
    return {
        "worker_id": the_worker.worker_id,
        "jobs_succeeded": stats.jobs_succeeded,
        "jobs_failed": stats.jobs_failed,
        "batches": stats.batches,
        "images": stats.images,
        "device_seconds": round(stats.device_seconds, 6),
        "cost_usd": str(stats.cost),
        "batch_fill_ratio": round(stats.fill_ratio(settings.max_batch_size), 4),
    }


def _metrics_hook(metrics: Metrics) -> SettledHook:
    """Count each settled job's cost lines and outcome in the worker's own metrics."""

    def on_settled(job_id: str, job: Job | None, error: str | None) -> None:
        if job is None:
            metrics.jobs_finished.labels("attempt_failed").inc()
            return
        spec = job.request.spec
        images = job.result.images if job.result is not None else ()
        metrics.observe_settled(
            job.tenant, spec.model, spec.preset, [line for image in images for line in image.receipt.lines]
        )
        metrics.jobs_finished.labels(str(job.state)).inc()

    return on_settled


def _health_check(health: WorkerHealth, engine: Engine) -> Callable[[], Health]:
    """``/healthz``: the loop's own report, and the database answering ``SELECT 1``."""
    from sqlalchemy import text

    from rendercost.observability.ops_server import Health

    def check() -> Health:
        report = health.report()
        database = "ok"
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # the probe reports it, never raises it
            database = f"{type(exc).__name__}: {exc}"[:300]
        body = {
            "status": report.status,
            "database": database,
            "seconds_since_beat": report.seconds_since_beat,
        }
        return Health(report.healthy and database == "ok", body)

    return check
