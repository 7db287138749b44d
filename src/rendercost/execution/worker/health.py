"""WorkerHealth: what a worker's ``/healthz`` answers, fed by the loop it watches.

The loop ``beat()``s at every turn and at every denoising step, so a worker rendering a long batch is
alive; one whose last beat is older than ``stall_after_s`` (a hung device, a deadlock) is not. Once
draining (SIGTERM) or stopped it is not healthy either: a load balancer or Kubernetes should send it
nothing more. Thread-safe: the loop writes, the health endpoint's thread reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_STALL_AFTER_S = 300.0  # longer than any one pipeline step on a working device


@dataclass(frozen=True)
class HealthReport:
    """One answer: healthy or not, and why (``status``: ok, starting, draining, stopped, stalled)."""

    healthy: bool
    status: str
    seconds_since_beat: float | None


class WorkerHealth:
    """See the module docstring."""

    def __init__(
        self, *, stall_after_s: float = DEFAULT_STALL_AFTER_S, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._stall_after_s = stall_after_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_beat: float | None = None
        self._draining = False
        self._stopped = False
        self._stop: threading.Event | None = None

    def watch(self, stop: threading.Event) -> None:
        """Report draining as soon as ``stop`` (the loop's stop event, set on SIGTERM) is set."""
        with self._lock:
            self._stop = stop

    def beat(self) -> None:
        """The loop is turning."""
        now = self._monotonic()
        with self._lock:
            self._last_beat = now

    def draining(self) -> None:
        """The worker stopped claiming and is finishing or releasing what it holds."""
        with self._lock:
            self._draining = True

    def stopped(self) -> None:
        """The loop returned."""
        with self._lock:
            self._stopped = True

    @property
    def is_draining(self) -> bool:
        with self._lock:
            return self._draining or (self._stop is not None and self._stop.is_set())

    def report(self) -> HealthReport:
        draining = self.is_draining
        with self._lock:
            last, stopped = self._last_beat, self._stopped
        age = None if last is None else self._monotonic() - last
        if stopped:
            return HealthReport(False, "stopped", age)
        if draining:
            return HealthReport(False, "draining", age)
        if age is None:
            return HealthReport(False, "starting", None)
        if age > self._stall_after_s:
            return HealthReport(False, "stalled", age)
        return HealthReport(True, "ok", age)
