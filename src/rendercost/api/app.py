"""The FastAPI application: ``create_app(services)`` and ``build_services(settings, ...)``.

Middleware, outermost first: request context (X-Request-ID, JSON log line, request metrics,
rate-limit headers), then the body size limit. Errors are mapped in ``api.errors`` only. The lifespan
runs the webhook dispatcher as a task on the loop. Nothing imports this package but the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine, text

from rendercost.admission.budget import BudgetGuard
from rendercost.admission.catalog import ModelCatalog
from rendercost.admission.estimate import CostEstimator
from rendercost.admission.exact_cache import ExactCache, Fingerprint
from rendercost.admission.front_door import Admission, AdmissionHooks, QueueLimit
from rendercost.admission.lifecycle import StoragePolicy
from rendercost.admission.ratelimit import RateLimiter
from rendercost.admission.rewrite import PromptRewriter
from rendercost.admission.routing import RoutingStore
from rendercost.api import result_cache as api_result_cache
from rendercost.api import (
    routes_admin_keys,
    routes_costs,
    routes_estimate,
    routes_events,
    routes_fooocus,
    routes_fooocus_query,
    routes_images,
    routes_jobs,
    routes_models,
    routes_ops,
    routes_plan,
    routes_session,
    routes_styles,
    routes_webhooks,
)
from rendercost.api.deps import ApiServices, Governance, ReadinessCheck
from rendercost.api.docs_offline import install_docs
from rendercost.api.errors import install_error_handlers
from rendercost.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from rendercost.api.views import webhook_payload
from rendercost.api.webhook_outbox import WebhookOutbox
from rendercost.api.webhooks import WebhookDispatcher
from rendercost.artifacts.protocol import ArtifactStore
from rendercost.artifacts.sweeper import ArtifactIndex
from rendercost.auth.keys import KeyStore
from rendercost.auth.signing import SigningSecrets
from rendercost.caches.result_cache import ResultCache
from rendercost.execution.models.catalog import SettingsModelCatalog
from rendercost.governance.alerts import Alert, AlertNotifier
from rendercost.governance.budgets import BudgetStore
from rendercost.governance.tables import GLOBAL_SCOPE
from rendercost.ledger.billing import Biller
from rendercost.llm_gateway.gateway import Gateway
from rendercost.observability.metrics import Metrics
from rendercost.queue.sql_store import SqlJobStore
from rendercost.settings import Settings

API_TITLE = "rendercost"


def database_check(engine: Engine) -> ReadinessCheck:
    def check() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return check


def resolve_webhook_secret(settings: Settings, engine: Engine) -> str:
    """``settings.webhook_secret``, else the deployment's secret in the database (made once, atomically,
    so every server on the database signs with the same one)."""
    return settings.webhook_secret or SigningSecrets(engine).ensure()


def build_services(
    settings: Settings,
    engine: Engine,
    store: SqlJobStore,
    artifacts: ArtifactStore,
    *,
    catalog: ModelCatalog | None = None,
    metrics: Metrics | None = None,
    readiness: Mapping[str, ReadinessCheck] | None = None,
    rewriter: PromptRewriter | None = None,
    wake_workers: Callable[[], None] = lambda: None,
) -> ApiServices:
    """Services over one database engine, the one ``Admission`` of this process among them; the
    database readiness check is always included. ``rewriter`` defaults to the builtin rewrite;
    ``wake_workers`` is called when a job is queued (in-process workers look at once)."""
    metrics = metrics or Metrics()
    metrics.watch_queue(lambda: {(str(p), m): n for (p, m), n in store.depth().items()})
    catalog = catalog or SettingsModelCatalog(settings)
    governance = build_governance(engine, settings, metrics)
    limiter = RateLimiter.from_settings(settings, metrics.registry)
    exact = ExactCache(
        ResultCache(engine, settings.result_cache_ttl_seconds), artifacts, model_fingerprint(catalog)
    )
    admission = Admission(
        store=store,
        biller=Biller.from_settings(store, settings),
        catalog=catalog,
        limiter=limiter,
        routing=governance.routing,
        exact=exact,
        budget=BudgetGuard(governance.budgets, CostEstimator(engine), governance.notifier),
        queue_limit=QueueLimit(settings.max_queue_depth, settings.queue_full_retry_after_s),
        wake_workers=wake_workers,
        hooks=admission_hooks(metrics),
        rewriter=rewriter or PromptRewriter(Gateway([])),
        storage=StoragePolicy.from_settings(settings),
    )
    return ApiServices(
        settings=settings,
        store=store,
        artifacts=artifacts,
        keys=KeyStore(engine),
        outbox=WebhookOutbox.from_settings(engine, settings),
        catalog=catalog,
        metrics=metrics,
        limiter=limiter,
        admission=admission,
        readiness={"database": database_check(engine), **(readiness or {})},
        webhook_secret=resolve_webhook_secret(settings, engine),
        exact=exact,
        governance=governance,
        artifact_index=ArtifactIndex(engine),
    )


def build_governance(engine: Engine, settings: Settings, metrics: Metrics) -> Governance:
    """Budgets, their alerts (counted in ``rendercost_budget_alerts_total``) and routing policies."""
    budgets = BudgetStore(engine)
    notifier = AlertNotifier(
        budgets,
        webhook_url=settings.budget_alert_webhook_url,
        secret=resolve_webhook_secret(settings, engine),
        on_alert=alert_counter(metrics.registry),
    )
    return Governance(engine=engine, budgets=budgets, notifier=notifier, routing=RoutingStore(engine))


def admission_hooks(metrics: Metrics) -> AdmissionHooks:
    """Admission's reports as Prometheus counts: refusals by limit, result-cache lookups and hits."""

    def result_lookup(hit: bool) -> None:
        metrics.observe_cache_lookup("result", hit)
        if hit:
            metrics.observe_cache_hit("result")

    return AdmissionHooks(
        on_rate_limited=lambda scope: metrics.rate_limited.labels(scope).inc(),
        on_result_lookup=result_lookup,
    )


def alert_counter(registry: CollectorRegistry) -> Callable[[Alert], None]:
    """An ``on_alert`` that counts alerts in ``rendercost_budget_alerts_total{scope,threshold}``."""
    counter = Counter(
        "rendercost_budget_alerts",
        "Budget alerts fired, by scope and threshold.",
        ["scope", "threshold"],
        registry=registry,
    )

    def count(alert: Alert) -> None:
        counter.labels("global" if alert.scope == GLOBAL_SCOPE else alert.scope, alert.threshold).inc()

    return count


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
                timeout_s=services.settings.webhook_timeout_s,
                allowed_hosts=services.settings.webhook_allowed_hosts,
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
        docs_url=None,  # /docs and /redoc come from install_docs, over vendored files (no CDN)
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=services.settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=services.metrics)
    app.include_router(routes_images.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_events.router)
    app.include_router(routes_admin_keys.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_costs.router)
    app.include_router(api_result_cache.router)
    app.include_router(routes_plan.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_fooocus.router)
    app.include_router(routes_fooocus_query.router)
    app.include_router(routes_models.router)
    app.include_router(routes_session.router)
    app.include_router(routes_estimate.router)
    app.include_router(routes_styles.router)
    install_docs(app, API_TITLE)
    return app
