"""Redis connections that fail fast: short socket timeouts and no client-side retries, so an outage costs
a caller one timeout at most and the caller decides what degrading means (a cache misses, a limiter
fails open or closed). One pool per process component; thread-safe."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_TIMEOUT_S = 0.25  # connect and per-command socket timeout

RedisError = redis.RedisError  # what a call raises when the server is away or answers an error


def connection_pool(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> redis.ConnectionPool:
    """A pool for ``url`` (``redis://[:password@]host:port[/db]``, ``rediss://``, ``unix://``)."""
    return redis.ConnectionPool.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def connect(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> redis.Redis:
    """A client on its own fail-fast pool; bytes in, bytes out (no decoding)."""
    return redis.Redis(connection_pool=connection_pool(url, timeout_s))
