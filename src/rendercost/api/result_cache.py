"""The exact-result cache on the HTTP path: answer a repeat without queuing, and serve cached files.

``check_result_cache`` runs before enqueue: it reads ``Cache-Control`` (``no-cache``: skip the read,
still store; ``no-store``: neither) and returns the answer (its ledger lines already written) or None,
with a copy of the request whose ``cache`` policy records the mode (so the settle hook skips a
``no-store`` one) and, on a miss, the outcome for the response's ``rendercost.cache.result``:
``"miss"``, ``"bypass"`` or ``"off"``. A seed the client left
random counts as ``no-store``. The images API answers with a ``CacheHit`` (``ResultCacheGate.lookup``);
the jobs API with a job that succeeded without queuing (``ResultCacheGate.answer_as_job``).
``GET /v1/cached-images/{key}`` returns a cached file's bytes (hit responses point there).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

from fastapi import APIRouter, Request, Response

from rendercost.api.deps import ApiServices, RateLimitedKey, blocking, services
from rendercost.api.schemas import CacheInfo, ImageData, RenderCostInfo, StageCost
from rendercost.caches.http_result import CacheHit, ResultCacheGate
from rendercost.domain.controls import CacheMode, CacheOutcome, CachePolicy
from rendercost.domain.money import ZERO, usd_text
from rendercost.domain.specs import RenderRequest
from rendercost.errors import NotFound

router = APIRouter(tags=["images"])

T = TypeVar("T")


async def check_result_cache(
    svc: ApiServices,
    render_request: RenderRequest,
    lookup: Callable[[ResultCacheGate], T | None],
    *,
    cache_control: str | None,
    random_seed: bool = False,
) -> tuple[T | None, RenderRequest]:
    """``lookup(gate)`` (blocking; it writes the answer's ledger lines) when the request may read the
    cache; its answer, or None with the request to enqueue: a copy whose ``cache`` policy holds the
    mode and the outcome for ``rendercost.cache.result`` (``"miss"``, ``"bypass"`` or ``"off"``), so the
    job's views show it. On a hit the request comes back unchanged."""
    if random_seed:  # the client asked for a random seed: never read nor store
        cache_control = "no-store"
    answer, policy = await _check(svc, render_request, lookup, cache_control=cache_control)
    if answer is not None:
        return answer, render_request
    return None, replace(render_request, cache=policy)


async def _check(
    svc: ApiServices,
    render_request: RenderRequest,
    lookup: Callable[[ResultCacheGate], T | None],
    *,
    cache_control: str | None,
) -> tuple[T | None, CachePolicy]:
    gate = svc.result_cache
    if gate is None or not gate.enabled:
        return None, replace(render_request.cache, outcome=CacheOutcome.OFF)
    mode = CacheMode.from_header(cache_control)
    policy = CachePolicy(mode, CacheOutcome.BYPASS)
    if mode is CacheMode.NO_STORE:
        return None, policy
    if gate.keys(render_request) is None:
        return None, policy  # a random seed is never cached
    if mode is CacheMode.NO_CACHE:
        return None, policy
    answer = await blocking(lookup, gate)
    svc.metrics.observe_cache_lookup("result", answer is not None)
    if answer is None:
        return None, replace(policy, outcome=CacheOutcome.MISS)
    svc.metrics.observe_cache_hit("result")
    return answer, replace(policy, outcome=CacheOutcome.HIT)


def hit_info(hit: CacheHit) -> RenderCostInfo:
    """The ``rendercost`` object of a cache answer: every render stage at $0 (a prompt rewrite, when
    asked for, was paid)."""
    costs: dict[str, Decimal] = {}
    for receipt in hit.receipts:
        for line in receipt.lines:
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
    if not b64:
        return [
            ImageData(url=f"{base_url.rstrip('/')}/v1/cached-images/{entry.key}") for entry in hit.entries
        ]
    data = []
    for entry in hit.entries:
        raw = await blocking(svc.artifacts.get, entry.location)
        data.append(ImageData(b64_json=base64.b64encode(raw).decode()))
    return data


@router.get("/v1/cached-images/{key}", responses={200: {"content": {"image/png": {}}}, 404: {}})
async def get_cached_image(request: Request, key: str, _key: RateLimitedKey) -> Response:
    """The bytes of a cached image (the URL a cache answer gives)."""
    svc = services(request)
    gate = svc.result_cache
    entry = await blocking(gate.cache.get, key) if gate is not None else None
    if entry is None:
        raise NotFound(f"no cached image {key!r}", param="key")
    raw = await blocking(svc.artifacts.get, entry.location)
    return Response(content=raw, media_type=entry.media_type)
