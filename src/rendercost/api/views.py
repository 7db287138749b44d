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
from rendercost.domain.controls import CacheMode, CacheOutcome, RewriteRecord
from rendercost.domain.costs import Stage
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.money import usd_text
from rendercost.domain.results import ImageResult
from rendercost.domain.specs import RenderRequest
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


def result_images(job: Job) -> tuple[ImageResult, ...]:
    """The job's stored images in index order (none until it succeeded)."""
    return job.result.images if job.result is not None else ()


def _lines(job: Job) -> Iterable[dict[str, Any]]:
    for image in result_images(job):
        yield from image.receipt.to_dict()["lines"]


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
    total = job.result.cost if job.result is not None else sum(costs.values(), Decimal(0))
    cache = CacheInfo(**{name: "hit" for name in _CACHES if name in hits})
    if "result" not in hits:
        cache.result = str(job.request.cache.outcome)  # set by admission (exact cache step)
    if job.request.rewrite is not None:
        cache.rewrite = str(job.request.rewrite.cache)  # set by admission (rewrite step)
    return RenderCostInfo(
        job_id=job.id, cost_usd=usd_text(total), stages=stages, cache=cache, rewrite=rewrite_info(job.request)
    )


def revised_prompt(render_request: RenderRequest) -> str | None:
    """The prompt the rewrite made, when it is what renders (None: not rewritten, or dropped)."""
    record = render_request.rewrite
    return record.revised_prompt if record is not None and record.used else None


def rewrite_info(render_request: RenderRequest) -> RewriteInfo | None:
    """The ``rendercost.rewrite`` object from a request's rewrite record (None when not rewritten)."""
    record = render_request.rewrite
    if record is None:
        return None
    return RewriteInfo(
        provider=record.provider,
        model=record.model,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        fallback=record.fallback,
        dropped=record.dropped,
    )


def request_json(render_request: RenderRequest) -> dict[str, Any]:
    """A job's ``request`` as the jobs API shows it: the spec, count, priority, styles (and
    ``styles_applied`` when admission applied templates), and an
    ``extra`` object with the door (``api``, ``response_format``, ``user``), the ``rewrite`` record,
    ``cache: "no-store"``, the result cache's ``result_cache`` outcome and the ``retention_days``
    granted, each only when set."""
    data = render_request.to_dict()
    extra: dict[str, Any] = {}
    client = render_request.client
    if client.api:
        extra["api"] = client.api
    if client.response_format is not None:
        extra["response_format"] = client.response_format
    if client.user is not None:
        extra["user"] = client.user
    if render_request.rewrite is not None:
        extra["rewrite"] = _rewrite_json(render_request.rewrite)
    policy = render_request.cache
    if policy.mode is CacheMode.NO_STORE:
        extra["cache"] = str(policy.mode)
    if client.api and policy.outcome is not CacheOutcome.HIT:  # an HTTP door that enqueued the job
        extra["result_cache"] = str(policy.outcome)
    if render_request.retention.days is not None:
        extra["retention_days"] = render_request.retention.days
    shown = {"spec": data["spec"], "n": data["n"], "priority": data["priority"], "styles": data["styles"]}
    if render_request.styles_applied:  # the templates admission applied (admission.styles)
        shown["styles_applied"] = data["styles_applied"]
    return {**shown, "extra": extra}


def _rewrite_json(record: RewriteRecord) -> dict[str, Any]:
    data = record.to_dict()
    if record.dropped is None:
        del data["dropped"]  # present only when the rewrite was dropped
    return data


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
            id=image_id(job.id, image.index),
            index=image.index,
            url=image_url(base_url, job.id, image.index),
            media_type=image.media_type,
            seed=image.seed,
            receipt=image.receipt.to_dict(),
        )
        for image in result_images(job)
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
        request=request_json(job.request),
        results=results,
        receipt=job_receipt(job),
        rendercost=rendercost_info(job) if succeeded else None,
    )


def webhook_payload(job: Job, base_url: str) -> dict[str, Any]:
    return job_view(job, base_url).model_dump(mode="json")
