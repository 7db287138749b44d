"""Jobs and results as JSON: pure functions from domain ``Job`` to the HTTP models.

An image's public id is ``{job_id}-{index}``; its URL is ``{base_url}v1/images/{id}``. The same
``rendercost`` cost object goes on image responses, job results and webhooks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from rendercost.api.schemas import CacheInfo, ImageRef, JobOut, RenderCostInfo, RewriteInfo, StageCost
from rendercost.domain.costs import Stage
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.money import usd_text
from rendercost.errors import NotFound

_STAGE_ORDER = {str(stage): i for i, stage in enumerate(Stage)}
_CACHES = ("result", "embedding", "rewrite")


def image_id(job_id: str, index: int) -> str:
    return f"{job_id}-{index}"


def parse_image_id(value: str) -> tuple[str, int]:
    """``"{job_id}-{index}"`` -> ``(job_id, index)``; ``NotFound`` for anything else."""
    job_id, sep, index = value.rpartition("-")
    if not sep or not job_id or not index.isdigit():
        raise NotFound(f"no image {value!r}", param="image_id")
    return job_id, int(index)


def image_url(base_url: str, job_id: str, index: int) -> str:
    return f"{base_url.rstrip('/')}/v1/images/{image_id(job_id, index)}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def result_images(job: Job) -> list[dict[str, Any]]:
    images = job.result.get("images", [])
    return [image for image in images if isinstance(image, dict)]


def _lines(job: Job) -> Iterable[dict[str, Any]]:
    for image in result_images(job):
        receipt = image.get("receipt") or {}
        yield from receipt.get("lines", [])


def rendercost_info(job: Job) -> RenderCostInfo:
    """Cost per stage summed over the job's images, exact, in pipeline order; cache outcomes."""
    seconds: dict[str, float] = {}
    costs: dict[str, Decimal] = {}
    hits: set[str] = set()
    for line in _lines(job):
        stage = str(line.get("stage", ""))
        seconds[stage] = seconds.get(stage, 0.0) + float(line.get("device_seconds", 0.0))
        costs[stage] = costs.get(stage, Decimal(0)) + Decimal(str(line.get("cost_usd", "0")))
        cache = (line.get("details") or {}).get("cache")
        if isinstance(cache, str):
            hits.add(cache)
    stages = [
        StageCost(stage=stage, device_seconds=seconds[stage], cost_usd=usd_text(costs[stage]))
        for stage in sorted(costs, key=lambda s: _STAGE_ORDER.get(s, len(_STAGE_ORDER)))
    ]
    total = job.result.get("cost_usd")
    cost = usd_text(Decimal(str(total)) if total is not None else sum(costs.values(), Decimal(0)))
    cache = CacheInfo(**{name: "hit" for name in _CACHES if name in hits})
    if "result" not in hits:
        cache.result = str(job.request.extra.get("result_cache", "off"))  # set by api.result_cache
    rewrite = job.request.extra.get("rewrite")
    if isinstance(rewrite, dict) and "cache" in rewrite:
        cache.rewrite = str(rewrite["cache"])  # set by api.rewrite
    return RenderCostInfo(
        job_id=job.id, cost_usd=cost, stages=stages, cache=cache, rewrite=rewrite_info(job.request.extra)
    )


def rewrite_info(extra: dict[str, Any]) -> RewriteInfo | None:
    """The ``rendercost.rewrite`` object from a request's rewrite record (None when not rewritten)."""
    record = extra.get("rewrite")
    if not isinstance(record, dict) or "provider" not in record:
        return None
    return RewriteInfo(
        provider=str(record["provider"]),
        model=str(record.get("model", "")),
        input_tokens=int(record.get("input_tokens", 0)),
        output_tokens=int(record.get("output_tokens", 0)),
        fallback=bool(record.get("fallback", False)),
        dropped=record.get("dropped"),
    )


def job_receipt(job: Job) -> dict[str, Any] | None:
    """Every cost line of the job and their exact total; None until it succeeded."""
    if job.state != JobState.SUCCEEDED:
        return None
    lines = list(_lines(job))
    total = sum((Decimal(str(line.get("cost_usd", "0"))) for line in lines), Decimal(0))
    return {"lines": lines, "total_usd": usd_text(total)}


def job_view(
    job: Job, base_url: str, *, queue_position: int | None = None, eta_seconds: float | None = None
) -> JobOut:
    spec = job.request.spec
    results = [
        ImageRef(
            id=image_id(job.id, int(image["index"])),
            index=int(image["index"]),
            url=image_url(base_url, job.id, int(image["index"])),
            media_type=str(image.get("media_type", "application/octet-stream")),
            seed=image.get("seed"),
            receipt=image.get("receipt"),
        )
        for image in result_images(job)
        if "index" in image
    ]
    succeeded = job.state == JobState.SUCCEEDED
    return JobOut(
        id=job.id,
        state=str(job.state),
        priority=str(job.priority),
        model=spec.model,
        preset=spec.preset,
        n=job.request.n,
        created_at=job.created_at.isoformat(),
        updated_at=job.updated_at.isoformat(),
        started_at=_iso(job.started_at),
        finished_at=_iso(job.finished_at),
        queue_position=queue_position,
        progress=1.0 if succeeded else job.progress,
        eta_seconds=eta_seconds,
        attempts=job.attempts,
        error=job.last_error if job.state == JobState.FAILED else None,
        webhook_url=job.webhook_url,
        request=job.request.to_dict(),
        results=results,
        receipt=job_receipt(job),
        rendercost=rendercost_info(job) if succeeded else None,
    )


def webhook_payload(job: Job, base_url: str) -> dict[str, Any]:
    return job_view(job, base_url).model_dump(mode="json")
