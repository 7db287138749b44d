"""The discrete-event replay: arrivals through a simulated fleet of workers, batch by batch.

``replay(jobs, fleet)`` runs one event loop over seconds (floats; no money here):

- Arrivals are read in time order; a job answered by the exact-result cache never queues.
- Queues hold jobs per (call shape, priority). A free worker takes the head, the oldest job of the
  best rank (interactive, or batch work waiting ``aging_s``), then fills the call with images of the
  SAME shape (preset and size: compatible only) up to ``max_batch``. A call that is not full waits
  until ``max_wait_s`` after its head arrived, as the worker's BatchPlanner does.
- A call of ``k`` images takes ``fixed + per_image * k`` seconds (``capacity.costmodel.CallShape``).
- Fleet: ``workers`` fixed, or autoscaled between ``min_workers`` and ``max_workers`` on queue depth
  (KEDA's rule: ``ceil(queued jobs / jobs_per_worker)``); a new worker is ready after ``cold_start_s``
  and one idle for ``idle_tail_s`` is removed (never below the minimum).
- Spot: each worker is interrupted after an exponential time (rate ``interruptions_per_hour``, a seeded
  generator: the replay is deterministic); its call is lost (re-queued at the head, the seconds
  counted as wasted) and a replacement starts ``replacement_s`` later, cold.

The result holds per-job waits and latencies, busy and wasted seconds, and every worker session
(start, end, cold seconds) so ``capacity.billing`` can price it under any billing rule.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass

_FINISH, _READY, _TIMER, _IDLE, _INTERRUPT = 0, 1, 2, 3, 4  # event kinds


@dataclass(frozen=True)
class ReplayJobs:
    """The workload as arrays (index = job), in arrival order."""

    at_s: tuple[float, ...]  # arrival second
    shape: tuple[int, ...]  # index into ``fixed_s`` / ``per_image_s``
    images: tuple[int, ...]  # images to render
    batch_priority: tuple[bool, ...]  # True for batch-priority jobs (ranked after interactive)
    hit: tuple[bool, ...]  # answered by the exact-result cache (not rendered)
    fixed_s: tuple[float, ...]  # per shape: seconds per call
    per_image_s: tuple[float, ...]  # per shape: seconds per image


@dataclass(frozen=True)
class Fleet:
    """How many workers and how they batch, scale and fail."""

    workers: int = 1  # fixed fleet size (ignored when autoscale)
    autoscale: bool = False  # scale on queue depth between min and max
    min_workers: int = 0  # autoscale lower bound
    max_workers: int = 1  # autoscale upper bound
    jobs_per_worker: int = 4  # autoscale target: queued jobs per worker (KEDA's target value)
    cold_start_s: float = 0.0  # model load before a new worker takes work
    idle_tail_s: float = 60.0  # an autoscaled worker idle this long is removed
    max_batch: int = 4  # images per call
    max_wait_s: float = 0.0  # a call that is not full waits this long after its head arrived
    aging_s: float = 30.0  # batch work waiting this long ranks as interactive
    interruptions_per_hour: float = 0.0  # spot interruptions per worker-hour
    replacement_s: float = 120.0  # capacity missing after an interruption
    seed: int = 0  # interruption generator seed


@dataclass(frozen=True)
class Session:
    """One worker's life: billed from ``start`` (cold start included) to ``end``."""

    start: float  # second it was requested
    end: float  # second it stopped
    cold_s: float  # seconds of it spent loading the model


@dataclass(frozen=True)
class ReplayResult:
    """What happened in the replay."""

    wait_s: tuple[float, ...]  # per job: first call start - arrival (0 for cache hits)
    latency_s: tuple[float, ...]  # per job: last image done - arrival (0 for cache hits)
    shape_busy_s: tuple[float, ...]  # per shape: device-seconds of calls that completed
    busy_s: float  # device-seconds of completed calls
    wasted_s: float  # device-seconds lost to interruptions
    calls: int  # pipeline calls completed
    sessions: tuple[Session, ...]  # every worker session
    interruptions: int  # spot interruptions
    peak_workers: int  # most workers alive at once
    end_s: float  # when the last session ended


def replay(jobs: ReplayJobs, fleet: Fleet, span_s: float) -> ReplayResult:
    """Replay ``jobs`` through ``fleet`` over a window of ``span_s`` seconds (the fleet lives at least
    that long); deterministic for equal inputs."""
    if fleet.max_batch < 1 or (not fleet.autoscale and fleet.workers < 1):
        raise ValueError("max_batch and workers must be >= 1")
    return _Loop(jobs, fleet, span_s).run()


class _Loop:
    """The replay's state and its event handlers; ``run`` is the only entry point."""

    def __init__(self, jobs: ReplayJobs, fleet: Fleet, span_s: float) -> None:
        self.jobs, self.fleet, self.span = jobs, fleet, span_s
        count = len(jobs.at_s)
        self.events: list[tuple[float, int, int, int, int]] = []  # (time, seq, kind, worker, generation)
        self.seq = 0
        self.queues: dict[tuple[int, bool], deque[int]] = {}
        self.left = list(jobs.images)  # images not yet handed out, per job
        self.pending = list(jobs.images)  # images not yet rendered, per job
        self.wait = [0.0] * count
        self.latency = [0.0] * count
        self.started = [False] * count
        self.queued_jobs = 0
        self.shape_left = [0] * len(jobs.fixed_s)  # images queued per shape
        self.shape_busy = [0.0] * len(jobs.fixed_s)
        self.busy = self.wasted = 0.0
        self.calls = self.interruptions = self.peak = 0
        self.idle: list[int] = []  # free workers
        self.idle_since: dict[int, float] = {}
        self.running: dict[
            int, tuple[float, list[tuple[int, int]], int]
        ] = {}  # worker -> (start, items, shape)
        self.generation: dict[int, int] = {}  # worker -> live generation (a stale event is ignored)
        self.born: dict[int, tuple[float, float]] = {}  # worker -> (session start, cold seconds)
        self.next_worker = 0
        self.sessions: list[Session] = []
        self.timer_at = math.inf
        self.rng = random.Random(fleet.seed)  # noqa: S311  seeded simulation, not security
        self.now = 0.0

    def run(self) -> ReplayResult:
        initial = self.fleet.min_workers if self.fleet.autoscale else self.fleet.workers
        for _ in range(initial):
            self._ready(self._spawn(0.0, cold=False))
        jobs, n, i = self.jobs, len(self.jobs.at_s), 0
        while i < n or self.events:
            if i < n and (not self.events or jobs.at_s[i] <= self.events[0][0]):
                self.now = jobs.at_s[i]
                self._arrive(i)
                i += 1
            else:
                time, _, kind, worker, gen = heapq.heappop(self.events)
                self.now = time
                self._handle(kind, worker, gen)
            upcoming = min(
                jobs.at_s[i] if i < n else math.inf, self.events[0][0] if self.events else math.inf
            )
            if upcoming > self.now:  # everything of this instant is in: plan the calls
                self._dispatch(i < n)
        return self._result()

    # -- events ------------------------------------------------------------------------------------

    def _push(self, time: float, kind: int, worker: int = -1, gen: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (time, self.seq, kind, worker, gen))

    def _handle(self, kind: int, worker: int, gen: int) -> None:
        if kind == _TIMER:
            self.timer_at = math.inf
        elif self.generation.get(worker) != gen:
            return  # the worker was interrupted or removed since
        elif kind == _FINISH:
            self._finish(worker)
        elif kind == _READY:
            self._ready(worker)
        elif kind == _IDLE:
            self._maybe_remove(worker)
        else:
            self._interrupt(worker)

    def _arrive(self, job: int) -> None:
        if self.jobs.hit[job]:
            return
        key = (self.jobs.shape[job], self.jobs.batch_priority[job])
        self.queues.setdefault(key, deque()).append(job)
        self.queued_jobs += 1
        self.shape_left[key[0]] += self.jobs.images[job]
        self._scale_up()

    def _spawn(self, at: float, *, cold: bool) -> int:
        worker = self.next_worker
        self.next_worker += 1
        self.generation[worker] = 0
        cold_s = self.fleet.cold_start_s if cold else 0.0
        self.born[worker] = (at, cold_s)
        self.peak = max(self.peak, len(self.born))
        return worker

    def _ready(self, worker: int) -> None:
        self.idle.append(worker)
        self.idle_since[worker] = self.now
        if self.fleet.interruptions_per_hour > 0:
            gap = self.rng.expovariate(self.fleet.interruptions_per_hour / 3600.0)
            if self.now + gap < self.span:  # the window's end: a drain is never interrupted
                self._push(self.now + gap, _INTERRUPT, worker, self.generation[worker])
        self._schedule_idle_check(worker)

    def _schedule_idle_check(self, worker: int) -> None:
        if self.fleet.autoscale:
            self._push(self.now + self.fleet.idle_tail_s, _IDLE, worker, self.generation[worker])

    def _scale_up(self) -> None:
        if not self.fleet.autoscale:
            return
        want = min(self.fleet.max_workers, -(-self.queued_jobs // max(self.fleet.jobs_per_worker, 1)))
        while len(self.born) < want:
            worker = self._spawn(self.now, cold=True)
            self._push(self.now + self.fleet.cold_start_s, _READY, worker, 0)

    def _maybe_remove(self, worker: int) -> None:
        since = self.idle_since.get(worker)
        if since is None or self.now - since < self.fleet.idle_tail_s - 1e-9:
            return
        if len(self.born) <= self.fleet.min_workers:
            return
        self.idle.remove(worker)
        del self.idle_since[worker]
        self._end(worker)

    def _end(self, worker: int) -> None:
        start, cold = self.born.pop(worker)
        self.generation[worker] = -1
        self.sessions.append(Session(start=start, end=self.now, cold_s=cold))

    def _interrupt(self, worker: int) -> None:
        self.interruptions += 1
        if worker in self.running:
            began, items, _ = self.running.pop(worker)
            self.wasted += self.now - began
            for job, count in reversed(items):
                self._requeue(job, count)
        else:
            self.idle.remove(worker)
            self.idle_since.pop(worker, None)
        self._end(worker)
        replacement = self._spawn(self.now + self.fleet.replacement_s, cold=True)
        self._push(self.now + self.fleet.replacement_s + self.fleet.cold_start_s, _READY, replacement, 0)

    def _requeue(self, job: int, count: int) -> None:
        key = (self.jobs.shape[job], self.jobs.batch_priority[job])
        queue = self.queues.setdefault(key, deque())
        if self.left[job] == 0:
            queue.appendleft(job)
            self.queued_jobs += 1
        self.left[job] += count
        self.shape_left[key[0]] += count

    def _finish(self, worker: int) -> None:
        began, items, shape = self.running.pop(worker)
        seconds = self.now - began
        self.busy += seconds
        self.shape_busy[shape] += seconds
        self.calls += 1
        for job, count in items:
            self.pending[job] -= count
            if self.pending[job] == 0:
                self.latency[job] = self.now - self.jobs.at_s[job]
        self.idle.append(worker)
        self.idle_since[worker] = self.now
        self._schedule_idle_check(worker)

    # -- dispatch ----------------------------------------------------------------------------------

    def _dispatch(self, more_coming: bool) -> None:
        while self.idle and self.queued_jobs:
            key = self._head()
            if not self._ready_to_run(key, more_coming):
                return
            self._start(self.idle.pop(), key)

    def _head(self) -> tuple[int, bool]:
        best, best_rank = None, (2, math.inf)
        for key, queue in self.queues.items():
            arrived = self.jobs.at_s[queue[0]]
            aged = not key[1] or self.now - arrived >= self.fleet.aging_s
            rank = (0 if aged else 1, arrived)
            if rank < best_rank:
                best, best_rank = key, rank
        assert best is not None  # noqa: S101  queued_jobs > 0
        return best

    def _ready_to_run(self, key: tuple[int, bool], more_coming: bool) -> bool:
        """True when the head's call may start now; else a timer wakes the loop at its deadline."""
        if self.fleet.max_wait_s <= 0 or not more_coming:
            return True
        images = self.shape_left[key[0]]
        deadline = self.jobs.at_s[self.queues[key][0]] + self.fleet.max_wait_s
        if images >= self.fleet.max_batch or self.now >= deadline:
            return True
        if deadline < self.timer_at:
            self.timer_at = deadline
            self._push(deadline, _TIMER)
        return False

    def _same_shape(self, key: tuple[int, bool]) -> list[tuple[int, bool]]:
        other = (key[0], not key[1])
        return [key, other] if other in self.queues else [key]

    def _start(self, worker: int, key: tuple[int, bool]) -> None:
        self.idle_since.pop(worker, None)
        items: list[tuple[int, int]] = []
        room = self.fleet.max_batch
        for k in self._same_shape(key):
            queue = self.queues[k]
            while queue and room:
                job = queue[0]
                take = min(room, self.left[job])
                self.left[job] -= take
                room -= take
                items.append((job, take))
                if not self.started[job]:
                    self.started[job] = True
                    self.wait[job] = self.now - self.jobs.at_s[job]
                if self.left[job] == 0:
                    queue.popleft()
                    self.queued_jobs -= 1
            if not queue:
                del self.queues[k]
        shape = key[0]
        self.shape_left[shape] -= self.fleet.max_batch - room
        images = self.fleet.max_batch - room
        duration = self.jobs.fixed_s[shape] + self.jobs.per_image_s[shape] * images
        self.running[worker] = (self.now, items, shape)
        self._push(self.now + duration, _FINISH, worker, self.generation[worker])

    def _result(self) -> ReplayResult:
        end = max(self.now, self.span)
        self.now = end
        for worker in list(self.born):
            self._end(worker)
        return ReplayResult(
            wait_s=tuple(self.wait),
            latency_s=tuple(self.latency),
            shape_busy_s=tuple(self.shape_busy),
            busy_s=self.busy,
            wasted_s=self.wasted,
            calls=self.calls,
            sessions=tuple(self.sessions),
            interruptions=self.interruptions,
            peak_workers=self.peak,
            end_s=end,
        )
