"""LeaseKeeper: heartbeats the leases a worker holds, from a daemon thread, while it renders."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from rendercost.execution.worker.held import HeldJobs
from rendercost.queue.protocol import JobStore

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Extends the leases on every job ``held`` holds every ``lease_seconds / 3`` until stopped.

    What is held is ``HeldJobs``'s to say (claimed until settled, failed or given back); use the keeper
    as a context manager around the worker loop. A failed heartbeat (database briefly
    away) is logged and retried at the next tick: the lease has two more ticks before it expires.
    """

    def __init__(
        self,
        store: JobStore,
        worker_id: str,
        held: HeldJobs,
        *,
        lease_seconds: float,
        interval_s: float | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._store = store
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._interval_s = interval_s if interval_s is not None else lease_seconds / 3
        self._held = held
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-keeper-{self._worker_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def beat_once(self) -> None:
        """Extend every held lease now."""
        job_ids = self._held.job_ids
        if not job_ids:
            return
        try:
            self._store.heartbeat(self._worker_id, job_ids, lease_seconds=self._lease_seconds)
        except Exception:  # the loop must outlive a transient database error
            logger.warning("heartbeat failed", exc_info=True, extra={"fields": {"jobs": len(job_ids)}})

    def _beat(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat_once()

    def __enter__(self) -> LeaseKeeper:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
