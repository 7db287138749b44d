"""OpenAI-compatible image generation, and image retrieval.

``POST /v1/images/generations`` queues one job and awaits it (``settings.images_wait_timeout_s``, then
504 ``timeout`` naming the job id), then answers in OpenAI's shape plus a ``rendercost`` cost object.
``GET /v1/images/{id}`` returns JSON metadata, or the bytes when ``Accept`` asks for an image.

An image's URL is ``GET /v1/images/{id}`` (key-checked) unless ``settings.artifacts_presign_seconds`` is
positive and the store can presign (S3): then it is a presigned GET of the stored object, valid that long
(the metadata says until when, ``url_expires_at``).
"""

from __future__ import annotations

import base64
import time
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from rendercost.admission.styles import check_style_names
from rendercost.admission.ticket import AnswerAs, CacheHit
from rendercost.api.controls import http_ticket
from rendercost.api.deps import Authenticated, RateLimitedKey, admit, blocking, services, visible_tenant
from rendercost.api.result_cache import hit_data, hit_info
from rendercost.api.schemas import ImageData, ImageGenerationRequest, ImageMeta, ImagesResponse
from rendercost.api.translate import (
    build_request,
    check_n,
    door_retention,
    openai_size,
    preset_for_quality,
    resolve_model,
    resolve_overrides,
    resolve_preset,
)
from rendercost.api.views import (
    image_url,
    parse_image_id,
    rendercost_info,
    result_images,
    revised_prompt,
    rewrite_info,
)
from rendercost.api.waiting import wait_for_job
from rendercost.artifacts.protocol import PresignedUrl
from rendercost.domain.controls import ClientInfo
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.results import ImageResult
from rendercost.domain.specs import RenderRequest, resolve_seed
from rendercost.errors import Conflict, NotFound, RenderFailed

router = APIRouter(tags=["images"])

ERROR_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "Invalid request"},
    401: {"description": "Missing or invalid API key"},
    429: {"description": "Rate limit exceeded"},
    503: {"description": "Queue full"},
}


def _to_request(request: Request, body: ImageGenerationRequest) -> RenderRequest:
    svc = services(request)
    n = check_n(svc.settings, body.n or 1)
    model = resolve_model(svc.catalog, svc.settings, body.model, openai=True)
    svc.catalog.check_prompt(model, body.prompt, param="prompt")
    preset = (
        resolve_preset(svc.catalog, model, body.preset)
        if body.preset
        else preset_for_quality(svc.catalog, model, body.quality)
    )
    return build_request(
        prompt=body.prompt,
        negative_prompt="",
        model=model,
        preset=preset,
        size=openai_size(svc.settings, body.size),
        seed=resolve_seed(body.seed, n),
        n=n,
        loras=(),
        output_format=body.output_format,
        priority="interactive",
        styles=(*((body.style,) if body.style else ()), *_checked_styles(body.styles)),
        client=ClientInfo("openai", body.user or None, body.response_format or "url"),
        retention=door_retention(
            svc.settings, body.retention_days, format_asked=body.output_format is not None
        ),
        overrides=resolve_overrides(svc.settings, body.steps, body.guidance_scale, body.sampler),
    )


def _checked_styles(names: list[str]) -> tuple[str, ...]:
    """The ``styles`` extension's names, refused when unknown (OpenAI's own ``style`` is free text)."""
    check_style_names(names)
    return tuple(names)


def _check_finished(job: Job) -> None:
    if job.state == JobState.FAILED:
        raise RenderFailed(f"job {job.id} failed: {job.last_error or 'unknown error'}")
    if job.state == JobState.CANCELLED:
        raise Conflict(f"job {job.id} was cancelled", code="job_cancelled")


@router.post(
    "/v1/images/generations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    responses=ERROR_RESPONSES,
)
async def create_images(request: Request, body: ImageGenerationRequest, key: Authenticated) -> ImagesResponse:
    """Render ``n`` images and answer when they are done (OpenAI's Images API)."""
    svc = services(request)
    render_request = await blocking(_to_request, request, body)
    ticket = http_ticket(
        key,
        render_request,
        request.headers,
        rewrite=body.rewrite,
        random_seed=body.seed is None,
        answer_as=AnswerAs.HIT,
    )
    admitted = await admit(request, ticket)
    if admitted.hit is not None:  # its lines, the rewrite's share included, are written
        return await _hit_response(
            request, admitted.hit, admitted.request, b64=body.response_format == "b64_json"
        )
    assert admitted.job is not None  # noqa: S101  this door asks for cache answers as jobs
    job = await wait_for_job(
        svc,
        admitted.job.id,
        key.tenant,
        timeout_s=svc.settings.images_wait_timeout_s,
        poll_s=svc.settings.job_poll_interval_s,
    )
    _check_finished(job)
    images = result_images(job)
    data: list[ImageData] = []
    if body.response_format == "b64_json":
        for image in images:
            raw = await blocking(svc.artifacts.get, image.artifact_key)
            data.append(ImageData(b64_json=base64.b64encode(raw).decode()))
    else:
        for image in images:
            link = await _presigned(request, image)
            data.append(
                ImageData(url=link.url if link else image_url(str(request.base_url), job.id, image.index))
            )
    for item in data:
        item.revised_prompt = revised_prompt(job.request)
    return ImagesResponse(created=int(time.time()), data=data, rendercost=rendercost_info(job))


async def _hit_response(
    request: Request, hit: CacheHit, render_request: RenderRequest, *, b64: bool
) -> ImagesResponse:
    """The answer from the cache: its files (URLs or base64), $0 stages, the rewrite paid."""
    answer = await hit_data(services(request), hit, str(request.base_url), b64=b64)
    for item in answer:
        item.revised_prompt = revised_prompt(render_request)
    info = hit_info(hit)
    rewrite = render_request.rewrite
    info.cache.rewrite = str(rewrite.cache) if rewrite is not None else "off"
    info.rewrite = rewrite_info(render_request)
    return ImagesResponse(created=int(time.time()), data=answer, rendercost=info)


async def _presigned(request: Request, image: ImageResult) -> PresignedUrl | None:
    """The presigned GET URL of ``image`` when presigning is on and the store has such URLs."""
    svc = services(request)
    seconds = svc.settings.artifacts_presign_seconds
    if seconds <= 0:
        return None
    return await blocking(svc.artifacts.presigned_url, image.artifact_key, seconds)


def _wants_bytes(accept: str | None) -> bool:
    return accept is not None and "image/" in accept


@router.get(
    "/v1/images/{image_id}",
    response_model=ImageMeta,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}, 404: {}, 410: {}},
)
async def get_image(
    request: Request,
    image_id: str,
    key: RateLimitedKey,
    accept: Annotated[str | None, Header()] = None,
) -> Response | ImageMeta:
    """An image's metadata (JSON), or its bytes with ``Accept: image/png`` (or any ``image/*``)."""
    svc = services(request)
    job_id, index = parse_image_id(image_id)
    job = await blocking(lambda: svc.store.get(job_id, tenant=visible_tenant(key)))
    image = job.result.image(index) if job.result is not None else None
    if image is None:
        raise NotFound(f"no image {image_id!r}", param="image_id")
    if svc.artifact_index is not None:  # an image whose retention ran out is 410, not 404
        await blocking(svc.artifact_index.check_not_deleted, job.id, index)
    if _wants_bytes(accept):
        raw = await blocking(svc.artifacts.get, image.artifact_key)
        return Response(content=raw, media_type=image.media_type)
    link = await _presigned(request, image)
    return ImageMeta(
        id=image_id,
        job_id=job.id,
        index=index,
        media_type=image.media_type,
        seed=image.seed,
        size_bytes=image.size_bytes,
        url=link.url if link else image_url(str(request.base_url), job.id, index),
        url_expires_at=link.expires_at.isoformat() if link else None,
        receipt=image.receipt.to_dict(),
    )
