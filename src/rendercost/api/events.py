"""Wake requests that wait for a job, from whichever thread finished it.

The in-process worker's ``on_settled`` hook (a worker thread) and the cancel route call ``notify``,
passing the finished ``Job`` when they have it so the waiter need not read it back. A request awaiting
its job registers with ``watch`` before reading the job's state, so a finish between the read and the
wait is never missed. Jobs finished by another process are found by the waiter's fallback polling.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rendercost.domain.jobs import Job


@dataclass
class Watch:
    """One waiter: ``changed`` is set on notify; ``job`` is the job as the notifier saw it, if given."""

    loop: asyncio.AbstractEventLoop
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    job: Job | None = None


class JobEvents:
    """Thread-safe fan-out of "this job changed" signals to coroutines on one or more loops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[Watch]] = {}

    @contextmanager
    def watch(self, job_id: str) -> Iterator[Watch]:
        """A ``Watch`` notified by ``notify(job_id)`` while the block runs (enter it on the loop)."""
        entry = Watch(loop=asyncio.get_running_loop())
        with self._lock:
            self._waiters.setdefault(job_id, []).append(entry)
        try:
            yield entry
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id, [])
                if entry in waiters:
                    waiters.remove(entry)
                if not waiters:
                    self._waiters.pop(job_id, None)

    def notify(self, job_id: str, job: Job | None = None) -> None:
        """Wake everyone watching ``job_id``; callable from any thread."""
        with self._lock:
            waiters = list(self._waiters.get(job_id, ()))
        for entry in waiters:
            entry.job = job
            try:
                entry.loop.call_soon_threadsafe(entry.changed.set)
            except RuntimeError:  # that loop has closed
                continue
