"""Operations: liveness, readiness, Prometheus metrics, and the queue's depth.

``/healthz`` says the process answers. ``/readyz`` runs every readiness check (database reachable,
model loadable) in a thread and answers 503 ``not_ready`` naming the failures. ``/metrics`` is the
Prometheus text format; it lists tenants, so with setting ``metrics_token`` it needs
``Authorization: Bearer <token>`` (401 ``invalid_metrics_token`` otherwise), and with ``metrics_bind``
it is not served here at all (404) but on that address (``cli/serve.py``). ``GET /v1/queue``
(authenticated) is the depth by priority and model.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from rendercost.api.deps import RateLimitedKey, blocking, services
from rendercost.api.errors import error_body
from rendercost.api.schemas import Health, QueueDepth, QueueOut

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> Response | Health:
    checks: dict[str, str] = {}
    for name, check in services(request).readiness.items():
        try:
            await blocking(check)
            checks[name] = "ok"
        except Exception as exc:  # a readiness probe reports failures, it never raises them
            checks[name] = f"{type(exc).__name__}: {exc}"[:500]
    failed = {name: outcome for name, outcome in checks.items() if outcome != "ok"}
    if failed:
        message = "not ready: " + "; ".join(f"{name}: {outcome}" for name, outcome in failed.items())
        body = error_body("not_ready", message, error_type="server_error")
        return JSONResponse({**body, "checks": checks}, status_code=503)
    return Health(status="ok", checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        401: {"description": "Missing or wrong metrics token"},
        404: {"description": "Served elsewhere"},
    },
)
async def metrics(request: Request) -> Response:
    svc = services(request)
    if svc.settings.metrics_bind is not None:
        body = error_body(
            "not_found",
            f"/metrics is served on {svc.settings.metrics_bind}",
            error_type="invalid_request_error",
        )
        return JSONResponse(body, status_code=404)
    token = svc.settings.metrics_token
    if token is not None and not _bearer_matches(request.headers.get("authorization", ""), token):
        body = error_body(
            "invalid_metrics_token",
            "/metrics needs Authorization: Bearer <metrics_token>",
            error_type="authentication_error",
        )
        return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    data = await blocking(svc.metrics.exposition)  # the queue-depth collector queries the database
    return Response(content=data, media_type="text/plain; version=0.0.4; charset=utf-8")


def _bearer_matches(header: str, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode())


@router.get("/v1/queue", response_model=QueueOut)
async def queue(request: Request, key: RateLimitedKey) -> QueueOut:
    svc = services(request)
    depth = await blocking(svc.store.depth)
    rows = [
        QueueDepth(priority=str(priority), model=model, queued=count)
        for (priority, model), count in sorted(depth.items())
    ]
    return QueueOut(
        total=sum(row.queued for row in rows), depth=rows, max_queue_depth=svc.settings.max_queue_depth
    )
