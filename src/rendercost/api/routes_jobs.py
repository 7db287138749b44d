"""The async jobs API: submit, read, list, cancel.

``POST /v1/jobs`` answers 202 with the queued job at once; the same ``Idempotency-Key`` (per tenant)
returns the same job, and 409 if it comes with a different request. A job of another tenant is 404.
An exact repeat of an earlier render (same seed, not ``Cache-Control: no-cache``/``no-store``) is not
queued: the job comes back already succeeded, holding the cached files, at $0 with the cost avoided.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from rendercost.admission.styles import check_style_names
from rendercost.admission.ticket import AnswerAs
from rendercost.api.controls import http_ticket
from rendercost.api.deps import Authenticated, RateLimitedKey, admit, blocking, services, visible_tenant
from rendercost.api.destinations import check_destination
from rendercost.api.schemas import JobList, JobOut, JobRequest
from rendercost.api.translate import (
    build_request,
    check_n,
    door_retention,
    resolve_loras,
    resolve_model,
    resolve_overrides,
    resolve_preset,
    resolve_size,
)
from rendercost.api.views import job_view
from rendercost.domain.controls import CachePolicy, ClientInfo
from rendercost.domain.jobs import JOB_ID_PREFIX, Job, JobState
from rendercost.domain.specs import RenderRequest, resolve_seed
from rendercost.errors import Conflict, InvalidRequest, PermissionDenied
from rendercost.queue.tables import MAX_IDEMPOTENCY_KEY_LENGTH

router = APIRouter(tags=["jobs"])

MAX_PAGE = 100


def _to_request(request: Request, body: JobRequest) -> RenderRequest:
    svc = services(request)
    n = check_n(svc.settings, body.n)
    model = resolve_model(svc.catalog, svc.settings, body.model, openai=False)
    svc.catalog.check_prompt(model, body.prompt, param="prompt")
    if body.negative_prompt:
        svc.catalog.check_prompt(model, body.negative_prompt, param="negative_prompt")
    check_style_names(body.styles)
    return build_request(
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        model=model,
        preset=resolve_preset(svc.catalog, model, body.preset),
        size=resolve_size(svc.settings, body.size),
        seed=resolve_seed(body.seed, n),
        n=n,
        loras=resolve_loras(svc.catalog, model, [(lora.name, lora.weight) for lora in body.loras]),
        output_format=body.output_format,
        priority=body.priority,
        styles=tuple(body.styles),
        client=ClientInfo("jobs", body.user or None),
        retention=door_retention(
            svc.settings, body.retention_days, format_asked=body.output_format is not None
        ),
        overrides=resolve_overrides(svc.settings, body.steps, body.guidance_scale, body.sampler),
    )


def _comparable(render_request: RenderRequest, seed_given: bool) -> RenderRequest:
    """What must match for an Idempotency-Key replay: the request as the client sent it."""
    spec = render_request.spec
    if render_request.rewrite is not None:  # a replay may be rewritten differently
        spec = replace(spec, prompt=render_request.rewrite.original_prompt)
    if not seed_given:
        spec = replace(spec, seed=0)
    # a replay may meet the cache the first missed
    return replace(render_request, spec=spec, cache=CachePolicy(), rewrite=None)


async def view(request: Request, job: Job) -> JobOut:
    """The job as JSON, with its queue position and ETA."""
    svc = services(request)
    position = await blocking(svc.store.queue_position, job.id) if job.state == JobState.QUEUED else None
    svc.eta.observe(job)
    return job_view(
        job, str(request.base_url), queue_position=position, eta_seconds=svc.eta.estimate(job, position)
    )


@router.post("/v1/jobs", response_model=JobOut, status_code=202)
async def submit_job(
    request: Request,
    body: JobRequest,
    key: Authenticated,  # admission charges the request and images limits (once)
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JobOut:
    """Queue a render and answer at once; poll GET /v1/jobs/{id} or wait for the webhook."""
    svc = services(request)
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters", param="Idempotency-Key"
        )
    render_request = await blocking(_to_request, request, body)
    if body.webhook_url:
        allowed = svc.settings.webhook_allowed_hosts
        await blocking(lambda: check_destination(body.webhook_url or "", allowed=allowed))
    seed_given = body.seed not in (None, -1)
    ticket = http_ticket(
        key,
        render_request,
        request.headers,
        rewrite=body.rewrite,
        random_seed=not seed_given,
        answer_as=AnswerAs.JOB,
        idempotency_key=idempotency_key,
        webhook_url=body.webhook_url,
    )
    admitted = await admit(request, ticket)
    job = admitted.job
    assert job is not None  # noqa: S101  the jobs API answers a cache hit as a job
    if _comparable(job.request, seed_given) != _comparable(admitted.request, seed_given):
        raise Conflict("this Idempotency-Key was used for a different request", code="idempotency_conflict")
    if body.webhook_url:
        base = str(request.base_url)
        await blocking(lambda: svc.outbox.add(job.id, key.tenant, key.id, body.webhook_url or "", base))
    return await view(request, job)


@router.get("/v1/jobs/{job_id}", response_model=JobOut)
async def get_job(request: Request, job_id: str, key: RateLimitedKey) -> JobOut:
    """State, queue position, progress, ETA, results and receipt."""
    svc = services(request)
    job = await blocking(lambda: svc.store.get(job_id, tenant=visible_tenant(key)))
    return await view(request, job)


def _parse_states(values: list[str]) -> list[JobState]:
    states: list[JobState] = []
    for value in values:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                states.append(JobState(part))
            except ValueError:
                valid = ", ".join(str(s) for s in JobState)
                raise InvalidRequest(f"unknown state {part!r}; one of: {valid}", param="state") from None
    return states


def _parse_before(value: str | None) -> datetime | str | None:
    """``before``: a ``next_before`` value (the last job id of a page) or an ISO 8601 time."""
    if value is None or value.startswith(JOB_ID_PREFIX):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        message = "before must be an ISO 8601 time (a next_before value)"
        raise InvalidRequest(message, param="before") from None
    if parsed.tzinfo is None:
        raise InvalidRequest("before must carry a time zone, e.g. +00:00", param="before")
    return parsed


@router.get("/v1/jobs", response_model=JobList)
async def list_jobs(
    request: Request,
    key: RateLimitedKey,
    state: Annotated[list[str], Query()] = [],  # noqa: B006 -- FastAPI copies defaults
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    before: Annotated[str | None, Query(max_length=64)] = None,
    tenant: Annotated[str | None, Query(max_length=128)] = None,
) -> JobList:
    """This tenant's jobs, newest first (an admin's: every tenant's, or ``tenant``'s); ``state`` filters
    (repeat or comma-separate); ``before`` pages (pass ``next_before``; an ISO 8601 time also works).
    ``tenant`` naming another tenant needs an admin key (403)."""
    svc = services(request)
    if tenant is not None and tenant != key.tenant and not key.admin:
        raise PermissionDenied("listing another tenant's jobs needs an admin key")
    owner = tenant if tenant is not None else visible_tenant(key)
    states = _parse_states(state)
    cursor = _parse_before(before)
    since, older_than = (cursor, None) if isinstance(cursor, datetime) else (None, cursor)
    found = await blocking(
        lambda: svc.store.list_jobs(
            tenant=owner, states=states, limit=limit + 1, before=since, older_than=older_than
        )
    )
    page = found[:limit]
    base = str(request.base_url)
    has_more = len(found) > limit
    return JobList(
        data=[job_view(job, base) for job in page],
        has_more=has_more,
        next_before=page[-1].id if has_more and page else None,
    )


@router.delete("/v1/jobs/{job_id}", response_model=JobOut)
async def cancel_job(request: Request, job_id: str, key: RateLimitedKey) -> JobOut:
    """Cancel a queued or running job; 409 if it already finished."""
    svc = services(request)
    job = await blocking(lambda: svc.store.cancel(job_id, tenant=visible_tenant(key)))
    svc.events.notify(job.id, job)
    return await view(request, job)
