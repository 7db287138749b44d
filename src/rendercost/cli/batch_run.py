"""Running a batch file's jobs to the end: enqueue idempotently, run worker threads, track outcomes.

Every line is queued under an idempotency key derived from its text, so running the same file again
(after a crash, a kill -9, Ctrl-C) finds the jobs already done and renders only what is missing. A line
whose earlier job was dead-lettered or cancelled is queued again under a numbered key (``-r2``, ...).
Every line goes through the front door (``Admission``, tenant ``cli``): a line the exact-result cache
can answer (fixed seed, same weights and spec as an earlier render) is not queued: its job is stored
already succeeded, at $0 with the cost avoided.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from rendercost.cli.batch_lines import BatchLine
from rendercost.domain.jobs import TERMINAL_STATES, Job, JobState
from rendercost.domain.money import ZERO
from rendercost.queue.protocol import JobStore

if TYPE_CHECKING:
    from rendercost.admission.front_door import Admission
    from rendercost.execution.worker.loop import Worker

TENANT = "cli"  # owner of the jobs `rendercost batch` queues (``cli.local_queue.CLI_TENANT``)
RETRY_KEY_LIMIT = 100  # re-queues of one line (after dead-letters) before giving up on it
POLL_INTERVAL_S = 5.0  # how often jobs are re-read from the database (others may settle them)

WorkerFactory = Callable[[int], "Worker"]  # thread index -> its worker


@dataclass
class Progress:
    """Outcomes so far; read by the progress display, written by worker threads under ``lock``."""

    total: int  # distinct jobs
    done: int = 0
    failed: int = 0
    cost: Decimal = ZERO  # USD of the jobs settled so far
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Event = field(default_factory=threading.Event)


def enqueue_lines(admission: Admission, lines: Sequence[BatchLine]) -> dict[int, Job]:
    """Admit every line (queued, or its earlier job found, or answered from the result cache; a
    no-store line is never looked up); line number -> job."""
    from rendercost.admission.ticket import Ticket  # the front door's imports: only when a batch runs

    jobs: dict[int, Job] = {}
    for line in lines:
        for attempt in range(1, RETRY_KEY_LIMIT + 1):
            key = line.idempotency_key if attempt == 1 else f"{line.idempotency_key}-r{attempt}"
            ticket = Ticket(TENANT, line.request, cache=line.request.cache.mode, idempotency_key=key)
            answered = admission.admit(ticket).job
            assert answered is not None  # noqa: S101  the CLI asks for cache answers as jobs
            job = answered
            if job.state not in (JobState.FAILED, JobState.CANCELLED):
                break
        jobs[line.number] = job
    return jobs


class BatchRun:
    """Runs the jobs of one batch file with ``workers`` worker threads until each is terminal."""

    def __init__(self, store: JobStore, jobs: dict[int, Job]) -> None:
        self._store = store
        self._jobs = {job.id: job for job in jobs.values()}
        self._outstanding = {job.id for job in self._jobs.values() if job.state not in TERMINAL_STATES}
        finished = [job for job in self._jobs.values() if job.state in TERMINAL_STATES]
        self.already_done = sum(job.state is JobState.SUCCEEDED for job in finished)
        self.progress = Progress(total=len(self._jobs))
        for job in finished:
            self._count(job)

    def on_settled(self, job_id: str, job: Job | None, error: str | None) -> None:
        """Worker hook: a job of ours succeeded, or failed (retry or dead-letter: read it to know)."""
        if job_id not in self._jobs:
            return
        self._record(job if job is not None else self._store.get(job_id))

    def run(self, make_worker: WorkerFactory, *, workers: int, tick: Callable[[], None]) -> None:
        """Run ``workers`` threads until every job is terminal; call ``tick`` at least twice a second."""
        if not self._outstanding:
            return
        stop = threading.Event()
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=self._work, args=(make_worker(i), stop, errors), daemon=True)
            for i in range(workers)
        ]
        for thread in threads:
            thread.start()
        try:
            self._wait(threads, errors, tick)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]

    def final_jobs(self) -> dict[str, Job]:
        """Every job as stored now, by id."""
        return {job_id: self._store.get(job_id) for job_id in self._jobs}

    def _wait(
        self, threads: list[threading.Thread], errors: list[BaseException], tick: Callable[[], None]
    ) -> None:
        last_poll = time.monotonic()
        while self._pending():
            self.progress.changed.wait(0.5)
            self.progress.changed.clear()
            tick()
            if errors or not any(thread.is_alive() for thread in threads):
                return
            if time.monotonic() - last_poll >= POLL_INTERVAL_S:  # settled elsewhere, or dead-lettered
                last_poll = time.monotonic()
                for job_id in self._pending():
                    self._record(self._store.get(job_id))

    @staticmethod
    def _work(worker: Worker, stop: threading.Event, errors: list[BaseException]) -> None:
        try:
            worker.run_forever(stop)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    def _pending(self) -> list[str]:
        with self.progress.lock:
            return list(self._outstanding)

    def _record(self, job: Job) -> None:
        with self.progress.lock:
            if job.id not in self._outstanding or job.state not in TERMINAL_STATES:
                return
            self._outstanding.discard(job.id)
            self._count(job)
        self.progress.changed.set()

    def _count(self, job: Job) -> None:
        if job.state is JobState.SUCCEEDED:
            self.progress.done += 1
            self.progress.cost += job.result.cost if job.result is not None else ZERO
        else:
            self.progress.failed += 1
