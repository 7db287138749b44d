"""Rate limits per API key and per tenant, on requests and on images, with the ``limits`` library.

Four moving-window limits per minute (any of them 0 is off): requests per key, requests per tenant,
images per key, images per tenant. A request is admitted only if every applicable limit has room for
it (the images limits count ``n``); then all are charged. The response carries the tightest limit as
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds); a refusal is 429 with
``Retry-After``. Counters live in memory now (one process); a Redis storage URI shares them later.

Synchronous (the ``limits`` library's blocking strategies and storage), so the one limiter serves the
CLI and the API alike; ``check`` is quick on the memory storage.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from rendercost.errors import RateLimited
from rendercost.settings import Settings


@dataclass(frozen=True)
class _Limit:
    scope: str  # "key_requests", "tenant_requests", "key_images", "tenant_images"
    per_minute: int  # allowed per minute
    identifier: str  # key id or tenant
    cost: int  # units this request uses


class LimitRefused(RateLimited):
    """A 429 that carries the ``RateLimit-*`` headers to send with it and the limit that refused."""

    def __init__(self, message: str, *, retry_after: float, headers: dict[str, str], scope: str) -> None:
        super().__init__(message, retry_after=retry_after, code="rate_limit_exceeded")
        self.headers = headers
        self.scope = scope


@dataclass(frozen=True)
class Decision:
    """The outcome of a check: the headers to send, and the refusal if any."""

    headers: dict[str, str] = field(default_factory=dict)  # RateLimit-* (empty when no limit applies)
    refused: LimitRefused | None = None  # raise this when set
    scope: str | None = None  # which limit refused


class RateLimiter:
    """Checks and charges the four limits; safe to share between threads."""

    def __init__(self, settings: Settings, storage_uri: str = "memory://") -> None:
        self.settings = settings
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def _limits(self, key_id: str, tenant: str, images: int) -> list[_Limit]:
        s = self.settings
        candidates = [
            _Limit("key_requests", s.rate_limit_key_requests_per_minute, key_id, 1),
            _Limit("tenant_requests", s.rate_limit_tenant_requests_per_minute, tenant, 1),
        ]
        if images > 0:
            candidates += [
                _Limit("key_images", s.rate_limit_key_images_per_minute, key_id, images),
                _Limit("tenant_images", s.rate_limit_tenant_images_per_minute, tenant, images),
            ]
        return [limit for limit in candidates if limit.per_minute > 0]

    def check(self, key_id: str, tenant: str, *, images: int = 0) -> Decision:
        """Admit and charge, or refuse without charging anything."""
        limits = self._limits(key_id, tenant, images)
        if not limits:
            return Decision()
        items = [(limit, RateLimitItemPerMinute(limit.per_minute)) for limit in limits]
        for limit, item in items:
            if not self._limiter.test(item, limit.scope, limit.identifier, cost=limit.cost):
                stats = self._limiter.get_window_stats(item, limit.scope, limit.identifier)
                retry_after = max(1.0, stats.reset_time - time.time())
                headers = _headers(limit.per_minute, stats.remaining, retry_after)
                refused = LimitRefused(
                    f"rate limit exceeded ({limit.scope.replace('_', ' ')}: {limit.per_minute} per minute); "
                    f"retry after {math.ceil(retry_after)} s",
                    retry_after=retry_after,
                    headers=headers,
                    scope=limit.scope,
                )
                return Decision(headers=headers, refused=refused, scope=limit.scope)
        tightest: tuple[int, int, float] | None = None
        for limit, item in items:
            self._limiter.hit(item, limit.scope, limit.identifier, cost=limit.cost)
            stats = self._limiter.get_window_stats(item, limit.scope, limit.identifier)
            candidate = (stats.remaining, limit.per_minute, stats.reset_time - time.time())
            if tightest is None or candidate[0] < tightest[0]:
                tightest = candidate
        assert tightest is not None  # items is not empty
        remaining, per_minute, reset = tightest
        return Decision(headers=_headers(per_minute, remaining, reset))


def _headers(limit: int, remaining: int, reset_seconds: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(max(0, math.ceil(reset_seconds))),
    }
