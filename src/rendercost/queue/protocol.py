"""The JobStore contract. The SQL implementation (SQLite embedded, PostgreSQL at scale) lives in
``queue.sql_store``; the worker, the batch CLI and the HTTP API depend only on this protocol.
Completing a job bills it, so that is not here: ``ledger.billing.Biller`` completes jobs (through the
SQL store's transaction seam) and is the only writer of cost lines."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from rendercost.domain.jobs import Job, JobState
from rendercost.domain.specs import Priority, RenderRequest


class JobStore(Protocol):
    def enqueue(
        self,
        tenant: str,
        request: RenderRequest,
        *,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Job:
        """Queue a job; the same (tenant, idempotency_key) returns the existing job unchanged."""
        ...

    def get(self, job_id: str, *, tenant: str | None = None) -> Job:
        """The job; ``NotFound`` if absent or owned by another tenant (when ``tenant`` is given)."""
        ...

    def list_jobs(
        self,
        *,
        tenant: str | None = None,
        states: Sequence[JobState] = (),
        limit: int = 50,
        before: datetime | None = None,
        older_than: str | None = None,
    ) -> list[Job]:
        """Newest first; ``before`` keeps jobs created before a time, ``older_than`` the jobs listed
        after that job id (the last of the previous page: no job is skipped on equal times)."""
        ...

    def claim(
        self,
        worker_id: str,
        limit: int,
        *,
        lease_seconds: float,
        priorities: Collection[Priority] = ...,
    ) -> list[Job]:
        """Lease up to ``limit`` runnable queued jobs of ``priorities`` (default: all; interactive
        first, then oldest) to ``worker_id``."""
        ...

    def heartbeat(self, worker_id: str, job_ids: Sequence[str], *, lease_seconds: float) -> None:
        """Extend the leases ``worker_id`` holds on ``job_ids``."""
        ...

    def set_progress(self, job_id: str, progress: float) -> None: ...

    def fail(self, job_id: str, worker_id: str, error: str, *, retryable: bool = True) -> Job:
        """Requeue with exponential backoff, or dead-letter (FAILED) after the last attempt."""
        ...

    def release(self, worker_id: str, job_ids: Sequence[str]) -> None:
        """Give leased-but-unstarted jobs back to the queue without counting an attempt."""
        ...

    def requeue_expired(self, now: datetime | None = None) -> int:
        """Put jobs whose lease expired back in the queue (or dead-letter them); return how many."""
        ...

    def cancel(self, job_id: str, *, tenant: str | None = None) -> Job:
        """Cancel a queued or running job; ``Conflict`` if it already finished."""
        ...

    def queue_position(self, job_id: str) -> int | None:
        """1-based position among runnable queued jobs in claim order; None when not queued."""
        ...

    def depth(self) -> dict[tuple[Priority, str], int]:
        """Queued jobs by (priority, model): the autoscaling signal."""
        ...
