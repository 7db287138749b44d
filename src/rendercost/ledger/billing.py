"""``Biller``: the only writer of cost lines.

A job's cost lines are exactly the lines of its images' receipts (``JobResult.images[i].receipt``), so
completing a job and billing it are one call here, in ONE transaction with the job row and its artifact
rows (the job store's transaction seam). Lines are unique per (job, image index, stage): a job written
twice, or re-run after a crash, is billed once. Lines billed outside a job's completion (prompt-rewrite
tokens at admission, an images-API cache answer's $0 lines, idle device time) go through ``record``.

Savings (``ledger.savings``): in the same transaction as a job's or a cache answer's lines, the Biller
writes what routing, batching and the storage lifecycle saved on them, and learns the solo references
from the jobs whose images ran alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, func, select

from rendercost.artifacts.protocol import ArtifactRef
from rendercost.artifacts.records import record_artifacts, record_artifacts_of
from rendercost.db.clock import Clock, utcnow
from rendercost.domain.costs import Attribution, CostLine, Stage
from rendercost.domain.jobs import Job
from rendercost.domain.results import JobResult
from rendercost.domain.specs import RenderRequest
from rendercost.errors import Conflict, NotFound
from rendercost.ledger.ledger import BilledLines, Ledger
from rendercost.ledger.savings import Measured, SavingsBook
from rendercost.ledger.tables import cost_lines
from rendercost.queue.sql_store import SqlJobStore
from rendercost.settings import Settings


@dataclass(frozen=True)
class Completion:
    """A job to complete: its result and the artifact rows of its images, (ref, image index)."""

    job_id: str
    result: JobResult
    artifacts: Sequence[tuple[ArtifactRef, int]] = ()


class Biller:
    """The only writer of cost lines. Safe to share between threads."""

    def __init__(
        self, store: SqlJobStore, *, clock: Clock = utcnow, savings: SavingsBook | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._ledger = Ledger(store.engine, clock=clock)
        self._savings = savings or SavingsBook()

    @classmethod
    def from_settings(cls, store: SqlJobStore, settings: Settings) -> Biller:
        """A biller whose lifecycle savings are measured against ``artifact_retention_days`` (what an
        image without a class is kept for)."""
        return cls(store, savings=SavingsBook(standard_retention_days=settings.artifact_retention_days))

    @property
    def ledger(self) -> Ledger:
        """The ledger this biller writes to (and its readers)."""
        return self._ledger

    def complete(
        self,
        job_id: str,
        worker_id: str,
        result: JobResult,
        artifacts: Sequence[tuple[ArtifactRef, int]] = (),
    ) -> Job:
        """The job SUCCEEDED with ``result``, every line of its images' receipts written to the ledger
        and its artifact rows, in ONE transaction. Billed once however often it runs: completing again
        with the same worker returns the job and writes nothing. ``Conflict`` (nothing written) when
        ``worker_id`` no longer holds the lease (cancelled, re-leased, dead-lettered); ``NotFound`` for
        an unknown job; ``ValueError`` (nothing written) for lines or artifacts that are not this
        job's, or money that does not fit the ledger."""
        [outcome] = self._complete(worker_id, [Completion(job_id, result, tuple(artifacts))])
        if isinstance(outcome, (Conflict, NotFound)):
            raise outcome
        return outcome

    def complete_many(
        self, worker_id: str, completions: Sequence[Completion]
    ) -> list[Job | Conflict | NotFound]:
        """``complete`` for the jobs one batch finished, in ONE transaction and one statement per table
        for all of them (a batch's settling holds the worker's GIL beside the next render). Each job's
        outcome, in order: the job, or the ``Conflict``/``NotFound`` that left it unwritten while the
        others are written. ``ValueError`` (nothing written for any) as ``complete``: settle such a
        batch job by job to find the one at fault."""
        return self._complete(worker_id, completions)

    def _complete(self, worker_id: str, completions: Sequence[Completion]) -> list[Job | Conflict | NotFound]:
        outcomes: list[Job | Conflict | NotFound] = []
        done: list[tuple[Job, list[CostLine], Sequence[tuple[ArtifactRef, int]]]] = []
        with self._store.transaction() as conn:
            for completion in completions:
                lines = result_lines(completion.result)
                check_lines_belong(completion.job_id, lines)
                try:
                    marked = self._store.mark_succeeded(conn, completion.job_id, worker_id, completion.result)
                except (Conflict, NotFound) as exc:  # raised before it wrote anything
                    outcomes.append(exc)
                    continue
                outcomes.append(marked.job)
                if marked.changed:
                    done.append((marked.job, lines, completion.artifacts))
            if done:
                record_artifacts_of(conn, [(job, artifacts) for job, _, artifacts in done])
                self._ledger.insert_billed(
                    conn, [BilledLines(lines, job.attribution, self._when(job)) for job, lines, _ in done]
                )
                self._savings.record_many(
                    conn,
                    [
                        Measured(lines, job.request, job.attribution, self._when(job))
                        for job, lines, _ in done
                    ],
                    learn=True,
                )
        return outcomes

    def _when(self, job: Job) -> datetime:
        return job.finished_at or self._clock()

    def answer(
        self,
        job_id: str,
        tenant: str,
        request: RenderRequest,
        result: JobResult,
        artifacts: Sequence[tuple[ArtifactRef, int]] = (),
        *,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Job:
        """A job answered without rendering (exact-result cache): inserted SUCCEEDED, never queued,
        with its result, lines (its receipts' lines) and artifact rows in ONE transaction. ``job_id``
        comes from ``domain.jobs.new_job_id`` (the lines already name it). An idempotent replay (the
        same tenant and ``idempotency_key``) returns the first job and writes nothing. ``ValueError``
        (nothing written) for lines or artifacts that are not this job's."""
        lines = result_lines(result)
        check_lines_belong(job_id, lines)
        with self._store.transaction() as conn:
            done = self._store.insert_answered(
                conn,
                job_id,
                tenant,
                request,
                result,
                idempotency_key=idempotency_key,
                webhook_url=webhook_url,
                tags=tags,
            )
            if not done.changed:
                return done.job
            record_artifacts(conn, done.job, artifacts)
            self._ledger.insert_lines(conn, lines, done.job.attribution, now=done.job.finished_at)
            self._record_savings(conn, lines, done.job)
            return done.job

    def record(
        self, lines: Sequence[CostLine], attribution: Attribution, *, request: RenderRequest | None = None
    ) -> int:
        """Lines billed outside a job's completion: prompt-rewrite tokens at admission, an images-API
        cache answer's $0 lines (with its ``request``, whose savings are recorded too), idle device
        time. Idempotent per (job_id, image_index, stage); returns how many were new. ``ValueError``
        (nothing written) as ``Ledger.insert_lines``."""
        with self._store.transaction() as conn:
            now = self._clock()
            written = self._ledger.insert_lines(conn, lines, attribution, now=now)
            if request is not None:
                self._savings.record(conn, lines, request, attribution, now=now)
            return written

    def _record_savings(self, conn: Connection, lines: Sequence[CostLine], job: Job) -> None:
        self._savings.record(conn, lines, job.request, job.attribution, now=self._when(job))

    def interrupted(self, job: Job, line: CostLine) -> bool:
        """Book the device time of ``job``'s attempt that was cut short (a drain ran out of time, a spot
        machine was reclaimed) and must be redone: one ``Stage.INTERRUPTED`` line billed to the job's
        attribution, so an interruption's cost shows in reports beside the receipts. Each interruption
        of a job is its own line, numbered ``image_index`` -1, -2, ... in booking order (``line``'s own
        index is ignored). True when written. ``ValueError`` (nothing written) for a line of another
        stage or job."""
        if line.stage != Stage.INTERRUPTED:
            raise ValueError("interrupted() books only Stage.INTERRUPTED lines")
        check_lines_belong(job.id, [line])
        booked = select(func.count()).where(
            cost_lines.c.job_id == job.id, cost_lines.c.stage == str(Stage.INTERRUPTED)
        )
        with self._store.transaction() as conn:
            numbered = replace(line, image_index=-1 - int(conn.execute(booked).scalar_one()))
            return self._ledger.insert_lines(conn, [numbered], job.attribution) == 1


def result_lines(result: JobResult) -> list[CostLine]:
    """A job's cost lines: the lines of its images' receipts, in image order."""
    return [line for image in result.images for line in image.receipt.lines]


def check_lines_belong(job_id: str, lines: Sequence[CostLine]) -> None:
    """``ValueError`` unless every line names ``job_id``."""
    strangers = {line.job_id for line in lines if line.job_id != job_id}
    if strangers:
        raise ValueError(f"cost lines of jobs {sorted(strangers)} passed to complete({job_id})")
