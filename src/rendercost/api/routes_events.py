"""``GET /v1/jobs/{id}/events``: one job's life as server-sent events, for any HTTP client.

Each event's ``data`` is one JSON object:

- ``queued``: ``{"id", "state": "queued", "queue_position": N}`` (1-based, among the claimable jobs
  ahead of it in claim order); sent first while the job waits, then whenever the position changes.
- ``progress``: ``{"id", "state": "running", "progress": 0..1, "images": n}`` (the fraction of the
  job's ``n`` images rendered, from the job's progress column); sent whenever it changes.
- ``done``: the job JSON exactly as ``GET /v1/jobs/{id}`` returns it (state ``succeeded``, ``failed``
  or ``cancelled``; results and receipt once succeeded). Always the last event: the stream ends.
- ``timeout``: ``{"id", "state"}`` when the stream's lifetime (``timeout_s``) runs out before the job
  ends; the job goes on: open the stream again to follow it.

Tenancy is that of ``GET /v1/jobs/{id}``: another tenant's job is 404 before any stream starts; an admin
key sees every tenant's jobs. The stream reads the store in a worker thread every ``POLL_S`` (woken
early when an in-process worker settles the job or a request cancels it), so jobs finished by workers
in other processes are seen too; sse-starlette cancels it when the client disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from rendercost.api.deps import ApiServices, RateLimitedKey, blocking, services, visible_tenant
from rendercost.api.routes_jobs import view
from rendercost.domain.jobs import TERMINAL_STATES, Job, JobState

router = APIRouter(tags=["jobs"])

POLL_S = 0.25  # how often the stream reads the store when nothing wakes it
PING_S = 15  # an SSE comment this often keeps proxies from closing a quiet stream
DEFAULT_LIFETIME_S = 600.0  # a stream ends with ``timeout`` after this long (``timeout_s`` narrows it)
MAX_LIFETIME_S = 3600.0


@dataclass(frozen=True)
class Snapshot:
    """What one read of the store saw: the job and, while it is queued, its position."""

    job: Job
    queue_position: int | None


def _read(svc: ApiServices, job_id: str, tenant: str | None) -> Snapshot:
    """One blocking read (a thread): the job (``NotFound`` for another tenant's) and its position."""
    job = svc.store.get(job_id, tenant=tenant)
    position = svc.store.queue_position(job_id) if job.state == JobState.QUEUED else None
    return Snapshot(job, position)


def _update_event(snapshot: Snapshot) -> ServerSentEvent | None:
    """The ``queued`` or ``progress`` event this snapshot calls for; None in any other state."""
    job = snapshot.job
    data: dict[str, str | int | float | None]
    if job.state == JobState.QUEUED:
        data = {"id": job.id, "state": str(job.state), "queue_position": snapshot.queue_position}
        return ServerSentEvent(data=json.dumps(data), event="queued")
    if job.state == JobState.RUNNING:
        data = {"id": job.id, "state": str(job.state), "progress": job.progress, "images": job.request.n}
        return ServerSentEvent(data=json.dumps(data), event="progress")
    return None


async def _job_stream(
    request: Request, svc: ApiServices, first: Snapshot, tenant: str | None, lifetime_s: float
) -> AsyncIterator[ServerSentEvent]:
    """Events until the job ends (``done``), the lifetime runs out (``timeout``) or the client leaves."""
    deadline = time.monotonic() + lifetime_s
    snapshot: Snapshot | None = first
    last_sent: str | None = None
    job_id = first.job.id
    while True:
        with svc.events.watch(job_id) as watch:
            if snapshot is None:
                snapshot = await blocking(_read, svc, job_id, tenant)
            job = snapshot.job
            if job.state in TERMINAL_STATES:
                done = await view(request, job)
                yield ServerSentEvent(data=done.model_dump_json(), event="done")
                return
            update = _update_event(snapshot)
            if update is not None and update.data != last_sent:
                last_sent = update.data
                yield update
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                yield ServerSentEvent(
                    data=json.dumps({"id": job_id, "state": str(job.state)}), event="timeout"
                )
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.changed.wait(), timeout=min(POLL_S, remaining))
            snapshot = None


@router.get(
    "/v1/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "queued, progress, done"}},
)
async def job_events(
    request: Request,
    job_id: str,
    key: RateLimitedKey,
    timeout_s: Annotated[float, Query(gt=0, le=MAX_LIFETIME_S)] = DEFAULT_LIFETIME_S,
) -> EventSourceResponse:
    """The job's events: ``queued`` (position), ``progress`` (fraction), then ``done`` (the job JSON,
    receipt included) and the stream ends; ``timeout`` ends it after ``timeout_s`` seconds instead."""
    svc = services(request)
    tenant = visible_tenant(key)
    first = await blocking(_read, svc, job_id, tenant)  # 404 here, before the stream starts
    return EventSourceResponse(
        _job_stream(request, svc, first, tenant, timeout_s),
        ping=PING_S,  # sse-starlette sets Cache-Control: no-store and cancels the stream on disconnect
    )
