"""The exact-result cache at the HTTP door: the shape of a receipt-only answer, and cached files.

Admission answers a repeat of the images API from the cache (``admission.front_door``, step 4) as a
``CacheHit``; ``hit_info`` and ``hit_data`` shape it as the response. ``GET /v1/cached-images/{key}``
returns a cached file's bytes (hit responses point there).
"""

from __future__ import annotations

import base64
from decimal import Decimal

from fastapi import APIRouter, Request, Response

from rendercost.admission.ticket import CacheHit
from rendercost.api.deps import ApiServices, RateLimitedKey, blocking, services
from rendercost.api.schemas import CacheInfo, ImageData, RenderCostInfo, StageCost
from rendercost.domain.money import ZERO, usd_text
from rendercost.errors import NotFound

router = APIRouter(tags=["images"])


def hit_info(hit: CacheHit) -> RenderCostInfo:
    """The ``rendercost`` object of a cache answer: every render stage at $0 (a prompt rewrite, when
    asked for, was paid)."""
    costs: dict[str, Decimal] = {}
    for image in hit.answer.result.images:
        for line in image.receipt.lines:
            costs[str(line.stage)] = costs.get(str(line.stage), ZERO) + line.cost
    return RenderCostInfo(
        job_id=hit.id,
        cost_usd=usd_text(sum(costs.values(), ZERO)),
        stages=[
            StageCost(stage=name, device_seconds=0.0, cost_usd=usd_text(cost)) for name, cost in costs.items()
        ],
        cache=CacheInfo(result="hit"),
    )


async def hit_data(svc: ApiServices, hit: CacheHit, base_url: str, *, b64: bool) -> list[ImageData]:
    """The cached files as base64, or as URLs: ``GET /v1/cached-images/{key}``, or presigned GETs of the
    stored objects when ``artifacts_presign_seconds`` is positive and the store can presign."""
    entries = hit.answer.entries
    if not b64:
        return [await _cached_url(svc, entry.key, entry.location, base_url) for entry in entries]
    data = []
    for entry in entries:
        raw = await blocking(svc.artifacts.get, entry.location)
        data.append(ImageData(b64_json=base64.b64encode(raw).decode()))
    return data


async def _cached_url(svc: ApiServices, key: str, location: str, base_url: str) -> ImageData:
    seconds = svc.settings.artifacts_presign_seconds
    link = await blocking(svc.artifacts.presigned_url, location, seconds) if seconds > 0 else None
    return ImageData(url=link.url if link else f"{base_url.rstrip('/')}/v1/cached-images/{key}")


@router.get("/v1/cached-images/{key}", responses={200: {"content": {"image/png": {}}}, 404: {}})
async def get_cached_image(request: Request, key: str, _key: RateLimitedKey) -> Response:
    """The bytes of a cached image (the URL a cache answer gives)."""
    svc = services(request)
    exact = svc.exact
    entry = await blocking(exact.cache.get, key) if exact is not None else None
    if entry is None:
        raise NotFound(f"no cached image {key!r}", param="key")
    raw = await blocking(svc.artifacts.get, entry.location)
    return Response(content=raw, media_type=entry.media_type)
