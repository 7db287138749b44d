"""What routes need, in one object on ``app.state.services``, and the authentication dependencies.

Render routes hand their request to ``services.admission`` (``admission.front_door``) in one thread
hop (``admit``); the other routes charge one request to the rate limits (``RateLimitedKey``). Every
blocking call (SQL, files) goes through ``anyio.to_thread``; nothing here blocks the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from rendercost.admission.catalog import ModelCatalog
from rendercost.admission.exact_cache import ExactCache
from rendercost.admission.front_door import Admission
from rendercost.admission.ratelimit import LimitRefused, RateLimiter
from rendercost.admission.routing import RoutingStore
from rendercost.admission.ticket import Admitted, Ticket
from rendercost.api.eta import EtaEstimator
from rendercost.api.events import JobEvents
from rendercost.api.middleware import RATE_LIMIT_STATE, TENANT_STATE
from rendercost.api.webhook_outbox import WebhookOutbox
from rendercost.artifacts.protocol import ArtifactStore
from rendercost.artifacts.sweeper import ArtifactIndex
from rendercost.auth.keys import ApiKey, KeyStore
from rendercost.errors import AuthenticationFailed
from rendercost.governance.alerts import AlertNotifier
from rendercost.governance.budgets import BudgetStore
from rendercost.observability.metrics import Metrics
from rendercost.queue.protocol import JobStore
from rendercost.settings import Settings

T = TypeVar("T")

ReadinessCheck = Callable[[], None]  # raises when not ready; runs in a thread


@dataclass(frozen=True)
class Governance:
    """Budgets, alerts and routing policies, and the engine reports and the FOCUS export read."""

    engine: Engine
    budgets: BudgetStore
    notifier: AlertNotifier
    routing: RoutingStore


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
    limiter: RateLimiter  # per-key and per-tenant limits (the admission's own)
    admission: Admission  # the front door of both render routes
    events: JobEvents = field(default_factory=JobEvents)  # wakes requests waiting for a job
    eta: EtaEstimator = field(default_factory=EtaEstimator)  # queue and run time estimates
    readiness: Mapping[str, ReadinessCheck] = field(default_factory=dict)  # /readyz checks by name
    webhook_secret: str = ""  # signs webhooks of keys without their own secret
    exact: ExactCache | None = None  # the exact-result cache (GET /v1/cached-images reads it)
    governance: Governance | None = None  # budgets, routing, reports, FOCUS export (None: off)
    artifact_index: ArtifactIndex | None = None  # which images the sweeper deleted (410 on fetch)


async def blocking(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a worker thread."""
    return await anyio.to_thread.run_sync(func, *args)


def services(request: Request) -> ApiServices:
    found = request.app.state.services
    assert isinstance(found, ApiServices)  # noqa: S101  create_app sets it before any request
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


async def rate_limited_key(request: Request, key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
    """``authenticate``, then charge one request to the request limits; 429 when over."""
    svc = services(request)
    decision = await blocking(svc.limiter.check, key.id, key.tenant)  # Redis I/O: off the loop
    if decision.headers:
        setattr(request.state, RATE_LIMIT_STATE, decision.headers)
    if decision.refused is not None:
        svc.metrics.rate_limited.labels(decision.scope or "unknown").inc()
        raise decision.refused
    return key


async def admit(request: Request, ticket: Ticket) -> Admitted:
    """``services.admission.admit(ticket)`` in one thread hop; the rate-limit headers it charged (or
    refused with) go on the response."""
    try:
        admitted = await blocking(services(request).admission.admit, ticket)
    except LimitRefused as refused:
        setattr(request.state, RATE_LIMIT_STATE, refused.headers)
        raise
    if admitted.rate_limit_headers:
        setattr(request.state, RATE_LIMIT_STATE, dict(admitted.rate_limit_headers))
    return admitted


Authenticated = Annotated[ApiKey, Depends(authenticate)]
RateLimitedKey = Annotated[ApiKey, Depends(rate_limited_key)]
