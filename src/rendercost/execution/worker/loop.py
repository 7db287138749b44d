"""The worker: one loop per device that turns queued jobs into stored, billed images.

Each turn of the loop is three verbs, like vLLM's ``EngineCore.step()``:

1. **claim + plan** — lease as many jobs as the next batch can use (``BatchPlanner.wanted``) and ask the
   planner for a batch (or how long to wait for one to fill);
2. **run** — ``runner.run(plan)`` renders the batch as one pipeline call, timing each stage;
3. **settle** — hand the result to the ``Settler`` (``worker.settle``), which prices each image, embeds
   that receipt in the file, stores it, and for each job whose images are all in calls
   ``Biller.complete`` (result, cost lines and artifact rows in ONE transaction). It does so on its own
   thread while the device renders the next batch.

The jobs the worker holds, from claim to settle, live in one ``HeldJobs`` (``worker.held``): it feeds
the planner, the lease keeper heartbeats what it holds, and the settler reads and transitions it.

``run_forever(stop)`` is what ``rendercost worker`` calls, once per process; it polls the queue every
``poll_interval_s`` when idle and returns after ``stop`` is set (SIGTERM), having released the jobs
claimed but not started and finished the jobs already started. With ``drain_seconds`` set, finishing
has that long: a batch still rendering then is cut short, every job still held is released, and the
device time spent on them is booked as ``interrupted`` lines (``worker.interrupt``). ``priorities``
limits what it claims (spot workers take only batch work). ``run_burst()`` drains the queue and returns
(tests and ``rendercost batch`` use it). A runner error fails every job of its
batch (``InvalidRequest``: not retried); leases are heartbeated by a thread while the loop works.
Several workers (threads or processes) may share one database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection

from rendercost.artifacts.metadata import embed_receipt
from rendercost.artifacts.protocol import ArtifactStore
from rendercost.batching.planner import BatchPlanner
from rendercost.domain.batch import BatchPlan
from rendercost.domain.runner import Runner, StepCallback
from rendercost.domain.specs import Priority
from rendercost.errors import InvalidRequest, RenderCostError
from rendercost.execution.worker.health import WorkerHealth
from rendercost.execution.worker.held import HeldJobs
from rendercost.execution.worker.interrupt import DrainClock, DrainTimeout, LostWork, interrupted_line
from rendercost.execution.worker.leases import LeaseKeeper
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.execution.worker.settle import Embedder, SettledHook, Settler, WorkerStats
from rendercost.ledger.billing import Biller
from rendercost.queue.claims import ALL_PRIORITIES
from rendercost.queue.protocol import JobStore

__all__ = ["SettledHook", "Worker", "WorkerStats"]

logger = logging.getLogger(__name__)


class Worker:
    """Claims, plans, renders, stores and settles jobs; one per device. Not thread-safe: give each
    thread its own ``Worker`` (they may share the store, the artifact store and a locked runner)."""

    def __init__(
        self,
        store: JobStore,
        runner: Runner,
        artifacts: ArtifactStore,
        planner: BatchPlanner,
        pricing: WorkerPricing,
        *,
        biller: Biller,
        worker_id: str,
        lease_seconds: float = 60.0,
        poll_interval_s: float = 0.25,
        progress_interval_s: float = 0.5,
        max_held_jobs: int | None = None,
        pipelined: bool = True,
        clock: Callable[[], float] = time.time,
        embed: Embedder = embed_receipt,
        on_settled: SettledHook | None = None,
        priorities: Collection[Priority] = ALL_PRIORITIES,
        drain_seconds: float | None = None,
        health: WorkerHealth | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.worker_id = worker_id
        self.stats = WorkerStats()
        self.health = health or WorkerHealth()
        self._store = store
        self._runner = runner
        self._biller = biller
        self._pricing = pricing
        self._priorities = frozenset(priorities)
        self._drain_seconds = drain_seconds
        self._monotonic = monotonic
        self._drain = DrainClock(threading.Event(), None)
        self._lost = LostWork()
        self._held = HeldJobs(planner)
        self._lease_seconds = lease_seconds
        self._poll_interval_s = poll_interval_s
        self._progress_interval_s = progress_interval_s
        self._max_held_jobs = max_held_jobs or 4 * planner.max_batch_size
        self._clock = clock
        self._leases = LeaseKeeper(store, worker_id, self._held, lease_seconds=lease_seconds)
        self._settler = Settler(
            store,
            artifacts,
            pricing,
            self._held,
            biller=biller,
            worker_id=worker_id,
            stats=self.stats,
            embed=embed,
            on_settled=on_settled,
            pipelined=pipelined,
        )
        self._last_requeue = float("-inf")

    @property
    def held_count(self) -> int:
        """Jobs this worker holds now (claimed, not yet settled or let go)."""
        return self._held.count

    # -- the loop -------------------------------------------------------------------------------------

    def run_burst(self, stop: threading.Event | None = None) -> WorkerStats:
        """Run until the queue has nothing runnable and nothing is held (or ``stop`` is set), then
        return. Never sleeps: a batch that is not full runs as soon as the queue has no more for it."""
        return self._run(stop or threading.Event(), burst=True)

    def run_forever(self, stop: threading.Event) -> WorkerStats:
        """Run until ``stop`` is set, then drain (see the module docstring) and return."""
        return self._run(stop, burst=False)

    def _run(self, stop: threading.Event, *, burst: bool) -> WorkerStats:
        self._drain = DrainClock(stop, self._drain_seconds, monotonic=self._monotonic)
        self.health.watch(stop)
        self._requeue_expired(force=True)
        try:
            with self._leases, self._settler:
                while not stop.is_set():
                    self.health.beat()
                    try:
                        if not self._step(stop, burst=burst):
                            break
                    except Exception:  # e.g. the database is briefly away: a long-running worker waits
                        if burst:
                            raise
                        logger.exception("worker step failed; retrying")
                        stop.wait(self._poll_interval_s)
                self.health.draining()
                self._finish_held()
        finally:
            self.health.stopped()
        return self.stats

    def _step(self, stop: threading.Event, *, burst: bool) -> bool:
        """One turn: claim, plan, run or wait. False when a burst run has nothing left to do."""
        now = self._clock()
        queue_may_have_more = self._claim(now)
        decision = self._held.plan(now, flush=burst and not queue_may_have_more)
        if decision.plan is not None:
            self._execute(decision.plan)
            return True
        if decision.idle:
            if burst:  # done, unless settling put work back (a retry) or a dead worker's lease ran out
                self._settler.wait_idle()
                if self._requeue_expired(force=True) > 0:
                    return True
                self._claim(self._clock())
                return self._held.planning
            self._requeue_expired()
            stop.wait(self._poll_interval_s)
            return True
        if not burst and decision.wait_until is not None:  # a burst run claims again instead
            stop.wait(max(0.0, min(decision.wait_until - now, self._poll_interval_s)))
        return True

    def _finish_held(self) -> None:
        """Stopping: give back what was claimed but not started; finish the jobs already started, or,
        once the drain's time is up, release them and book their device time as interrupted."""
        unstarted = self._held.take_unstarted()
        if unstarted:
            self._store.release(self.worker_id, unstarted)
        while (plan := self._held.plan(self._clock(), flush=True).plan) is not None:
            if self._drain.expired():
                self._cut_short(plan, 0.0)
            else:
                self._execute(plan)
        self._settler.wait_idle()
        self._release_interrupted()

    def _cut_short(self, plan: BatchPlan, seconds: float) -> None:
        """``plan`` was abandoned after ``seconds`` on the device; its jobs stay held, to be released."""
        self._lost.batch_cut_short(plan, seconds)
        self._held.batch_failed(plan.batch_id)

    def _release_interrupted(self) -> None:
        """Release every job still held (a drain out of time) after booking its lost device time."""
        left = self._held.take_all()
        if not left:
            return
        for attempt, assembly in left:
            seconds = self._lost.seconds(attempt.job_id, assembly)
            if seconds <= 0:
                continue
            line = interrupted_line(attempt.job, seconds, self._pricing, worker_id=self.worker_id)
            try:
                self._biller.interrupted(attempt.job, line)
            except Exception:  # the job is released all the same; the loss goes unbooked, logged
                logger.exception(
                    "booking interrupted work failed", extra={"fields": {"job_id": attempt.job_id}}
                )
        job_ids = [attempt.job_id for attempt, _ in left]
        self._store.release(self.worker_id, job_ids)
        logger.warning(
            "drain time ran out: released %d jobs", len(job_ids), extra={"fields": {"jobs": job_ids}}
        )

    # -- claim ----------------------------------------------------------------------------------------

    def _claim(self, now: float) -> bool:
        """Lease jobs the next batch could use; True when the queue may hold more of them."""
        room = self._max_held_jobs - self._held.count
        limit = min(self._held.wanted(now), room)
        if limit <= 0:
            return room > 0
        jobs = self._store.claim(
            self.worker_id, limit, lease_seconds=self._lease_seconds, priorities=self._priorities
        )
        for refused in self._held.claimed(jobs, now):
            self._settler.fail([refused.attempt], refused.reason, retryable=False)
        return len(jobs) == limit

    def _requeue_expired(self, *, force: bool = False) -> int:
        """Put back jobs whose worker died (every half lease at most, unless forced)."""
        now = self._clock()
        if not force and now - self._last_requeue < self._lease_seconds / 2:
            return 0
        self._last_requeue = now
        return self._store.requeue_expired()

    # -- run ------------------------------------------------------------------------------------------

    def _execute(self, plan: BatchPlan) -> None:
        """Run one plan and hand the result to the settler; a runner error fails the batch's jobs, and
        a drain whose time runs out mid-batch abandons it."""
        started = self._monotonic()
        try:
            result = self._runner.run(plan, on_step=self._progress_reporter(plan))
        except DrainTimeout:
            self._cut_short(plan, self._monotonic() - started)
            return
        except Exception as exc:  # every failure of a batch fails its jobs; the loop goes on
            self._fail_batch(plan, exc)
            return
        self.stats.batches += 1
        self.stats.images += plan.size
        self.stats.device_seconds += sum(result.stage_seconds.values())
        self._settler.submit(plan, result, self._held.finished(plan.batch_id))

    def _progress_reporter(self, plan: BatchPlan) -> StepCallback:
        """An ``on_step`` that writes each job's progress at most every ``progress_interval_s``."""
        per_job: dict[str, int] = {}
        for item in plan.items:
            per_job[item.job_id] = per_job.get(item.job_id, 0) + 1
        last_write = self._clock()

        def on_step(done: int, total: int) -> None:
            nonlocal last_write
            self.health.beat()
            self._drain.check()
            now = self._clock()
            if now - last_write < self._progress_interval_s or total <= 0:
                return
            last_write = now
            for job_id, count in per_job.items():
                progress = self._held.progress(job_id, count * done / total)
                if progress is None:
                    continue
                try:
                    self._store.set_progress(job_id, progress)
                except RenderCostError:  # a cancelled job; settling will notice
                    continue

        return on_step

    def _fail_batch(self, plan: BatchPlan, exc: Exception) -> None:
        retryable = not isinstance(exc, InvalidRequest)
        message = exc.message if isinstance(exc, RenderCostError) else f"{type(exc).__name__}: {exc}"
        logger.warning(
            "batch failed: %s",
            message,
            exc_info=retryable,
            extra={"fields": {"batch_id": plan.batch_id, "retryable": retryable}},
        )
        self._settler.fail(self._held.batch_failed(plan.batch_id), message, retryable=retryable)
