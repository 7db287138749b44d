"""`rendercost serve`: the HTTP API, the web pages and N in-process worker threads over one database.

``embedded_server(settings, workers=N)`` assembles everything (database + migrations, job store,
artifacts and their sweeper, metrics, the FastAPI app with the web pages (``web.app``), worker
threads) and is what tests start too. Worker threads run ``Worker.run_forever``; the model runs in them,
never on the event loop. On a fresh install (no API keys) an admin key is made, printed, and written to
``data_dir/admin-key`` (mode 0600).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rendercost.cli.common import cli_errors, load_settings
from rendercost.observability.logging import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy import Engine

    from rendercost.admission.catalog import ModelCatalog
    from rendercost.api.deps import ApiServices, ReadinessCheck
    from rendercost.artifacts.maintenance import MaintenanceThread
    from rendercost.auth.keys import CreatedKey
    from rendercost.domain.jobs import Job
    from rendercost.domain.runner import Runner
    from rendercost.execution.worker.loop import Worker
    from rendercost.observability.ops_server import OpsServer
    from rendercost.settings import Settings

ADMIN_KEY_FILE = "admin-key"  # in data_dir


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve)


class WorkerSignal(threading.Event):
    """The stop event given to in-process workers, which also wakes them early: ``kick()`` (a job was
    just queued here) makes a worker's idle ``wait`` return at once, so a request does not sit out the
    worker's poll interval. ``is_set()`` stays False until ``set()`` (stop)."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._kicked = False

    def set(self) -> None:
        super().set()
        with self._cond:
            self._cond.notify_all()

    def kick(self) -> None:
        with self._cond:
            self._kicked = True
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            if not self.is_set() and not self._kicked:
                self._cond.wait(timeout)
            self._kicked = False
        return self.is_set()


@dataclass
class EmbeddedServer:
    """A running assembly: the app to serve, and the worker threads behind it."""

    settings: Settings
    engine: Engine
    services: ApiServices
    app: FastAPI
    admin_key: CreatedKey | None  # made on this start (fresh install), else None
    admin_key_path: Path  # where the first admin key was written
    workers: list[Worker] = field(default_factory=list)
    stop: WorkerSignal = field(default_factory=WorkerSignal)
    threads: list[threading.Thread] = field(default_factory=list)
    maintenance: MaintenanceThread | None = None  # sweeps expired artifacts every interval

    def start_workers(self) -> None:
        for worker in self.workers:
            thread = threading.Thread(
                target=worker.run_forever, args=(self.stop,), name=f"worker-{worker.worker_id}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def stop_workers(self, timeout_s: float = 60.0) -> None:
        """Ask the workers to drain and wait for them."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout_s)


def _settled_hook(services: ApiServices) -> Callable[[str, Job | None, str | None], None]:
    """The workers' ``on_settled``: wake waiting requests, count costs, learn durations."""

    def on_settled(job_id: str, job: Job | None, error: str | None) -> None:
        # Record everything first, wake waiters last: a client that reads /metrics or repeats the
        # request right after its answer sees its own render counted and cached.
        if job is None:
            services.metrics.jobs_finished.labels("attempt_failed").inc()
        else:
            if services.exact is not None:
                services.exact.store(job)
            spec = job.request.spec
            images = job.result.images if job.result is not None else ()
            lines = [line for image in images for line in image.receipt.lines]
            services.metrics.observe_settled(job.tenant, spec.model, spec.preset, lines)
            services.metrics.jobs_finished.labels(str(job.state)).inc()
            services.eta.observe(job)
        services.events.notify(job_id, job)

    return on_settled


@contextmanager
def embedded_server(
    settings: Settings,
    *,
    workers: int = 1,
    runner: Runner | None = None,
    catalog: ModelCatalog | None = None,
    webhooks: bool = True,
) -> Iterator[EmbeddedServer]:
    """Assemble the server; start ``workers`` worker threads (sharing one runner, one call at a time).

    ``runner`` defaults to the diffusers runner over a ``ModelRegistry`` of the settings' models, and
    ``catalog`` (what the API checks before queueing) to that same registry. ``webhooks=False`` leaves
    webhook delivery to another process. On exit the workers drain and the database engine is disposed.
    """
    # The API (fastapi), the execution package (torch, diffusers) and the stores: imported only when a
    # server is assembled, so the other commands and ``--help`` start without them.
    from rendercost.admission.rewrite import PromptRewriter
    from rendercost.api.app import build_services
    from rendercost.artifacts.factory import open_artifact_store
    from rendercost.artifacts.maintenance import MaintenanceThread, build_maintenance
    from rendercost.db.engine import create_db_engine
    from rendercost.db.migrate import migrate
    from rendercost.execution.models.catalog import RegistryCatalog
    from rendercost.execution.models.registry import ModelRegistry
    from rendercost.execution.models.sentence_embedder import MiniLmEmbedder
    from rendercost.execution.pipeline.prompt_embeddings import encoder_from_settings
    from rendercost.execution.pipeline.runner import DiffusersRunner
    from rendercost.execution.worker.setup import LockedRunner, build_worker, default_worker_id, idle_metered
    from rendercost.observability.metrics import MeteredRunner, Metrics
    from rendercost.queue.sql_store import SqlJobStore
    from rendercost.web.app import create_web_app

    engine = create_db_engine(settings.resolved_database_url)
    stack = ExitStack()  # the device's idle meter: closed after the workers stop
    try:
        migrate(engine)
        store = SqlJobStore.from_settings(engine, settings)
        artifacts = open_artifact_store(settings.artifacts_url, settings.resolved_artifacts_dir)
        metrics = Metrics()
        if catalog is None or (runner is None and workers > 0):
            registry = ModelRegistry(settings)
            catalog = catalog or RegistryCatalog(registry, settings.default_model)
            runner = runner or DiffusersRunner(
                registry,
                settings,
                embeddings=encoder_from_settings(
                    settings, registry.fingerprint, partial(metrics.observe_cache_lookup, "embedding")
                ),
            )
        readiness: dict[str, ReadinessCheck] = {}
        if isinstance(catalog, RegistryCatalog):
            readiness["model"] = catalog.check_default_model
        stop = WorkerSignal()  # queuing a job kicks the in-process workers
        rewriter = PromptRewriter.from_settings(
            settings,
            engine,
            MiniLmEmbedder(torch_threads=settings.torch_threads),
            partial(metrics.observe_cache_lookup, "rewrite"),
        )
        services = build_services(
            settings,
            engine,
            store,
            artifacts,
            catalog=catalog,
            metrics=metrics,
            readiness=readiness,
            rewriter=rewriter,
            wake_workers=stop.kick,
        )
        admin_key_path = Path(settings.data_dir) / ADMIN_KEY_FILE
        server = EmbeddedServer(
            settings=settings,
            engine=engine,
            services=services,
            app=create_web_app(services, run_webhooks=webhooks),
            admin_key=services.keys.ensure_admin_key(admin_key_path),
            admin_key_path=admin_key_path,
            stop=stop,
        )
        if workers > 0:
            assert runner is not None  # noqa: S101  set above whenever workers > 0
            device_id = f"{default_worker_id()}-device"
            metered = stack.enter_context(idle_metered(settings, engine, runner, worker_id=device_id))
            shared = LockedRunner(MeteredRunner(metered, metrics))
            hook = _settled_hook(services)
            build = partial(build_worker, settings, store, shared, artifacts=artifacts, on_settled=hook)
            server.workers = [build(worker_id=default_worker_id()) for _ in range(workers)]
        server.maintenance = MaintenanceThread(
            build_maintenance(settings, engine, artifacts), settings.artifact_sweep_interval_s
        )
        server.start_workers()
        server.maintenance.start()
        try:
            yield server
        finally:
            server.maintenance.stop()
            server.stop_workers()
    finally:
        stack.close()
        engine.dispose()


def _announce(server: EmbeddedServer, host: str, port: int) -> None:
    typer.echo(
        f"rendercost serving on http://{host}:{port} (database: {server.settings.resolved_database_url})"
    )
    if server.admin_key is not None:
        typer.echo(f"Created the first API key (tenant {server.admin_key.key.tenant!r}, admin).")
        typer.echo(f"It is stored in {server.admin_key_path} (mode 0600) and shown only here:")
        typer.echo(server.admin_key.secret)
    elif server.admin_key_path.is_file():
        typer.echo(f"Admin API key: see {server.admin_key_path}")


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8000).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=0, help="In-process worker threads.")] = 1,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Run no worker here (render elsewhere).")
    ] = False,
) -> None:
    """Serve the HTTP API (OpenAI-compatible images, jobs, metrics) with in-process workers."""
    import uvicorn

    settings = load_settings(ctx, host=host, port=port)
    configure_logging()
    with cli_errors(), embedded_server(settings, workers=0 if no_worker else workers) as server:
        ops = _metrics_endpoint(server)
        _announce(server, settings.host, settings.port)
        config = uvicorn.Config(
            server.app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
        try:
            uvicorn.Server(config).run()
        finally:
            if ops is not None:
                ops.close()


def _metrics_endpoint(server: EmbeddedServer) -> OpsServer | None:
    """With ``metrics_bind`` set, /metrics on that address (the API's own answers 404)."""
    from rendercost.observability.ops_server import OpsServer

    bind = server.settings.metrics_bind
    if bind is None:
        return None
    ops = OpsServer(bind, server.services.metrics.registry).start()
    typer.echo(f"metrics on http://{bind}/metrics")
    return ops
