"""BatchPlanner: turns claimed jobs into batched pipeline calls. Pure logic: no I/O, no clock of its own.

The worker calls it in a loop: ``add`` each claimed job, ``plan(now)`` to get the next batch (or a time to
wait until), run the batch, then ``finish(batch_id)`` to learn which jobs have every image rendered (or
``fail(batch_id)`` to drop the jobs of a failed batch).

How a batch is chosen:

- Waiting images are ordered by the policy's rank (interactive first; batch work that waited
  ``aging_seconds`` ranks as interactive), then by the time their job was queued, then by arrival.
- The first image in that order is the head; the batch takes, in order, the images whose
  ``spec.batch_key`` equals the head's, up to ``max_batch_size``. An incompatible image is skipped and
  keeps its place at the head of the queue for the next plan (vLLM's ``skipped_waiting_requests``).
- A job with more images than ``max_batch_size`` spreads over consecutive batches.
- A batch that is not full waits until ``max_wait_ms`` after its oldest image arrived, for more work to
  fill it; ``flush=True`` (nothing more can arrive) runs it at once.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rendercost.batching.policies import OrderPolicy, PriorityWithAging
from rendercost.domain.batch import BatchItem, BatchPlan
from rendercost.domain.jobs import Job
from rendercost.domain.specs import Priority, RenderSpec


@dataclass(frozen=True)
class PlannableJob:
    """What the planner needs to know of a claimed job."""

    job_id: str  # the queue's job id
    specs: tuple[RenderSpec, ...]  # one per image, in image order (seeds already resolved)
    priority: Priority  # planning class
    submitted_at: float  # clock seconds (same clock as ``now``) when the job was queued; drives aging

    @classmethod
    def from_job(cls, job: Job) -> PlannableJob:
        """The view of a stored job; ``submitted_at`` is its ``created_at`` as a POSIX timestamp."""
        return cls(
            job_id=job.id,
            specs=tuple(job.request.image_specs()),
            priority=job.priority,
            submitted_at=job.created_at.timestamp(),
        )


@dataclass(frozen=True)
class PlanDecision:
    """The planner's answer: run ``plan`` now, or nothing is ready before ``wait_until``, or idle."""

    plan: BatchPlan | None = None  # run this now
    wait_until: float | None = None  # no plan: call again at this clock value or when work is added

    @property
    def idle(self) -> bool:
        """Nothing is waiting at all."""
        return self.plan is None and self.wait_until is None


@dataclass
class _WaitingImage:
    item: BatchItem
    priority: Priority
    submitted_at: float
    arrived_at: float  # clock value when the planner received it; starts the max_wait timer
    seq: int  # arrival order, breaks ties


@dataclass
class _JobProgress:
    images: int  # total images of the job
    planned: set[int] = field(default_factory=set)  # image indexes handed out in a plan
    done: set[int] = field(default_factory=set)  # image indexes whose batch finished


class BatchPlanner:
    """Plans batches from claimed jobs; one instance per worker, used from one thread."""

    def __init__(
        self,
        *,
        max_batch_size: int = 4,
        max_wait_ms: float = 100.0,
        policy: OrderPolicy | None = None,
        new_batch_id: Callable[[], str] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must not be negative")
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self._policy: OrderPolicy = policy or PriorityWithAging(aging_seconds=30.0)
        self._new_batch_id = new_batch_id or (lambda: uuid.uuid4().hex)
        self._seq: Iterator[int] = itertools.count()
        self._waiting: list[_WaitingImage] = []
        self._jobs: dict[str, _JobProgress] = {}
        self._in_flight: dict[str, BatchPlan] = {}

    # -- inputs ---------------------------------------------------------------------------------------

    def add(self, job: PlannableJob, now: float) -> None:
        """Queue every image of ``job``; ``ValueError`` if the job is already held or has no images."""
        if job.job_id in self._jobs:
            raise ValueError(f"job {job.job_id} is already in the planner")
        if not job.specs:
            raise ValueError(f"job {job.job_id} has no images")
        self._jobs[job.job_id] = _JobProgress(images=len(job.specs))
        for index, spec in enumerate(job.specs):
            item = BatchItem(job_id=job.job_id, image_index=index, spec=spec)
            self._waiting.append(_WaitingImage(item, job.priority, job.submitted_at, now, next(self._seq)))

    # -- planning -------------------------------------------------------------------------------------

    def plan(self, now: float, *, flush: bool = False) -> PlanDecision:
        """The next batch to run at clock ``now``, or when to ask again. ``flush``: do not wait."""
        if not self._waiting:
            return PlanDecision()
        chosen = self._compatible_with_head(now)
        deadline = min(w.arrived_at for w in chosen) + self.max_wait_s
        if len(chosen) < self.max_batch_size and not flush and now < deadline:
            return PlanDecision(wait_until=deadline)
        taken = {id(w) for w in chosen}
        self._waiting = [w for w in self._waiting if id(w) not in taken]
        plan = BatchPlan(batch_id=self._new_batch_id(), items=tuple(w.item for w in chosen))
        for item in plan.items:
            self._jobs[item.job_id].planned.add(item.image_index)
        self._in_flight[plan.batch_id] = plan
        return PlanDecision(plan=plan)

    def wanted(self, now: float) -> int:
        """Images that would fill the next batch: how much more work is worth claiming now."""
        if not self._waiting:
            return self.max_batch_size
        return self.max_batch_size - len(self._compatible_with_head(now))

    def _compatible_with_head(self, now: float) -> list[_WaitingImage]:
        ordered = sorted(
            self._waiting,
            key=lambda w: (self._policy.rank(w.priority, w.submitted_at, now), w.submitted_at, w.seq),
        )
        key = ordered[0].item.spec.batch_key
        return [w for w in ordered if w.item.spec.batch_key == key][: self.max_batch_size]

    # -- outcomes -------------------------------------------------------------------------------------

    def finish(self, batch_id: str) -> list[str]:
        """Record that ``batch_id`` rendered; return the jobs now complete (every image rendered), in
        the order of their first item in the plan. They leave the planner."""
        plan = self._in_flight.pop(batch_id)
        complete: list[str] = []
        for item in plan.items:
            progress = self._jobs.get(item.job_id)
            if progress is None:  # dropped while the batch ran
                continue
            progress.done.add(item.image_index)
            if len(progress.done) == progress.images and item.job_id not in complete:
                complete.append(item.job_id)
        for job_id in complete:
            del self._jobs[job_id]
        return complete

    def fail(self, batch_id: str) -> list[str]:
        """Record that ``batch_id`` failed; its jobs are dropped (waiting images too) and returned."""
        plan = self._in_flight.pop(batch_id)
        job_ids = list(dict.fromkeys(item.job_id for item in plan.items if item.job_id in self._jobs))
        for job_id in job_ids:
            self.drop(job_id)
        return job_ids

    def drop(self, job_id: str) -> None:
        """Forget ``job_id`` (failed, cancelled, lost its lease); images of it in flight are ignored."""
        self._jobs.pop(job_id, None)
        self._waiting = [w for w in self._waiting if w.item.job_id != job_id]

    def take_unstarted(self) -> list[str]:
        """Remove and return the jobs none of whose images has been planned (to release on drain)."""
        unstarted = [job_id for job_id, progress in self._jobs.items() if not progress.planned]
        for job_id in unstarted:
            self.drop(job_id)
        return unstarted

    # -- views ----------------------------------------------------------------------------------------

    @property
    def job_ids(self) -> list[str]:
        """Jobs held: waiting, partly planned or in flight, in arrival order."""
        return list(self._jobs)

    @property
    def waiting_images(self) -> int:
        return len(self._waiting)

    @property
    def in_flight(self) -> int:
        """Batches planned and not yet finished or failed."""
        return len(self._in_flight)
