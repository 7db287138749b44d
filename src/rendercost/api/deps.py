"""What routes need, in one object on ``app.state.services``, and the dependencies that use it:
authentication (``Authorization: Bearer`` or ``X-API-Key``), rate limits and queue admission.

Every blocking call (SQL, files) goes through ``anyio.to_thread``; nothing here blocks the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rendercost.admission.routing import CLASS_HEADER, CLASS_TAG, resolve_class, route
from rendercost.admission.services import Governance
from rendercost.api.eta import EtaEstimator
from rendercost.api.events import JobEvents
from rendercost.api.middleware import RATE_LIMIT_STATE, TENANT_STATE
from rendercost.api.ratelimit import RateLimiter
from rendercost.api.translate import ModelCatalog
from rendercost.api.webhooks import WebhookOutbox
from rendercost.artifacts.protocol import ArtifactStore
from rendercost.auth.keys import ApiKey, KeyStore
from rendercost.caches.http_result import ResultCacheGate
from rendercost.domain.jobs import Job
from rendercost.domain.specs import RenderRequest
from rendercost.errors import AuthenticationFailed, QueueFull
from rendercost.llm_gateway.rewriter import PromptRewriter
from rendercost.observability.metrics import Metrics
from rendercost.queue.protocol import JobStore
from rendercost.settings import Settings

T = TypeVar("T")

ReadinessCheck = Callable[[], None]  # raises when not ready; runs in a thread


@dataclass
class ApiServices:
    """Everything the routes use; built by ``serve`` (or a test) and given to ``create_app``."""

    settings: Settings
    store: JobStore  # the job queue
    artifacts: ArtifactStore  # stored images
    keys: KeyStore  # API keys and tenants
    outbox: WebhookOutbox  # webhooks to deliver
    catalog: ModelCatalog  # model names, preset availability, LoRAs
    metrics: Metrics  # Prometheus families
    limiter: RateLimiter  # per-key and per-tenant limits
    events: JobEvents = field(default_factory=JobEvents)  # wakes requests waiting for a job
    eta: EtaEstimator = field(default_factory=EtaEstimator)  # queue and run time estimates
    readiness: Mapping[str, ReadinessCheck] = field(default_factory=dict)  # /readyz checks by name
    webhook_secret: str = ""  # signs webhooks of keys without their own secret
    on_enqueue: Callable[[], None] = lambda: None  # wakes in-process workers when a job is queued
    result_cache: ResultCacheGate | None = None  # exact repeats answered without queuing (None: off)
    rewriter: PromptRewriter | None = None  # prompt rewriting + semantic cache (None: rewrite ignored)
    governance: Governance | None = None  # budgets, routing, reports, FOCUS export (None: off)


async def blocking(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a worker thread."""
    return await anyio.to_thread.run_sync(func, *args)


def services(request: Request) -> ApiServices:
    found = request.app.state.services
    assert isinstance(found, ApiServices)
    return found


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rc_...`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key: `X-API-Key: rc_...`")


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> ApiKey:
    """The calling key; 401 ``invalid_api_key`` when missing, unknown or revoked."""
    secret = bearer.credentials if bearer is not None else api_key
    if not secret:
        raise AuthenticationFailed("missing API key: send Authorization: Bearer KEY or X-API-Key: KEY")
    key = await blocking(services(request).keys.verify, secret.strip())
    setattr(request.state, TENANT_STATE, key.tenant)
    return key


async def admit(request: Request, key: ApiKey, *, images: int = 0) -> None:
    """Charge the rate limits (``images`` counts against the images limits); 429 when over."""
    svc = services(request)
    decision = await svc.limiter.check(key.id, key.tenant, images=images)
    if decision.headers:
        setattr(request.state, RATE_LIMIT_STATE, decision.headers)
    if decision.refused is not None:
        svc.metrics.rate_limited.labels(decision.scope or "unknown").inc()
        raise decision.refused


async def rate_limited_key(request: Request, key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
    """``authenticate``, then charge one request to the request limits."""
    await admit(request, key)
    return key


def enqueue_if_room(
    svc: ApiServices,
    enqueue: Callable[[], Job],
    *,
    tenant: str | None = None,
    request: RenderRequest | None = None,
) -> Job:
    """Blocking: ``enqueue()`` unless ``max_queue_depth`` jobs are already queued (503 ``queue_full``
    with Retry-After); then wake the in-process workers. One thread hop for both queries. Given the
    ``tenant`` and ``request``, the budget gate reserves the request's estimated cost first (402
    ``budget_exceeded`` when a budget would be passed; nothing is queued then)."""
    queued = sum(svc.store.depth().values())
    if queued >= svc.settings.max_queue_depth:
        raise QueueFull(
            f"the queue holds {queued} jobs (limit {svc.settings.max_queue_depth}); retry later",
            retry_after=svc.settings.queue_full_retry_after_s,
        )
    gov = svc.governance
    job = gov.gate.admit(tenant, request, enqueue) if gov and tenant and request else enqueue()
    svc.on_enqueue()
    return job


async def route_request(
    request: Request, key: ApiKey, render_request: RenderRequest
) -> tuple[RenderRequest, ApiKey]:
    """``render_request`` with the preset and priority the tenant's routing policy gives its class
    (``X-Render-Class`` header, else the key's ``class`` tag), and ``key`` with that class among its
    tags (so the job's cost lines carry it); both unchanged when the request names no class."""
    gov = services(request).governance
    render_class = resolve_class(request.headers.get(CLASS_HEADER), key.tags)
    if gov is None or render_class is None:
        return render_request, key
    rules = await blocking(gov.routing.get, key.tenant)
    tagged = replace(key, tags={**key.tags, CLASS_TAG: render_class})
    return route(render_request, render_class, rules), tagged


Authenticated = Annotated[ApiKey, Depends(authenticate)]
RateLimitedKey = Annotated[ApiKey, Depends(rate_limited_key)]
