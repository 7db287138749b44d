"""``SqlJobStore``: the JobStore on SQLite (embedded) or PostgreSQL (many processes).

Every method that takes no connection is one transaction. Claims lock rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers never claim the same job and
never wait on each other; on SQLite the engine opens every transaction with ``BEGIN IMMEDIATE``, which
serializes writers. Completing a job (``mark_succeeded``, ``insert_answered``)
runs inside a transaction the caller opens with ``transaction()``: ``ledger.billing.Biller`` settles
the job and writes its cost lines in that one transaction, so a job re-run after a crash is billed
exactly once. State changes go through ``domain.jobs.check_transition``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from rendercost.db.clock import Clock, utcnow
from rendercost.db.upsert import insert_ignoring_conflicts
from rendercost.domain.jobs import Job, JobState, check_transition, new_job_id
from rendercost.domain.results import JobResult
from rendercost.domain.specs import Priority, RenderRequest
from rendercost.errors import Conflict, InvalidRequest, NotFound
from rendercost.queue.claims import ALL_PRIORITIES, claim_jobs, runnable
from rendercost.queue.codec import PRIORITY_RANK, encode_payload, job_from_row
from rendercost.queue.tables import MAX_ERROR_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH, jobs
from rendercost.settings import Settings

MAX_LIST_LIMIT = 1000  # most jobs one list_jobs call returns
CLAIM_ORDER = (jobs.c.priority_rank, jobs.c.created_at, jobs.c.seq)  # interactive first, then oldest


@dataclass(frozen=True)
class Transition:
    """A job after a write inside a caller's transaction; ``changed`` is False for a repeat (an
    idempotent replay, a second completion) that wrote nothing, so nothing else should be written."""

    job: Job
    changed: bool


class SqlJobStore:
    """The durable job queue. Safe to share between threads; many processes may share the database.

    ``max_attempts`` claims end in the dead-letter state (FAILED, last error kept); a retryable failure
    waits ``retry_backoff_seconds * 2 ** (attempts - 1)`` before the job can be claimed again.
    A batch-priority job that has waited ``aging_seconds`` is claimed as if it were interactive, so a
    steady stream of interactive work cannot starve batch work.
    ``clock`` returns aware UTC datetimes; tests pass a ``db.clock.ManualClock``.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_attempts: int = 3,
        retry_backoff_seconds: float = 2.0,
        aging_seconds: float = 30.0,
        clock: Clock = utcnow,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if retry_backoff_seconds < 0:
            raise ValueError("retry_backoff_seconds must not be negative")
        self._engine = engine
        self._max_attempts = max_attempts
        self._backoff_s = retry_backoff_seconds
        self._aging_s = aging_seconds
        self._clock = clock

    @property
    def engine(self) -> Engine:
        """The database this store writes to."""
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction on the store's database, committed when the block ends, rolled back when
        it raises: the seam through which the ledger bills a job in the same transaction that
        settles it (``mark_succeeded``, ``insert_answered`` take its connection)."""
        with self._engine.begin() as conn:
            yield conn

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> SqlJobStore:
        """The store with the queue tunables of ``settings``."""
        return cls(
            engine,
            max_attempts=settings.max_attempts,
            retry_backoff_seconds=settings.retry_backoff_seconds,
            aging_seconds=settings.aging_seconds,
        )

    # -- submitting and reading -------------------------------------------------------------------

    def enqueue(
        self,
        tenant: str,
        request: RenderRequest,
        *,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Job:
        """Queue a job; the same (tenant, idempotency_key) returns the existing job unchanged, also
        when two calls race (the unique constraint decides; the loser reads the winner's row)."""
        _check_enqueue(tenant, idempotency_key, tags)
        row = self._new_row(new_job_id(), tenant, request, idempotency_key, webhook_url, tags)
        with self._engine.begin() as conn:
            return self._insert_job(conn, row)

    def insert_answered(
        self,
        conn: Connection,
        job_id: str,
        tenant: str,
        request: RenderRequest,
        result: JobResult,
        *,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Transition:
        """Insert, in ``conn``'s transaction, a job answered without rendering (the exact-result cache):
        SUCCEEDED, never queued, with its ``result``. ``job_id`` comes from ``domain.jobs.new_job_id``.
        The same (tenant, idempotency_key) returns the existing job, unchanged (``changed`` False)."""
        _check_enqueue(tenant, idempotency_key, tags)
        row = self._new_row(job_id, tenant, request, idempotency_key, webhook_url, tags)
        now = row["created_at"]
        row |= {
            "state": str(JobState.SUCCEEDED),
            "progress": 1.0,
            "result": result.to_dict(),
            "started_at": now,
            "finished_at": now,
        }
        job = self._insert_job(conn, row)
        return Transition(job, changed=job.id == job_id)

    def _new_row(
        self,
        job_id: str,
        tenant: str,
        request: RenderRequest,
        idempotency_key: str | None,
        webhook_url: str | None,
        tags: dict[str, str] | None,
    ) -> dict[str, Any]:
        """A queued job's row."""
        now = self._clock()
        return {
            "id": job_id,
            "tenant": tenant,
            "state": str(JobState.QUEUED),
            "priority": str(request.priority),
            "priority_rank": PRIORITY_RANK[request.priority],
            "model": request.spec.model,
            "payload": encode_payload(request),
            "idempotency_key": idempotency_key,
            "attempts": 0,
            "max_attempts": self._max_attempts,
            "progress": 0.0,
            "result": {},
            "webhook_url": webhook_url,
            "tags": dict(tags or {}),
            "created_at": now,
            "updated_at": now,
        }

    @staticmethod
    def _insert_job(conn: Connection, row: dict[str, Any]) -> Job:
        """Insert ``row``; with an idempotency key already used by the tenant, the existing job (also
        when two calls race: the unique constraint decides; the loser reads the winner's row)."""
        if row["idempotency_key"] is None:
            conn.execute(insert(jobs).values(row))
            return _select_job(conn, jobs.c.id == row["id"])
        stmt = insert_ignoring_conflicts(conn, jobs, ("tenant", "idempotency_key"))
        conn.execute(stmt.values(row))
        return _select_job(
            conn, and_(jobs.c.tenant == row["tenant"], jobs.c.idempotency_key == row["idempotency_key"])
        )

    def get(self, job_id: str, *, tenant: str | None = None) -> Job:
        """The job; ``NotFound`` if absent or owned by another tenant (when ``tenant`` is given)."""
        with self._engine.connect() as conn:
            return job_from_row(_find_row(conn, job_id, tenant))

    def list_jobs(
        self,
        *,
        tenant: str | None = None,
        states: Sequence[JobState] = (),
        limit: int = 50,
        before: datetime | None = None,
        older_than: str | None = None,
    ) -> list[Job]:
        """Newest first (by ``created_at``, then submission order). ``before`` keeps jobs created before
        a time; ``older_than`` (a job id of ``tenant``, the last of the previous page) keeps the jobs
        listed after it, so no job is skipped when several share a ``created_at``; an unknown (or another
        tenant's) id is ``InvalidRequest``. ``limit`` is 1..1000."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}", param="limit")
        query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.seq.desc()).limit(limit)
        if tenant is not None:
            query = query.where(jobs.c.tenant == tenant)
        if states:
            query = query.where(jobs.c.state.in_([str(state) for state in states]))
        if before is not None:
            query = query.where(jobs.c.created_at < before)
        with self._engine.connect() as conn:
            if older_than is not None:
                query = query.where(_listed_after(conn, older_than, tenant))
            return [job_from_row(row) for row in conn.execute(query).mappings()]

    # -- the worker's side ------------------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        limit: int,
        *,
        lease_seconds: float,
        priorities: Collection[Priority] = ALL_PRIORITIES,
    ) -> list[Job]:
        """Lease up to ``limit`` runnable queued jobs of ``priorities`` (interactive first, then
        oldest) to ``worker_id``; each claim counts one attempt (see ``queue.claims``)."""
        _check_lease_seconds(lease_seconds)
        with self._engine.begin() as conn:
            return claim_jobs(
                conn,
                worker_id,
                limit,
                now=self._clock(),
                lease_seconds=lease_seconds,
                aging_seconds=self._aging_s,
                priorities=priorities,
            )

    def heartbeat(self, worker_id: str, job_ids: Sequence[str], *, lease_seconds: float) -> None:
        """Extend the leases ``worker_id`` holds on ``job_ids``; jobs it no longer holds are skipped."""
        _check_lease_seconds(lease_seconds)
        if not job_ids:
            return
        now = self._clock()
        with self._engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(_held_by(worker_id), jobs.c.id.in_(list(job_ids)))
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
            )

    def set_progress(self, job_id: str, progress: float) -> None:
        """Record progress (0..1) of a running job; ignored once the job is no longer running."""
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"progress {progress} is not between 0 and 1")
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == str(JobState.RUNNING))
                .values(progress=progress, updated_at=self._clock())
            ).rowcount
            if not changed:
                _find_row(conn, job_id, None)  # NotFound for an unknown job

    def mark_succeeded(self, conn: Connection, job_id: str, worker_id: str, result: JobResult) -> Transition:
        """Mark the job succeeded with ``result`` in ``conn``'s transaction (its row locked until it
        ends). Marking again with the same worker changes nothing (``changed`` False). A job whose
        lease ``worker_id`` no longer holds (cancelled, re-leased, dead-lettered) is ``Conflict``. A
        lease that ran out but was not yet requeued still counts as held: nobody else can have the
        job. ``NotFound`` for an unknown job."""
        check_transition(JobState.RUNNING, JobState.SUCCEEDED)  # the one state the update leaves
        now = self._clock()
        held = (
            (jobs.c.id == job_id)
            & (jobs.c.state == str(JobState.RUNNING))
            & (jobs.c.lease_owner == worker_id)
        )
        updated = (
            conn.execute(
                update(jobs)
                .where(held)
                .values(
                    state=str(JobState.SUCCEEDED),
                    result=result.to_dict(),
                    progress=1.0,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                )
                .returning(*jobs.c)
            )
            .mappings()
            .first()
        )
        if updated is not None:  # the common case: one statement
            return Transition(job_from_row(updated), changed=True)
        row = _find_row(conn, job_id, None, lock=True)  # why not: a repeat, or not ours (or no such job)
        if row["state"] == JobState.SUCCEEDED and row["lease_owner"] == worker_id:
            return Transition(job_from_row(row), changed=False)
        _check_lease(row, worker_id)
        raise AssertionError(f"job {job_id} is running under {worker_id} but was not updated")

    def fail(self, job_id: str, worker_id: str, error: str, *, retryable: bool = True) -> Job:
        """Requeue with exponential backoff, or dead-letter (FAILED) when not retryable or after the
        last attempt; ``error`` is kept as ``last_error`` either way. ``Conflict`` unless
        ``worker_id`` holds the job's lease."""
        now = self._clock()
        with self._engine.begin() as conn:
            row = _find_row(conn, job_id, None, lock=True)
            _check_lease(row, worker_id)
            values: dict[str, Any] = {
                "last_error": error[:MAX_ERROR_LENGTH],
                "lease_expires_at": None,
                "updated_at": now,
            }
            if retryable and row["attempts"] < row["max_attempts"]:
                check_transition(JobState.RUNNING, JobState.QUEUED)
                delay = self._backoff_s * 2 ** (row["attempts"] - 1)
                values |= {
                    "state": str(JobState.QUEUED),
                    "lease_owner": None,
                    "not_before": now + timedelta(seconds=delay),
                    "progress": 0.0,
                }
            else:
                check_transition(JobState.RUNNING, JobState.FAILED)
                values |= {"state": str(JobState.FAILED), "finished_at": now}
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
            return _select_job(conn, jobs.c.id == job_id)

    def release(self, worker_id: str, job_ids: Sequence[str]) -> None:
        """Give leased-but-unstarted jobs back to the queue without counting an attempt; jobs
        ``worker_id`` does not hold are skipped."""
        if not job_ids:
            return
        now = self._clock()
        check_transition(JobState.RUNNING, JobState.QUEUED)
        with self._engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(_held_by(worker_id), jobs.c.id.in_(list(job_ids)))
                .values(
                    state=str(JobState.QUEUED),
                    attempts=jobs.c.attempts - 1,
                    lease_owner=None,
                    lease_expires_at=None,
                    progress=0.0,
                    started_at=case((jobs.c.attempts <= 1, None), else_=jobs.c.started_at),
                    updated_at=now,
                )
            )

    def requeue_expired(self, now: datetime | None = None) -> int:
        """Put jobs whose lease expired back in the queue, or dead-letter those on their last
        attempt (``last_error`` names the lost worker); return how many moved."""
        now = now or self._clock()
        expired = and_(jobs.c.state == str(JobState.RUNNING), jobs.c.lease_expires_at < now)
        error = literal("lease held by ") + func.coalesce(jobs.c.lease_owner, "?") + literal(" expired")
        check_transition(JobState.RUNNING, JobState.FAILED)
        check_transition(JobState.RUNNING, JobState.QUEUED)
        with self._engine.begin() as conn:
            dead = conn.execute(
                update(jobs)
                .where(expired, jobs.c.attempts >= jobs.c.max_attempts)
                .values(
                    state=str(JobState.FAILED),
                    last_error=error,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                )
            ).rowcount
            back = conn.execute(
                update(jobs)
                .where(expired)
                .values(
                    state=str(JobState.QUEUED),
                    last_error=error,
                    lease_owner=None,
                    lease_expires_at=None,
                    progress=0.0,
                    updated_at=now,
                )
            ).rowcount
        return int(dead) + int(back)

    # -- the client's side ------------------------------------------------------------------------

    def cancel(self, job_id: str, *, tenant: str | None = None) -> Job:
        """Cancel a queued or running job; ``Conflict`` if it already finished. A worker still
        rendering it gets ``Conflict`` when it tries to complete it."""
        now = self._clock()
        with self._engine.begin() as conn:
            row = _find_row(conn, job_id, tenant, lock=True)
            check_transition(JobState(row["state"]), JobState.CANCELLED)
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(state=str(JobState.CANCELLED), lease_expires_at=None, finished_at=now, updated_at=now)
            )
            return _select_job(conn, jobs.c.id == job_id)

    def queue_position(self, job_id: str) -> int | None:
        """1-based position in claim order among runnable queued jobs (a job waiting out a retry
        backoff counts the runnable jobs ahead of it); None when not queued."""
        now = self._clock()
        with self._engine.connect() as conn:
            row = _find_row(conn, job_id, None)
            if row["state"] != JobState.QUEUED:
                return None
            rank, created, seq = row["priority_rank"], row["created_at"], row["seq"]
            ahead = or_(
                jobs.c.priority_rank < rank,
                and_(jobs.c.priority_rank == rank, jobs.c.created_at < created),
                and_(jobs.c.priority_rank == rank, jobs.c.created_at == created, jobs.c.seq < seq),
            )
            query = (
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.state == str(JobState.QUEUED), runnable(now), ahead)
            )
            return int(conn.execute(query).scalar_one()) + 1

    def depth(self) -> dict[tuple[Priority, str], int]:
        """Queued jobs (runnable or backing off) by (priority, model): the autoscaling signal."""
        query = (
            select(jobs.c.priority, jobs.c.model, func.count())
            .where(jobs.c.state == str(JobState.QUEUED))
            .group_by(jobs.c.priority, jobs.c.model)
        )
        with self._engine.connect() as conn:
            return {(Priority(priority), model): int(n) for priority, model, n in conn.execute(query)}


def _check_enqueue(tenant: str, idempotency_key: str | None, tags: dict[str, str] | None) -> None:
    if not tenant:
        raise ValueError("tenant must not be empty")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidRequest(
            f"idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters", param="idempotency_key"
        )
    if tags and not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise InvalidRequest("tags must map strings to strings", param="tags")


def _check_lease_seconds(lease_seconds: float) -> None:
    if not lease_seconds > 0:
        raise ValueError(f"lease_seconds must be positive, not {lease_seconds}")


def _listed_after(conn: Connection, job_id: str, tenant: str | None) -> ColumnElement[bool]:
    """Jobs that ``list_jobs`` orders after ``job_id`` (older, or as old and submitted earlier)."""
    query = select(jobs.c.created_at, jobs.c.seq, jobs.c.tenant).where(jobs.c.id == job_id)
    cursor = conn.execute(query).first()
    if cursor is None or (tenant is not None and cursor.tenant != tenant):
        raise InvalidRequest(f"no job {job_id!r} to page from", param="before")
    return or_(
        jobs.c.created_at < cursor.created_at,
        and_(jobs.c.created_at == cursor.created_at, jobs.c.seq < cursor.seq),
    )


def _held_by(worker_id: str) -> ColumnElement[bool]:
    return and_(jobs.c.state == str(JobState.RUNNING), jobs.c.lease_owner == worker_id)


def _find_row(conn: Connection, job_id: str, tenant: str | None, *, lock: bool = False) -> RowMapping:
    """The job's row (locked for update when ``lock``); ``NotFound`` if absent or another tenant's."""
    query = select(jobs).where(jobs.c.id == job_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None or (tenant is not None and row["tenant"] != tenant):
        raise NotFound(f"job {job_id} not found", param="job_id")
    return row


def _select_job(conn: Connection, where: ColumnElement[bool]) -> Job:
    return job_from_row(conn.execute(select(jobs).where(where)).mappings().one())


def _check_lease(row: RowMapping, worker_id: str) -> None:
    if row["state"] != JobState.RUNNING or row["lease_owner"] != worker_id:
        raise Conflict(
            f"job {row['id']} is {row['state']} and not leased to worker {worker_id}", code="lease_lost"
        )
