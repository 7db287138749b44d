"""The text-embedding cache shared by every worker of a fleet, in Redis.

Same contract as ``FileEmbeddingCache``: opaque ``bytes`` (the runner stores safetensors blobs: tensors,
never pickle) under ``embedding_key(...)`` keys, which already carry the encoder fingerprint and the
prompt. Stored as ``<prefix><key>`` with ``SET ... PX ttl`` (30 days by default,
``settings.embedding_cache_ttl_seconds``), so Redis expires entries itself; ``ttl_seconds <= 0`` turns
the cache off.

A Redis outage never fails a render: a lookup that cannot reach Redis is a miss and a store is dropped.
The ``Outage`` logs the outage once and, for its cool-down, skips Redis altogether so a batch does not
pay one socket timeout per prompt. ``on_lookup(hit)`` is called for every lookup (misses during an
outage included). Thread-safe (redis-py's pool is).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis

from rendercost.caches.embedding_cache import check_key
from rendercost.caches.outage import Outage
from rendercost.caches.redis_client import RedisError

DEFAULT_PREFIX = "rendercost:embedding:"


class RedisEmbeddingCache:
    """Embedding blobs in Redis with a TTL (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        ttl_seconds: float,
        *,
        prefix: str = DEFAULT_PREFIX,
        outage: Outage | None = None,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix
        self.outage = outage or Outage("redis (embedding cache)")
        self._client = client
        self._on_lookup = on_lookup
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def get(self, key: str) -> bytes | None:
        """The live blob for ``key``, or None (also when Redis is unreachable)."""
        name = self.prefix + check_key(key)
        if not self.enabled:
            return None
        blob = self._fetch(name)
        with self._lock:
            if blob is None:
                self.misses += 1
            else:
                self.hits += 1
        if self._on_lookup is not None:
            self._on_lookup(blob is not None)
        return blob

    def _fetch(self, name: str) -> bytes | None:
        if not self.outage.available():
            return None
        try:
            value = self._client.get(name)
        except RedisError as error:
            self.outage.failed(error)
            return None
        self.outage.succeeded()
        return value if isinstance(value, bytes) else None

    def put(self, key: str, blob: bytes) -> None:
        """Store ``blob`` for ``ttl_seconds``; dropped when off or when Redis is unreachable."""
        name = self.prefix + check_key(key)
        if not self.enabled or not self.outage.available():
            return
        try:
            self._client.set(name, blob, px=max(1, round(self.ttl_seconds * 1000)))
        except RedisError as error:
            self.outage.failed(error)
            return
        self.outage.succeeded()

    def hit_rate(self) -> float:
        with self._lock:
            total = self.hits + self.misses
            return self.hits / total if total else 0.0
