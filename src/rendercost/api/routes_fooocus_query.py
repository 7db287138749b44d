"""Fooocus-API v1 queries: ``job-queue``, ``job-history``, ``engines/all-models``, ``engines/styles``,
``/ping`` and the image files (``/files/{date}/{name}``).

The queue and history are the caller's tenant's rendercost jobs (made at any door), newest first;
``all-models`` lists the configured models and the LoRA files of the LoRA folders; ``styles`` is
rendercost's style set (``admission.styles``). ``/ping`` and ``/files`` need no key (a file name
carries its own signature, ``fooocus_views.file_name``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from rendercost.admission.styles import shipped_styles
from rendercost.api.deps import RateLimitedKey, blocking, services
from rendercost.api.fooocus_errors import FooocusRoute
from rendercost.api.fooocus_schemas import (
    AllModelNamesResponse,
    JobHistoryInfo,
    JobHistoryResponse,
    JobQueueInfo,
)
from rendercost.api.fooocus_views import parse_file_name
from rendercost.domain.jobs import TERMINAL_STATES, JobState
from rendercost.errors import NotFound
from rendercost.settings import Settings

router = APIRouter(tags=["fooocus"], route_class=FooocusRoute)

LORA_SUFFIX = ".safetensors"
MAX_LISTED = 1000  # jobs one history or queue answer reads at most
_OPEN = [JobState.QUEUED, JobState.RUNNING]
_DONE = sorted(TERMINAL_STATES)


@router.get("/ping", response_model=str)
async def ping() -> str:
    """Fooocus-API's liveness probe: ``"pong"`` (a JSON string, as there)."""
    return "pong"


@router.get("/v1/generation/job-queue", response_model=JobQueueInfo)
async def job_queue(request: Request, key: RateLimitedKey) -> JobQueueInfo:
    """The caller's queued and running jobs, finished jobs and the newest job id."""
    store = services(request).store
    open_jobs = await blocking(lambda: store.list_jobs(tenant=key.tenant, states=_OPEN, limit=MAX_LISTED))
    done = await blocking(lambda: store.list_jobs(tenant=key.tenant, states=_DONE, limit=MAX_LISTED))
    newest = await blocking(lambda: store.list_jobs(tenant=key.tenant, limit=1))
    return JobQueueInfo(
        running_size=len(open_jobs), finished_size=len(done), last_job_id=newest[0].id if newest else None
    )


@router.get("/v1/generation/job-history", response_model=JobHistoryResponse)
async def job_history(
    request: Request,
    key: RateLimitedKey,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=0, le=100)] = 0,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobHistoryResponse:
    """Queued and running jobs (``queue``) and a page of finished ones (``history``), newest first;
    ``job_id`` narrows both to that job."""
    store = services(request).store
    if job_id is not None:
        job = await blocking(lambda: store.get(job_id, tenant=key.tenant))
        info = JobHistoryInfo(job_id=job.id, is_finished=job.state in TERMINAL_STATES)
        return JobHistoryResponse(history=[info]) if info.is_finished else JobHistoryResponse(queue=[info])
    limit = min((page + 1) * page_size, MAX_LISTED)
    open_jobs = await blocking(lambda: store.list_jobs(tenant=key.tenant, states=_OPEN, limit=MAX_LISTED))
    done = await blocking(lambda: store.list_jobs(tenant=key.tenant, states=_DONE, limit=limit))
    return JobHistoryResponse(
        queue=[JobHistoryInfo(job_id=job.id, is_finished=False) for job in open_jobs],
        history=[JobHistoryInfo(job_id=job.id, is_finished=True) for job in done[page * page_size :]],
    )


def lora_files(settings: Settings) -> list[str]:
    """File names of the LoRAs in the configured LoRA folders, sorted, each once."""
    folders = [Path(folder) for folder in settings.resolved_lora_dirs]
    return sorted({path.name for folder in folders for path in folder.glob(f"*{LORA_SUFFIX}")})


@router.get("/v1/engines/all-models", response_model=AllModelNamesResponse)
async def all_models(request: Request, key: RateLimitedKey) -> AllModelNamesResponse:
    """Configured model names (send one as ``base_model_name``) and LoRA file names."""
    svc = services(request)
    models = sorted(await blocking(svc.catalog.names))
    loras = await blocking(lora_files, svc.settings)
    return AllModelNamesResponse(model_filenames=models, lora_filenames=loras)


@router.get("/v1/engines/styles", response_model=list[str])
async def styles(key: RateLimitedKey) -> list[str]:
    """Every style name ``style_selections`` accepts."""
    return shipped_styles().names()


@router.get(
    "/files/{date}/{name}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}, 404: {}},
)
async def image_file(request: Request, date: str, name: str) -> Response:
    """An image a Fooocus-API answer linked to (no key: the name is signed)."""
    svc = services(request)
    job_id, index = parse_file_name(svc.webhook_secret, name)
    job = await blocking(lambda: svc.store.get(job_id))
    image = job.result.image(index) if job.result is not None else None
    if image is None or job.created_at.date().isoformat() != date:
        raise NotFound(f"no file {date}/{name}", param="name")
    raw = await blocking(svc.artifacts.get, image.artifact_key)
    return Response(content=raw, media_type=image.media_type)
