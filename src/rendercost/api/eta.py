"""A rough ETA: running jobs extrapolate their progress; queued jobs wait their position times the
recent mean job duration (an exponentially weighted mean of jobs seen finishing in this process)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from rendercost.domain.jobs import Job, JobState

SMOOTHING = 0.2  # weight of the newest duration in the mean


class EtaEstimator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mean_s: float | None = None

    def observe(self, job: Job) -> None:
        """Learn from a succeeded job's run time; other jobs are ignored."""
        if job.state != JobState.SUCCEEDED or job.started_at is None or job.finished_at is None:
            return
        seconds = (job.finished_at - job.started_at).total_seconds()
        with self._lock:
            previous = seconds if self._mean_s is None else self._mean_s
            self._mean_s = (1 - SMOOTHING) * previous + SMOOTHING * seconds

    def estimate(self, job: Job, queue_position: int | None, now: datetime | None = None) -> float | None:
        """Seconds until ``job`` is likely done; None when there is nothing to go on."""
        now = now or datetime.now(UTC)
        if job.state == JobState.RUNNING and job.started_at is not None and job.progress > 0:
            elapsed = (now - job.started_at).total_seconds()
            return round(max(0.0, elapsed * (1 - job.progress) / job.progress), 3)
        with self._lock:
            mean = self._mean_s
        if mean is None:
            return None
        if job.state == JobState.RUNNING:
            return round(mean, 3)
        if job.state == JobState.QUEUED and queue_position is not None:
            return round(mean * queue_position, 3)
        return None
