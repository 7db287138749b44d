"""Translate between ``domain.jobs.Job`` and rows of the ``jobs`` table (payload JSON, versioned)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from rendercost.domain.jobs import Job, JobState
from rendercost.domain.specs import Priority, RenderRequest
from rendercost.queue.tables import PAYLOAD_SCHEMA_VERSION

PRIORITY_RANK = {Priority.INTERACTIVE: 0, Priority.BATCH: 1}  # jobs.priority_rank: lower is claimed first


def encode_payload(request: RenderRequest) -> dict[str, Any]:
    """The JSON stored in ``jobs.payload``."""
    return {"schema_version": PAYLOAD_SCHEMA_VERSION, "request": request.to_dict()}


def decode_payload(payload: dict[str, Any]) -> RenderRequest:
    """The request in ``payload``; ``ValueError`` for a schema version this code does not know."""
    version = payload.get("schema_version")
    if version != PAYLOAD_SCHEMA_VERSION:
        raise ValueError(f"job payload schema_version {version!r} is not {PAYLOAD_SCHEMA_VERSION}")
    return RenderRequest.from_dict(payload["request"])


def job_from_row(row: RowMapping) -> Job:
    """A frozen ``Job`` from a full ``jobs`` row."""
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
        result=dict(row["result"]),
        webhook_url=row["webhook_url"],
        tags=dict(row["tags"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
