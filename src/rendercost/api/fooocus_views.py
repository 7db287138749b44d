"""Jobs as Fooocus-API answers: pure functions from a domain ``Job`` to its response models.

Stages: queued -> ``WAITING``, running -> ``RUNNING``, succeeded -> ``SUCCESS``, failed or cancelled
-> ``ERROR`` (finish reasons ``ERROR`` / ``USER_CANCEL``). Image URLs are Fooocus-API's
``/files/{date}/{name}``; the name carries an HMAC of the image id (``file_name``), so the URL works
without an API key, as Fooocus-API's static files do, and cannot be guessed.
"""

from __future__ import annotations

import hashlib
import hmac

from rendercost.api.fooocus_schemas import (
    AsyncJobResponse,
    FinishReason,
    FooocusExtra,
    GeneratedImageResult,
    JobStage,
)
from rendercost.api.views import image_id, rendercost_info
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.money import ZERO, usd_text
from rendercost.domain.results import ImageResult
from rendercost.domain.specs import OutputFormat
from rendercost.errors import NotFound

COST_HEADER = "X-Rendercost-Cost-USD"
_SIGNATURE_CHARS = 24

STAGE_OF: dict[JobState, JobStage] = {
    JobState.QUEUED: JobStage.WAITING,
    JobState.RUNNING: JobStage.RUNNING,
    JobState.SUCCEEDED: JobStage.SUCCESS,
    JobState.FAILED: JobStage.ERROR,
    JobState.CANCELLED: JobStage.ERROR,
}
STATUS_OF: dict[JobState, str] = {
    JobState.QUEUED: "Waiting",
    JobState.RUNNING: "Running",
    JobState.SUCCEEDED: "Finished",
    JobState.FAILED: "Error",
    JobState.CANCELLED: "Cancelled",
}


def job_cost(job: Job) -> str:
    """``X-Rendercost-Cost-USD``: what the job is billed so far (0 until it succeeded)."""
    return usd_text(job.result.cost if job.result is not None else ZERO)


def _signature(secret: str, public_id: str) -> str:
    return hmac.new(secret.encode(), public_id.encode(), hashlib.sha256).hexdigest()[:_SIGNATURE_CHARS]


def file_name(secret: str, job_id: str, image: ImageResult) -> str:
    """``{job_id}-{index}-{signature}.{suffix}``."""
    public_id = image_id(job_id, image.index)
    suffix = OutputFormat.from_media_type(image.media_type).suffix
    return f"{public_id}-{_signature(secret, public_id)}.{suffix}"


def file_url(base_url: str, secret: str, job: Job, image: ImageResult) -> str:
    date = job.created_at.date().isoformat()
    return f"{base_url.rstrip('/')}/files/{date}/{file_name(secret, job.id, image)}"


def parse_file_name(secret: str, name: str) -> tuple[str, int]:
    """``(job_id, index)`` of a name ``file_name`` made; ``NotFound`` for any other name."""
    stem = name.rpartition(".")[0]
    public_id, _sep, signature = stem.rpartition("-")
    job_id, _sep, index = public_id.rpartition("-")
    valid = hmac.compare_digest(signature, _signature(secret, public_id)) if public_id else False
    if not valid or not job_id or not index.isdigit():
        raise NotFound(f"no file {name!r}", param="name")
    return job_id, int(index)


def image_result(
    job: Job, image: ImageResult, *, url: str, b64: str | None, extra: FooocusExtra | None = None
) -> GeneratedImageResult:
    """One image of a succeeded job, its receipt in ``rendercost``."""
    info = extra.model_copy() if extra is not None else FooocusExtra()
    info.job_id = job.id
    info.cost_usd = usd_text(image.receipt.total)
    info.receipt = image.receipt.to_dict()
    return GeneratedImageResult(
        base64=b64, url=url, seed=str(image.seed), finish_reason=FinishReason.SUCCESS, rendercost=info
    )


def failed_results(job: Job, extra: FooocusExtra | None = None) -> list[GeneratedImageResult]:
    """A failed or cancelled job as Fooocus-API answers it: one result without an image."""
    reason = FinishReason.USER_CANCEL if job.state == JobState.CANCELLED else FinishReason.ERROR
    info = (extra or FooocusExtra()).model_copy(update={"job_id": job.id, "cost_usd": job_cost(job)})
    return [GeneratedImageResult(base64=None, url=None, seed="", finish_reason=reason, rendercost=info)]


def queue_full_result() -> GeneratedImageResult:
    return GeneratedImageResult(base64=None, url=None, seed="", finish_reason=FinishReason.QUEUE_IS_FULL)


def async_view(
    job: Job, results: list[GeneratedImageResult] | None, extra: FooocusExtra | None = None
) -> AsyncJobResponse:
    """The job as ``query-job`` shows it; ``results`` are its images once it succeeded."""
    info = (extra or FooocusExtra()).model_copy(update={"job_id": job.id, "cost_usd": job_cost(job)})
    if job.state == JobState.SUCCEEDED:
        info.job = rendercost_info(job)
    done = job.state == JobState.SUCCEEDED
    status = job.last_error if job.state == JobState.FAILED and job.last_error else STATUS_OF[job.state]
    return AsyncJobResponse(
        job_id=job.id,
        job_stage=STAGE_OF[job.state],
        job_progress=100 if done else round(job.progress * 100),
        job_status=status,
        job_result=results if done else (failed_results(job) if job.state in _FAILED else None),
        rendercost=info,
    )


_FAILED = frozenset({JobState.FAILED, JobState.CANCELLED})
