"""The webhook outbox: rows claimed with a lease, so many servers on one database send each event once,
and a retry schedule stored in the rows, so retries survive restarts and run for hours.

A row is added when a job with a ``webhook_url`` is submitted. ``claim`` leases due rows of finished
jobs to one dispatcher (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the engine's
``BEGIN IMMEDIATE`` serializes the claims, as ``queue.sql_store`` does for jobs) and counts the attempt.
``record`` stores the outcome, only while the caller still holds the lease: ``delivered``; ``pending``
again at ``next_attempt_at`` (``RetrySchedule``); or ``failed`` once the schedule is spent or the receiver
refused (4xx). A dispatcher that dies mid-send loses its lease when ``lease_s`` runs out and another takes
the row: deliveries are at least once. ``redeliver`` puts any row back to pending, due now, with a fresh
schedule. All methods are blocking (SQL): async callers run them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from rendercost.api.tables import webhook_deliveries as wd
from rendercost.db.clock import Clock, utcnow
from rendercost.domain.jobs import TERMINAL_STATES
from rendercost.errors import NotFound
from rendercost.queue.tables import jobs
from rendercost.settings import Settings

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class RetrySchedule:
    """When a failed delivery is tried again: ``base_s`` after the first failure, doubling after each,
    at most ``cap_s`` apart; no more than ``max_attempts`` POSTs, none starting later than ``max_age_s``
    after the first."""

    base_s: float = 30.0
    cap_s: float = 3600.0
    max_attempts: int = 12
    max_age_s: float = 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrySchedule:
        return cls(
            base_s=settings.webhook_backoff_base_s,
            cap_s=settings.webhook_backoff_cap_s,
            max_attempts=settings.webhook_max_attempts,
            max_age_s=settings.webhook_max_age_s,
        )

    def delay_s(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th POST failed."""
        return float(min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1)))

    def next_attempt(self, attempts: int, first: datetime, now: datetime) -> datetime | None:
        """When to try after the ``attempts``-th failure; None when the schedule is spent."""
        due = now + timedelta(seconds=self.delay_s(attempts))
        if attempts >= self.max_attempts or (due - first).total_seconds() > self.max_age_s:
            return None
        return due


@dataclass(frozen=True)
class Delivery:
    """One claimed outbox row."""

    job_id: str
    tenant: str
    key_id: str | None  # whose secret signs
    url: str
    base_url: str  # for image links in the payload
    attempts: int  # POSTs so far, this one included
    first_attempt_at: datetime


@dataclass(frozen=True)
class DeliveryStatus:
    """Where one job's webhook stands, for operators."""

    job_id: str
    tenant: str
    state: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "tenant": self.tenant,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error": self.last_error,
            "updated_at": self.updated_at.isoformat(),
        }


class WebhookOutbox:
    """The ``webhook_deliveries`` table; blocking calls. ``clock`` returns aware UTC datetimes."""

    def __init__(
        self,
        engine: Engine,
        *,
        schedule: RetrySchedule | None = None,
        lease_s: float = 60.0,
        clock: Clock = utcnow,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.engine = engine
        self.schedule = schedule or RetrySchedule()
        self.lease_s = lease_s
        self.clock = clock

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> WebhookOutbox:
        return cls(engine, schedule=RetrySchedule.from_settings(settings), lease_s=settings.webhook_lease_s)

    def add(self, job_id: str, tenant: str, key_id: str | None, url: str, base_url: str) -> None:
        """Record that ``job_id`` wants a webhook; a second add for the same job is ignored."""
        now = self.clock()
        row = {"job_id": job_id, "tenant": tenant, "key_id": key_id, "url": url, "base_url": base_url}
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(wd).values(
                        **row, state=PENDING, attempts=0, created_at=now, updated_at=now, next_attempt_at=now
                    )
                )
        except IntegrityError:
            pass  # idempotent resubmit of the same job

    def claim(self, owner: str, limit: int = 100) -> list[Delivery]:
        """Lease up to ``limit`` due pending rows of finished jobs to ``owner``, oldest due first; each
        claim counts one attempt. Rows another owner holds are skipped, never waited for."""
        if limit <= 0:
            return []
        now = self.clock()
        pick = (
            select(wd.c.job_id)
            .join(jobs, jobs.c.id == wd.c.job_id)
            .where(
                wd.c.state == PENDING,
                wd.c.next_attempt_at <= now,
                or_(wd.c.lease_expires_at.is_(None), wd.c.lease_expires_at < now),
                jobs.c.state.in_([str(s) for s in TERMINAL_STATES]),
            )
            .order_by(wd.c.next_attempt_at, wd.c.job_id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=wd)
        )
        with self.engine.begin() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                update(wd)
                .where(wd.c.job_id.in_(ids))
                .values(
                    attempts=wd.c.attempts + 1,
                    lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=self.lease_s),
                    first_attempt_at=func.coalesce(wd.c.first_attempt_at, now),
                    updated_at=now,
                )
            )
            rows = conn.execute(select(wd).where(wd.c.job_id.in_(ids)).order_by(wd.c.next_attempt_at))
            return [
                Delivery(r.job_id, r.tenant, r.key_id, r.url, r.base_url, r.attempts, r.first_attempt_at)
                for r in rows
            ]

    def record(self, delivery: Delivery, owner: str, error: str | None, *, retryable: bool) -> str | None:
        """Store the outcome of ``owner``'s attempt and release the lease; returns the row's new state,
        or None when ``owner`` no longer holds it (another dispatcher took it after the lease ran out,
        or it was redelivered): then nothing is written."""
        now = self.clock()
        due = self.schedule.next_attempt(delivery.attempts, delivery.first_attempt_at, now)
        if error is None:
            values: dict[str, Any] = {"state": DELIVERED}
        elif retryable and due is not None:
            values = {"state": PENDING, "next_attempt_at": due}
        else:
            values = {"state": FAILED}
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(wd)
                .where(wd.c.job_id == delivery.job_id, wd.c.lease_owner == owner)
                .values(**values, last_error=error, lease_owner=None, lease_expires_at=None, updated_at=now)
            ).rowcount
        return str(values["state"]) if changed else None

    def redeliver(self, job_id: str) -> DeliveryStatus:
        """Put ``job_id``'s delivery back to pending, due now, with a fresh schedule (any state; a lease
        held on it is dropped). ``NotFound`` when the job asked for no webhook."""
        now = self.clock()
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(wd)
                .where(wd.c.job_id == job_id)
                .values(
                    state=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    first_attempt_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            ).rowcount
        if not changed:
            raise NotFound(f"no webhook delivery for job {job_id!r}", param="job_id")
        found = self.status(job_id)
        assert found is not None  # noqa: S101  just written
        return found

    def status(self, job_id: str) -> DeliveryStatus | None:
        """Where ``job_id``'s delivery stands; None when the job asked for no webhook."""
        with self.engine.connect() as conn:
            r = conn.execute(select(wd).where(wd.c.job_id == job_id)).first()
        if r is None:
            return None
        return DeliveryStatus(
            r.job_id, r.tenant, r.state, r.attempts, r.next_attempt_at, r.last_error, r.updated_at
        )

    def state(self, job_id: str) -> str | None:
        found = self.status(job_id)
        return None if found is None else found.state
