"""Fooocus-API v1 generation: ``POST /v1/generation/text-to-image``, ``query-job`` and ``stop``.

A text-to-image call is an ordinary rendercost job, admitted once through ``services.admission``
(queue, batching, caches, budgets, ledger; ``DELETE /v1/jobs/{id}`` cancels it). Its answer, as
Fooocus-API gives it: ``async_process`` -> the job at once (poll ``query-job``); otherwise wait and
answer the images (``require_base64`` adds the bytes); ``Accept: image/png`` (or ``?accept=image/png``)
-> one image as PNG bytes. A full queue is 200 with ``QUEUE_IS_FULL`` in JSON and 409 in PNG mode.
Every answer carries ``X-Rendercost-Cost-USD`` and a ``rendercost`` object. The key is sent as
``X-API-KEY`` (rendercost's keys); a missing or wrong one is 403 (``fooocus_errors``).
"""

from __future__ import annotations

import base64
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from rendercost.admission.ticket import AnswerAs
from rendercost.api.controls import http_ticket
from rendercost.api.deps import ApiServices, Authenticated, RateLimitedKey, admit, blocking, services
from rendercost.api.destinations import check_destination
from rendercost.api.fooocus_errors import FooocusRoute
from rendercost.api.fooocus_schemas import (
    AsyncJobResponse,
    FooocusExtra,
    GeneratedImageResult,
    JobStage,
    StopResponse,
    TaskType,
    Text2ImgRequest,
)
from rendercost.api.fooocus_translate import API_NAME, FooocusAsk, to_render_request
from rendercost.api.fooocus_views import (
    COST_HEADER,
    async_view,
    failed_results,
    file_url,
    image_result,
    job_cost,
    queue_full_result,
)
from rendercost.api.views import result_images
from rendercost.api.waiting import wait_for_job
from rendercost.auth.keys import ApiKey
from rendercost.domain.jobs import Job, JobState
from rendercost.errors import InvalidRequest, NotFound, QueueFull

router = APIRouter(tags=["fooocus"], route_class=FooocusRoute)

PNG = "image/png"
GENERATE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "JSON (a list of images, or the async job), or PNG bytes with Accept: image/png"},
    403: {"description": "Missing or wrong X-API-KEY"},
    409: {"description": "Queue full (PNG mode)"},
    422: {"description": "Validation error"},
}


def _json(content: object, cost: str, status_code: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status_code, headers={COST_HEADER: cost})


def _extra(ask: FooocusAsk) -> FooocusExtra:
    return FooocusExtra(
        styles_applied=list(ask.styles_applied), substituted=list(ask.substituted), ignored=list(ask.ignored)
    )


async def image_results(
    svc: ApiServices, request: Request, job: Job, *, b64: bool, extra: FooocusExtra | None = None
) -> list[GeneratedImageResult]:
    """The job's images (base64 too when asked); a failed or cancelled job as one image-less result."""
    if job.state != JobState.SUCCEEDED:
        return failed_results(job, extra)
    base = str(request.base_url)
    results = []
    for image in result_images(job):
        data = None
        if b64:
            data = base64.b64encode(await blocking(svc.artifacts.get, image.artifact_key)).decode()
        url = file_url(base, svc.webhook_secret, job, image)
        results.append(image_result(job, image, url=url, b64=data, extra=extra))
    return results


def _queue_full(*, png: bool, async_process: bool) -> Response:
    if png:
        return Response(content="QUEUE_IS_FULL", status_code=409, headers={COST_HEADER: "0"})
    if async_process:
        answer = AsyncJobResponse(job_id="", job_stage=JobStage.ERROR, job_result=[queue_full_result()])
        return _json(answer.model_dump(mode="json"), "0")
    return _json([queue_full_result().model_dump(mode="json")], "0")


async def _png_answer(svc: ApiServices, job: Job) -> Response:
    images = result_images(job)
    if job.state != JobState.SUCCEEDED or not images:
        reason = failed_results(job)[0].finish_reason
        status = 400 if job.state == JobState.CANCELLED else 500
        return Response(content=str(reason), status_code=status, headers={COST_HEADER: job_cost(job)})
    raw = await blocking(svc.artifacts.get, images[0].artifact_key)
    return Response(content=raw, media_type=images[0].media_type, headers={COST_HEADER: job_cost(job)})


async def _check_webhook(request: Request, url: str | None) -> str | None:
    """The webhook URL to use (None: none asked), refused unless it is http(s) to an allowed destination
    (``api.destinations``: public addresses, or ``webhook_allowed_hosts``)."""
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest("webhook_url must be an http:// or https:// URL", param="webhook_url")
    allowed = services(request).settings.webhook_allowed_hosts
    await blocking(lambda: check_destination(url, allowed=allowed))
    return url


async def _admit(request: Request, key: ApiKey, ask: FooocusAsk, webhook_url: str | None) -> Job | None:
    """The admitted job (queued, or succeeded from the cache); None when the queue is full."""
    ticket = http_ticket(
        key,
        ask.request,
        request.headers,
        rewrite=None,
        random_seed=ask.random_seed,
        answer_as=AnswerAs.JOB,
        webhook_url=webhook_url,
    )
    try:
        admitted = await admit(request, ticket)
    except QueueFull:
        return None
    job = admitted.job
    assert job is not None  # noqa: S101  this door answers a cache hit as a job
    if webhook_url is not None:
        base = str(request.base_url)
        await blocking(lambda: services(request).outbox.add(job.id, key.tenant, key.id, webhook_url, base))
    return job


@router.post("/v1/generation/text-to-image", response_model=None, responses=GENERATE_RESPONSES)
async def text_to_image(
    request: Request,
    body: Text2ImgRequest,
    key: Authenticated,
    accept: Annotated[str | None, Header()] = None,
    accept_query: Annotated[str | None, Query(alias="accept")] = None,
) -> Response:
    """Text to image, as Fooocus-API's endpoint of the same name."""
    svc = services(request)
    png = (accept_query or accept or "").strip().lower() == PNG
    webhook_url = await _check_webhook(request, body.webhook_url)
    ask = await blocking(lambda: to_render_request(svc.catalog, svc.settings, body, png=png))
    job = await _admit(request, key, ask, webhook_url)
    if job is None:
        return _queue_full(png=png, async_process=body.async_process)
    extra = _extra(ask)
    if body.async_process and not png:  # a job answered from the cache has its images already
        results = None
        if job.state == JobState.SUCCEEDED:
            results = await image_results(svc, request, job, b64=body.require_base64, extra=extra)
        return _json(async_view(job, results, extra).model_dump(mode="json"), job_cost(job))
    timeout, poll = svc.settings.images_wait_timeout_s, svc.settings.job_poll_interval_s
    job = await wait_for_job(svc, job.id, key.tenant, timeout_s=timeout, poll_s=poll)
    if png:
        return await _png_answer(svc, job)
    results = await image_results(svc, request, job, b64=body.require_base64, extra=extra)
    return _json([result.model_dump(mode="json") for result in results], job_cost(job))


@router.get("/v1/generation/query-job", response_model=AsyncJobResponse)
async def query_job(
    request: Request,
    key: RateLimitedKey,
    job_id: Annotated[str, Query(max_length=64)],
    require_step_preview: bool = False,  # accepted; rendercost has no step previews
) -> Response:
    """The job's stage, progress and, once it succeeded, its images; 404 in Fooocus-API's shape."""
    svc = services(request)
    try:
        job = await blocking(lambda: svc.store.get(job_id, tenant=key.tenant))
    except NotFound:
        missing = AsyncJobResponse(
            job_type=TaskType.NOT_FOUND, job_stage=JobStage.ERROR, job_status="Job not found"
        )
        error = NotFound(f"no job {job_id!r}", param="job_id").to_dict()  # beside Fooocus' shape
        return _json({**missing.model_dump(mode="json"), "error": error}, "0", status_code=404)
    b64 = job.request.client.response_format == "b64_json"  # the job's require_base64
    results = await image_results(svc, request, job, b64=b64) if job.state == JobState.SUCCEEDED else None
    return _json(async_view(job, results).model_dump(mode="json"), job_cost(job))


@router.post("/v1/generation/stop", response_model=StopResponse)
async def stop(
    request: Request, key: RateLimitedKey, job_id: Annotated[str | None, Query(max_length=64)] = None
) -> StopResponse:
    """Fooocus-API stops the task it is running: this cancels the caller's running jobs made at this
    door (``job_id``, a rendercost extension, cancels that one job instead)."""
    svc = services(request)
    if job_id is not None:
        jobs = [await blocking(lambda: svc.store.get(job_id, tenant=key.tenant))]
    else:
        running = await blocking(
            lambda: svc.store.list_jobs(tenant=key.tenant, states=[JobState.RUNNING], limit=100)
        )
        jobs = [job for job in running if job.request.client.api == API_NAME]
    cancelled = []
    for job in jobs:
        done = await blocking(partial(svc.store.cancel, job.id, tenant=key.tenant))
        svc.events.notify(done.id, done)
        cancelled.append(done.id)
    return StopResponse(msg="success", cancelled=cancelled)
