"""Translate between ``domain.jobs.Job`` and rows of the ``jobs`` table (payload JSON, versioned).

Schema versions of ``jobs.payload``:

- 2 (written now): ``RenderRequest.to_dict``: the cache policy, rewrite record and client info as
  objects of their own.
- 1 (written by the release before): the same spec, count, priority and styles, and a free-form
  ``extra`` object: ``api``, ``user``, ``response_format``, ``rewrite`` (the rewrite record, its
  ``prompt_rewrite`` line under ``line``), ``cache`` (``"no-store"``) and ``result_cache`` (the lookup's
  outcome). Read, never written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from rendercost.domain.controls import CacheMode, CacheOutcome, CachePolicy, ClientInfo, RewriteRecord
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.results import JobResult
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.queue.tables import PAYLOAD_SCHEMA_VERSION

PRIORITY_RANK = {Priority.INTERACTIVE: 0, Priority.BATCH: 1}  # jobs.priority_rank: lower is claimed first
_V1 = 1  # the payload schema with the free-form ``extra`` object


def encode_payload(request: RenderRequest) -> dict[str, Any]:
    """The JSON stored in ``jobs.payload``."""
    return {"schema_version": PAYLOAD_SCHEMA_VERSION, "request": request.to_dict()}


def decode_payload(payload: dict[str, Any]) -> RenderRequest:
    """The request in ``payload`` (this schema or version 1); ``ValueError`` for a version this code
    does not know."""
    version = payload.get("schema_version")
    if version == PAYLOAD_SCHEMA_VERSION:
        return RenderRequest.from_dict(payload["request"])
    if version == _V1:
        return _request_v1(payload["request"])
    raise ValueError(f"job payload schema_version {version!r} is not {PAYLOAD_SCHEMA_VERSION} (nor {_V1})")


def _request_v1(data: dict[str, Any]) -> RenderRequest:
    """A version-1 request: its ``extra`` keys become the typed cache policy, rewrite and client."""
    extra: dict[str, Any] = dict(data.get("extra") or {})
    rewrite = extra.get("rewrite")
    client = ClientInfo.from_dict(extra)  # api, user, response_format
    return RenderRequest(
        spec=RenderSpec.from_dict(data["spec"]),
        n=int(data.get("n", 1)),
        priority=Priority(data.get("priority", "interactive")),
        styles=tuple(data.get("styles", ())),
        cache=_cache_v1(extra, client),
        rewrite=RewriteRecord.from_dict(rewrite) if isinstance(rewrite, dict) else None,
        client=client,
    )


def _cache_v1(extra: dict[str, Any], client: ClientInfo) -> CachePolicy:
    mode = CacheMode.NO_STORE if extra.get("cache") == "no-store" else CacheMode.DEFAULT
    outcome = extra.get("result_cache")
    if outcome is not None:
        return CachePolicy(mode, CacheOutcome(outcome))
    # An HTTP door recorded the outcome on every job it queued: one without was answered from the cache.
    return CachePolicy(mode, CacheOutcome.HIT if client.api else CacheOutcome.OFF)


def job_from_row(row: RowMapping) -> Job:
    """A frozen ``Job`` from a full ``jobs`` row (``result``: None until the job succeeded)."""
    result = row["result"]
    return Job(
        id=row["id"],
        tenant=row["tenant"],
        request=decode_payload(row["payload"]),
        state=JobState(row["state"]),
        priority=Priority(row["priority"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        idempotency_key=row["idempotency_key"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        not_before=row["not_before"],
        last_error=row["last_error"],
        progress=row["progress"],
        result=JobResult.from_dict(result) if result else None,
        webhook_url=row["webhook_url"],
        tags=dict(row["tags"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
