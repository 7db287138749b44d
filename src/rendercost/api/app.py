"""The FastAPI application: ``create_app(services)`` and ``build_services(settings, ...)``.

Middleware, outermost first: request context (X-Request-ID, JSON log line, request metrics,
rate-limit headers), then the body size limit. Errors are mapped in ``api.errors`` only. The lifespan
runs the webhook dispatcher as a task on the loop. Nothing imports this package but the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine, text

from rendercost.admission.services import alert_counter, build_governance
from rendercost.api import result_cache as api_result_cache
from rendercost.api import routes_costs, routes_images, routes_jobs, routes_ops, routes_plan
from rendercost.api.deps import ApiServices, ReadinessCheck
from rendercost.api.errors import install_error_handlers
from rendercost.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from rendercost.api.ratelimit import RateLimiter
from rendercost.api.translate import ModelCatalog, SettingsModelCatalog
from rendercost.api.views import webhook_payload
from rendercost.api.webhooks import WebhookDispatcher, WebhookOutbox
from rendercost.artifacts.protocol import ArtifactStore
from rendercost.auth.keys import KeyStore, write_secret_file
from rendercost.caches.http_result import Fingerprint, ResultCacheGate
from rendercost.caches.result_cache import ResultCache
from rendercost.observability.metrics import Metrics
from rendercost.queue.protocol import JobStore
from rendercost.settings import Settings

API_TITLE = "rendercost"
WEBHOOK_SECRET_FILE = "webhook-secret"  # in data_dir, made on first start when no secret is set


def database_check(engine: Engine) -> ReadinessCheck:
    def check() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return check


def resolve_webhook_secret(settings: Settings) -> str:
    """``settings.webhook_secret``, else the one in ``data_dir/webhook-secret`` (made once, mode 0600)."""
    if settings.webhook_secret:
        return settings.webhook_secret
    path = Path(settings.data_dir) / WEBHOOK_SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    write_secret_file(path, secret)
    return secret


def build_services(
    settings: Settings,
    engine: Engine,
    store: JobStore,
    artifacts: ArtifactStore,
    *,
    catalog: ModelCatalog | None = None,
    metrics: Metrics | None = None,
    readiness: Mapping[str, ReadinessCheck] | None = None,
) -> ApiServices:
    """Services over one database engine; the database readiness check is always included."""
    metrics = metrics or Metrics()
    metrics.watch_queue(lambda: {(str(p), m): n for (p, m), n in store.depth().items()})
    return ApiServices(
        settings=settings,
        store=store,
        artifacts=artifacts,
        keys=KeyStore(engine),
        outbox=WebhookOutbox(engine),
        catalog=catalog or SettingsModelCatalog(settings),
        metrics=metrics,
        limiter=RateLimiter(settings),
        readiness={"database": database_check(engine), **(readiness or {})},
        webhook_secret=resolve_webhook_secret(settings),
        governance=build_governance(
            engine,
            alert_webhook_url=settings.budget_alert_webhook_url,
            alert_secret=resolve_webhook_secret(settings),
            on_alert=alert_counter(metrics.registry),
        ),
        result_cache=ResultCacheGate(
            ResultCache(engine, settings.result_cache_ttl_seconds),
            engine,
            artifacts,
            model_fingerprint(catalog),
        ),
    )


def model_fingerprint(catalog: ModelCatalog | None) -> Fingerprint:
    """The weights fingerprint of a model: the registry's when the catalog has one, else the name
    (a catalog without files, e.g. tests over a painter runner)."""
    registry = getattr(catalog, "registry", None)
    fingerprint = getattr(registry, "fingerprint", None)
    if callable(fingerprint):
        return lambda name: str(fingerprint(name))
    return lambda name: f"name:{name}"


def create_app(services: ApiServices, *, run_webhooks: bool = True) -> FastAPI:
    """The ASGI app over ``services``; ``run_webhooks=False`` leaves webhook delivery to another process."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        if run_webhooks:
            dispatcher = WebhookDispatcher(
                services.outbox,
                services.store,
                services.keys,
                webhook_payload,
                server_secret=services.webhook_secret,
                metrics=services.metrics,
                max_attempts=services.settings.webhook_max_attempts,
                timeout_s=services.settings.webhook_timeout_s,
            )
            task = asyncio.create_task(dispatcher.run(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title=API_TITLE,
        version="1",
        summary="Text-to-image with a receipt for every render (OpenAI-compatible images API).",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=services.settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=services.metrics)
    app.include_router(routes_images.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_costs.router)
    app.include_router(api_result_cache.router)
    app.include_router(routes_plan.router)
    return app
