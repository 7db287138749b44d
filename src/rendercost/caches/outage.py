"""One remote dependency's health as this process sees it, so an outage is logged once and not paid
for on every call.

``failed(error)`` opens an outage (the first failure logs a warning; later ones are only counted) and
makes ``available()`` false for ``cooldown_s``, so callers skip the remote call and degrade at once;
after the cool-down the next call probes again. ``succeeded()`` ends the outage (logged at info).
Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

DEFAULT_COOLDOWN_S = 1.0  # after a failure, calls skip the remote for this long before probing again

log = logging.getLogger(__name__)


class Outage:
    """Tracks whether ``name`` (e.g. "redis (embedding cache)") answers; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self.failures = 0  # failed calls, all outages together

    @property
    def down(self) -> bool:
        with self._lock:
            return self._down_since is not None

    def available(self) -> bool:
        """False while an outage's cool-down runs: skip the call and degrade."""
        with self._lock:
            return self._down_since is None or self._clock() >= self._retry_at

    def failed(self, error: BaseException) -> None:
        now = self._clock()
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = now
            self._retry_at = now + self.cooldown_s
            self.failures += 1
        if first:
            log.warning(
                "%s unavailable (%s: %s); degrading until it answers", self.name, type(error).__name__, error
            )

    def succeeded(self) -> None:
        now = self._clock()
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.info("%s answers again after %.1f s", self.name, now - since)
