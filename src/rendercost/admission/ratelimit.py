"""Rate limits per API key and per tenant, on requests and on images, with the ``limits`` library.

Four moving-window limits per minute (any of them 0 is off): requests per key, requests per tenant,
images per key, images per tenant. A request is admitted only if every applicable limit has room for
it (the images limits count ``n``); then all are charged. The response carries the tightest limit as
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds); a refusal is 429 with
``Retry-After``.

Counters live in memory (one process) unless ``settings.redis_url`` is set: then they live in Redis
(the ``limits`` Redis storage), so every API server on that Redis enforces ONE limit per key and per
tenant. Each charge is Redis' atomic check-and-add, so concurrent servers never admit past a limit
(a request that loses such a race after its first limit was charged is refused with that charge kept).
When Redis cannot be reached (fail-fast pool: short socket timeouts, no retries) the limiter fails
open (admits without ``RateLimit-*`` headers, ``rate_limit_fail_open``, the default) or closed (503
``rate_limit_unavailable`` with ``Retry-After``); the outage is logged once and each such check is
counted in ``rendercost_rate_limit_unavailable_total{outcome}``. For the outage's cool-down the
limiter does not call Redis at all, so an outage never stalls admission.

Synchronous (the ``limits`` library's blocking strategies and storage), so the one limiter serves the
CLI and the API alike; ``check`` is quick on the memory storage and one round trip per limit on Redis.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from limits import RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CollectorRegistry, Counter

from rendercost.caches.outage import Outage
from rendercost.caches.redis_client import RedisError, connection_pool
from rendercost.errors import RateLimited
from rendercost.settings import Settings

UNAVAILABLE = "unavailable"  # Decision.scope when the shared counters could not be reached
UNAVAILABLE_RETRY_AFTER_S = 1.0  # Retry-After of a fail-closed refusal
REDIS_KEY_PREFIX = "rendercost:limits"


@dataclass(frozen=True)
class _Limit:
    scope: str  # "key_requests", "tenant_requests", "key_images", "tenant_images"
    per_minute: int  # allowed per minute
    identifier: str  # key id or tenant
    cost: int  # units this request uses


class LimitRefused(RateLimited):
    """A 429 that carries the ``RateLimit-*`` headers to send with it and the limit that refused."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        headers: dict[str, str],
        scope: str,
        code: str = "rate_limit_exceeded",
    ) -> None:
        super().__init__(message, retry_after=retry_after, code=code)
        self.headers = headers
        self.scope = scope


class LimitsUnavailable(LimitRefused):
    """503: the shared counters cannot be reached and the limiter fails closed (``rate_limit_fail_open``
    false); retry shortly."""

    http_status = 503
    error_type = "server_error"

    def __init__(self) -> None:
        super().__init__(
            "rate limits cannot be checked right now (their store is unreachable); retry shortly",
            retry_after=UNAVAILABLE_RETRY_AFTER_S,
            headers={},
            scope=UNAVAILABLE,
            code="rate_limit_unavailable",
        )


@dataclass(frozen=True)
class Decision:
    """The outcome of a check: the headers to send, and the refusal if any."""

    headers: dict[str, str] = field(default_factory=dict)  # RateLimit-* (empty when no limit applies)
    refused: LimitRefused | None = None  # raise this when set
    scope: str | None = None  # which limit refused


class RateLimiter:
    """Checks and charges the four limits; safe to share between threads (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage | None = None,
        *,
        fail_open: bool = True,
        outage: Outage | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """``storage`` defaults to this process's memory; ``fail_open`` and ``outage`` matter only for a
        remote storage; ``registry`` (when given) gets the unavailable-check counter."""
        self.settings = settings
        self.fail_open = fail_open
        self.outage = outage or Outage("redis (rate limits)")
        self._limiter = MovingWindowRateLimiter(storage if storage is not None else MemoryStorage())
        self._unavailable = (
            Counter(
                "rendercost_rate_limit_unavailable",
                "Rate-limit checks the shared counters could not answer, by what admission did.",
                ["outcome"],
                registry=registry,
            )
            if registry is not None
            else None
        )

    @classmethod
    def from_settings(cls, settings: Settings, registry: CollectorRegistry | None = None) -> RateLimiter:
        """Counters in Redis when ``settings.redis_url`` is set, else in this process's memory."""
        if settings.redis_url is None:
            return cls(settings, registry=registry)
        storage = RedisStorage(
            settings.redis_url,
            connection_pool=connection_pool(settings.redis_url, settings.redis_timeout_s),
            key_prefix=REDIS_KEY_PREFIX,
            wrap_exceptions=True,
        )
        return cls(settings, storage, fail_open=settings.rate_limit_fail_open, registry=registry)

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
        """Admit and charge, or refuse without charging anything; when the counters cannot be reached,
        admit without headers (fail open) or refuse with ``LimitsUnavailable`` (fail closed)."""
        limits = self._limits(key_id, tenant, images)
        if not limits:
            return Decision()
        if not self.outage.available():
            return self._degraded()
        try:
            decision = self._check(limits)
        except (StorageError, RedisError, OSError) as error:
            self.outage.failed(error)
            return self._degraded()
        self.outage.succeeded()
        return decision

    def _degraded(self) -> Decision:
        outcome = "admitted" if self.fail_open else "refused"
        if self._unavailable is not None:
            self._unavailable.labels(outcome).inc()
        if self.fail_open:
            return Decision()
        return Decision(refused=LimitsUnavailable(), scope=UNAVAILABLE)

    def _check(self, limits: list[_Limit]) -> Decision:
        items = [(limit, RateLimitItemPerMinute(limit.per_minute)) for limit in limits]
        for limit, item in items:
            if not self._limiter.test(item, limit.scope, limit.identifier, cost=limit.cost):
                return self._refusal(limit, item)
        tightest: tuple[int, int, float] | None = None
        for limit, item in items:
            if not self._limiter.hit(item, limit.scope, limit.identifier, cost=limit.cost):
                return self._refusal(limit, item)  # another process took the room since the test
            stats = self._limiter.get_window_stats(item, limit.scope, limit.identifier)
            candidate = (stats.remaining, limit.per_minute, stats.reset_time - time.time())
            if tightest is None or candidate[0] < tightest[0]:
                tightest = candidate
        assert tightest is not None  # noqa: S101  items is not empty
        remaining, per_minute, reset = tightest
        return Decision(headers=_headers(per_minute, remaining, reset))

    def _refusal(self, limit: _Limit, item: RateLimitItemPerMinute) -> Decision:
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


def _headers(limit: int, remaining: int, reset_seconds: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(max(0, math.ceil(reset_seconds))),
    }
