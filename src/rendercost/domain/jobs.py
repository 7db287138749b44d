"""Jobs: a queued render request, its states, and the transitions allowed between them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from rendercost.domain.costs import Attribution
from rendercost.domain.results import JobResult
from rendercost.domain.specs import Priority, RenderRequest
from rendercost.errors import Conflict


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"  # waiting to be claimed (possibly until not_before, after a retry)
    RUNNING = "running"  # claimed by a worker holding a lease
    SUCCEEDED = "succeeded"  # images stored and billed, in one transaction
    FAILED = "failed"  # dead-lettered: the last attempt failed, error kept
    CANCELLED = "cancelled"  # cancelled by the client before it finished


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    # RUNNING -> QUEUED: retry after a failure, an expired lease, or a drained worker.
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.QUEUED, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


JOB_ID_PREFIX = "job_"


def new_job_id() -> str:
    """A fresh job id: ``job_`` and 32 hex digits (opaque, URL-safe)."""
    return f"{JOB_ID_PREFIX}{uuid.uuid4().hex}"


def check_transition(current: JobState, target: JobState) -> None:
    """Raise ``Conflict`` unless ``current -> target`` is allowed."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise Conflict(f"a {current} job cannot become {target}", code="invalid_job_state")


@dataclass(frozen=True)
class Job:
    """A job as stored; built by the JobStore, never an ORM row."""

    id: str  # opaque, URL-safe
    tenant: str  # owner; other tenants never see it
    request: RenderRequest  # what to render
    state: JobState  # see JobState
    priority: Priority  # planning class
    attempts: int  # claims so far
    max_attempts: int  # dead-letter after this many failed attempts
    created_at: datetime  # UTC
    updated_at: datetime  # UTC
    idempotency_key: str | None = None  # same key, same job
    lease_owner: str | None = None  # worker id holding the lease
    lease_expires_at: datetime | None = None  # UTC; an expired lease puts the job back
    not_before: datetime | None = None  # UTC; retry backoff
    last_error: str | None = None  # kept on retry and dead-letter
    progress: float = 0.0  # 0..1 while running
    result: JobResult | None = None  # stored images and their receipts; set once SUCCEEDED
    webhook_url: str | None = None  # POSTed on completion
    tags: dict[str, str] = field(default_factory=dict)  # tenant/key tags carried to cost lines
    started_at: datetime | None = None  # UTC, first claim
    finished_at: datetime | None = None  # UTC, terminal state reached

    @property
    def attribution(self) -> Attribution:
        """Who and what this job's cost lines are billed to (its request, tenant and tags)."""
        return self.request.attribution(self.tenant, self.tags)
