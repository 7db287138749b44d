"""Claiming jobs: the one statement workers lease queued jobs with, and the priorities it may take.

``claim_jobs`` locks the rows it picks with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (so
concurrent workers never claim the same job and never wait on each other; SQLite serializes writers
with ``BEGIN IMMEDIATE``) and leases them in the same transaction. ``priorities`` filters on the job's
own priority, never its aged rank: a spot worker started with ``--priorities batch`` takes only batch
jobs, and interactive jobs never wait for a spot machine, however long batch work has waited.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, or_, select, update

from rendercost.domain.jobs import Job, JobState, check_transition
from rendercost.domain.specs import Priority
from rendercost.queue.codec import PRIORITY_RANK, job_from_row
from rendercost.queue.tables import jobs

ALL_PRIORITIES: frozenset[Priority] = frozenset(Priority)


def parse_priorities(text: str) -> frozenset[Priority]:
    """``"interactive,batch"`` to the priorities; ``ValueError`` naming the choices for anything else."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    choices = ", ".join(sorted(str(p) for p in Priority))
    if not names:
        raise ValueError(f"no priorities given; choose from {choices}")
    unknown = sorted({name for name in names if name not in {str(p) for p in Priority}})
    if unknown:
        raise ValueError(
            f"unknown priorit{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; choose from {choices}"
        )
    return frozenset(Priority(name) for name in names)


def claim_jobs(
    conn: Connection,
    worker_id: str,
    limit: int,
    *,
    now: datetime,
    lease_seconds: float,
    aging_seconds: float,
    priorities: Collection[Priority] = ALL_PRIORITIES,
) -> list[Job]:
    """In ``conn``'s transaction, lease up to ``limit`` runnable queued jobs of ``priorities`` to
    ``worker_id`` (interactive first, batch jobs older than ``aging_seconds`` as interactive, then
    oldest); each claim counts one attempt. Returns them in claim order."""
    if limit <= 0 or not priorities:
        return []
    check_transition(JobState.QUEUED, JobState.RUNNING)
    claim_order = (aged_rank(now - timedelta(seconds=aging_seconds)), jobs.c.created_at, jobs.c.seq)
    pick = select(jobs.c.id).where(jobs.c.state == str(JobState.QUEUED), runnable(now))
    if set(priorities) != ALL_PRIORITIES:
        pick = pick.where(jobs.c.priority.in_(sorted(str(p) for p in priorities)))
    pick = pick.order_by(*claim_order).limit(limit).with_for_update(skip_locked=True)
    ids = list(conn.execute(pick).scalars())
    if not ids:
        return []
    conn.execute(
        update(jobs)
        .where(jobs.c.id.in_(ids))
        .values(
            state=str(JobState.RUNNING),
            attempts=jobs.c.attempts + 1,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            not_before=None,
            progress=0.0,
            started_at=func.coalesce(jobs.c.started_at, now),
            updated_at=now,
        )
    )
    rows = conn.execute(select(jobs).where(jobs.c.id.in_(ids)).order_by(*claim_order)).mappings()
    return [job_from_row(row) for row in rows]


def aged_rank(aged_before: datetime) -> ColumnElement[Any]:
    """Claim rank with aging: batch jobs created before ``aged_before`` rank as interactive."""
    interactive = PRIORITY_RANK[Priority.INTERACTIVE]
    return case((jobs.c.created_at <= aged_before, interactive), else_=jobs.c.priority_rank)


def runnable(now: datetime) -> ColumnElement[bool]:
    """Jobs not waiting out a retry backoff at ``now``."""
    return or_(jobs.c.not_before.is_(None), jobs.c.not_before <= now)
