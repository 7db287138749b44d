"""HeldJobs: the one record of the jobs a worker holds, from claim to settle, and their images.

Every change is one method, named for the transition: ``claimed`` (leased from the queue, images queued
in the planner), ``plan``/``finished``/``batch_failed`` (batches planned from them and how they ended),
``image_stored`` (an image stored and priced), ``settled`` (completed, or no longer ours to complete),
``failed`` (its failure recorded), ``take_unstarted`` (released to the queue on drain), ``take_all``
(a drain out of time lets go of the rest). The batch
planner (pure logic) is fed only from here; the lease keeper heartbeats ``job_ids``; the settler reads
``attempts_in``/``assembly`` and transitions.

A job failed while settling goes back to the queue and may be claimed again by this same worker while
batches of the failed attempt are still settling. Each claim is its own ``Attempt``, and each batch
remembers the attempts it rendered for, so images and failures of an old attempt are never taken for
the new one.

Thread-safe: the worker loop, its settling thread and its lease keeper share one instance.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rendercost.batching.planner import BatchPlanner, PlanDecision, PlannableJob
from rendercost.domain.costs import CostLine
from rendercost.domain.jobs import Job
from rendercost.execution.worker.assembly import JobAssembly, StoredImage
from rendercost.ledger.pricing import rewrite_lines


@dataclass(frozen=True)
class Attempt:
    """One claim of a job by this worker; a job claimed again is a new, unequal ``Attempt``."""

    job: Job = field(compare=False)
    claim: int  # this worker's claim counter: tells two claims of one job apart (and alone compares)

    @property
    def job_id(self) -> str:
        return self.job.id


@dataclass(frozen=True)
class Refused:
    """A claimed job no plan can hold (e.g. no images): the caller fails it, not retried."""

    attempt: Attempt
    reason: str


@dataclass
class _Holding:
    attempt: Attempt
    assembly: JobAssembly


class HeldJobs:
    """The jobs one worker holds; see the module docstring."""

    def __init__(self, planner: BatchPlanner) -> None:
        self._planner = planner
        self._lock = threading.Lock()  # guards everything below and the planner
        self._held: dict[str, _Holding] = {}  # job id -> its current attempt
        self._batches: dict[str, dict[str, Attempt]] = {}  # batch id -> attempts it renders for
        self._claims: Iterator[int] = itertools.count(1)

    # -- the worker loop's transitions ------------------------------------------------------------

    def claimed(self, jobs: Sequence[Job], now: float) -> list[Refused]:
        """Hold ``jobs``, just leased, and queue their images in the planner. A job still held under
        an earlier attempt (failed here and claimed again) is superseded: that attempt's images are
        forgotten. Returns the jobs the planner refused; they stay held until ``failed``."""
        refused: list[Refused] = []
        with self._lock:
            for job in jobs:
                attempt = Attempt(job, next(self._claims))
                self._planner.drop(job.id)  # an earlier attempt's images, if any
                charged = {line.image_index: line for line in rewrite_lines(job.request, job.id)}
                self._held[job.id] = _Holding(attempt, JobAssembly(job.id, charged_before=charged))
                try:
                    self._planner.add(PlannableJob.from_job(job), now)
                except ValueError as exc:  # a stored request no plan can hold (no images)
                    refused.append(Refused(attempt, str(exc)))
        return refused

    def plan(self, now: float, *, flush: bool = False) -> PlanDecision:
        """The planner's next batch (see ``BatchPlanner.plan``); the batch remembers its attempts."""
        with self._lock:
            decision = self._planner.plan(now, flush=flush)
            if decision.plan is not None:
                job_ids = {item.job_id for item in decision.plan.items}
                self._batches[decision.plan.batch_id] = {
                    job_id: self._held[job_id].attempt for job_id in job_ids if job_id in self._held
                }
            return decision

    def finished(self, batch_id: str) -> list[Attempt]:
        """``batch_id`` rendered: the attempts whose every image is now rendered (settle them)."""
        with self._lock:
            done = self._planner.finish(batch_id)
            attempts = self._batches.get(batch_id, {})
            return [attempts[job_id] for job_id in done if job_id in attempts]

    def batch_failed(self, batch_id: str) -> list[Attempt]:
        """``batch_id`` failed: its jobs leave the planner; returns their attempts (fail them)."""
        with self._lock:
            self._planner.fail(batch_id)
            attempts = self._batches.pop(batch_id, {})
            return [attempt for attempt in attempts.values() if self._is_current(attempt)]

    def take_unstarted(self) -> list[str]:
        """Let go of the jobs none of whose images was planned, and return them (release them)."""
        with self._lock:
            unstarted = self._planner.take_unstarted()
            for job_id in unstarted:
                self._held.pop(job_id, None)
            return unstarted

    def take_all(self) -> list[tuple[Attempt, JobAssembly]]:
        """Let go of every job still held (a drain whose time ran out) and return each attempt with
        the images it had gathered (release them; their device time is lost work)."""
        with self._lock:
            taken = [(holding.attempt, holding.assembly) for holding in self._held.values()]
            for job_id in self._held:
                self._planner.drop(job_id)
            self._held.clear()
            self._batches.clear()
            return taken

    # -- the settler's transitions ----------------------------------------------------------------

    def attempts_in(self, batch_id: str) -> dict[str, Attempt]:
        """The attempts ``batch_id`` rendered for that are still held, by job id; the batch is
        forgotten (call once, when settling it)."""
        with self._lock:
            attempts = self._batches.pop(batch_id, {})
            return {job_id: a for job_id, a in attempts.items() if self._is_current(a)}

    def charged_before(self, attempt: Attempt, image_index: int) -> CostLine | None:
        """The line billed for the image before it rendered (its prompt-rewrite share), if any."""
        with self._lock:
            holding = self._held.get(attempt.job_id)
            return holding.assembly.charged_before.get(image_index) if holding else None

    def image_stored(self, attempt: Attempt, image: StoredImage) -> None:
        """One image of ``attempt`` is stored and priced (ignored once the attempt is let go)."""
        with self._lock:
            if self._is_current(attempt):
                self._held[attempt.job_id].assembly.add(image)

    def assembly(self, attempt: Attempt) -> JobAssembly | None:
        """The images of ``attempt`` gathered so far; None once it was let go."""
        with self._lock:
            return self._held[attempt.job_id].assembly if self._is_current(attempt) else None

    def settled(self, attempt: Attempt) -> None:
        """``attempt`` was completed (or is no longer this worker's to complete): let it go."""
        self._let_go(attempt)

    def failed(self, attempt: Attempt) -> None:
        """``attempt``'s failure was recorded: let it go, its other images too."""
        self._let_go(attempt)

    # -- views ------------------------------------------------------------------------------------

    def holds(self, attempt: Attempt) -> bool:
        """True while ``attempt`` is the held attempt of its job."""
        with self._lock:
            return self._is_current(attempt)

    @property
    def job_ids(self) -> list[str]:
        """The jobs held (their leases are this worker's to keep alive)."""
        with self._lock:
            return sorted(self._held)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._held)

    @property
    def planning(self) -> bool:
        """True while the planner holds images of some job (waiting, partly planned or in flight)."""
        with self._lock:
            return bool(self._planner.job_ids)

    @property
    def max_batch_size(self) -> int:
        return self._planner.max_batch_size

    def wanted(self, now: float) -> int:
        """Images that would fill the next batch (see ``BatchPlanner.wanted``)."""
        with self._lock:
            return self._planner.wanted(now)

    def progress(self, job_id: str, images_in_flight: float) -> float | None:
        """Fraction of ``job_id`` done when ``images_in_flight`` more of its images are rendered."""
        with self._lock:
            holding = self._held.get(job_id)
            if holding is None or not holding.attempt.job.request.n:
                return None
            return min((holding.assembly.count + images_in_flight) / holding.attempt.job.request.n, 1.0)

    def _is_current(self, attempt: Attempt) -> bool:
        holding = self._held.get(attempt.job_id)
        return holding is not None and holding.attempt == attempt

    def _let_go(self, attempt: Attempt) -> None:
        with self._lock:
            if self._is_current(attempt):
                del self._held[attempt.job_id]
                self._planner.drop(attempt.job_id)
