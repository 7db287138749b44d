"""What routes need, in one object on ``app.state.services``, and the authentication dependencies.

Render routes hand their request to ``services.admission`` (``admission.front_door``) in one thread
hop (``admit``); the other routes charge one request to the rate limits (``RateLimitedKey``). Every
blocking call (SQL, files) goes through ``anyio.to_thread``; nothing here blocks the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs

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
from rendercost.auth.sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, SessionStore
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
    sessions: SessionStore = field(init=False, repr=False)  # web sign-in, over the keys' database

    def __post_init__(self) -> None:
        self.sessions = SessionStore(self.keys.engine)


async def blocking(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a worker thread."""
    return await anyio.to_thread.run_sync(func, *args)


def services(request: Request) -> ApiServices:
    found = request.app.state.services
    assert isinstance(found, ApiServices)  # noqa: S101  create_app sets it before any request
    return found


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rc_...`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key: `X-API-Key: rc_...`")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # methods that change nothing: no CSRF token needed
_FORM_TYPE = "application/x-www-form-urlencoded"


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> ApiKey:
    """The calling key, from the API key (Bearer or X-API-Key) or else the web session cookie; 401
    ``invalid_api_key`` when missing, unknown, revoked, expired or signed out. With the cookie, an
    unsafe method (POST, PUT, PATCH, DELETE) also needs the session's CSRF token (``X-CSRF-Token`` or a
    ``csrf_token`` form field), else 403 ``csrf_token_invalid``: a cross-site page can make the browser
    send the cookie, but it cannot read the token."""
    secret = bearer.credentials if bearer is not None else api_key
    cookie = request.cookies.get(SESSION_COOKIE)
    if secret:
        key = await blocking(services(request).keys.verify, secret.strip())
    elif cookie:
        key = await _session_key(request, cookie)
    else:
        raise AuthenticationFailed("missing API key: send Authorization: Bearer KEY or X-API-Key: KEY")
    setattr(request.state, TENANT_STATE, key.tenant)
    return key


def visible_tenant(key: ApiKey) -> str | None:
    """Whose jobs and images ``key`` may read: its own tenant's, or every tenant's (None) for an admin."""
    return None if key.admin else key.tenant


async def _session_key(request: Request, cookie: str) -> ApiKey:
    session = await blocking(services(request).sessions.resolve, cookie)
    if request.method not in SAFE_METHODS:
        session.check_csrf(request.headers.get(CSRF_HEADER) or await _form_token(request))
    return session.key


async def _form_token(request: Request) -> str | None:
    """The ``csrf_token`` field of a URL-encoded form body (the body stays readable by the route)."""
    if not request.headers.get("content-type", "").startswith(_FORM_TYPE):
        return None
    values = parse_qs((await request.body()).decode("utf-8", "replace")).get(CSRF_FIELD)
    return values[0] if values else None


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
