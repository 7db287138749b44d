"""The exact-result cache: the same render asked again is answered from the stored file, never paid twice.

The key is ``result_key(spec, fingerprint)``: a SHA-256 over every field that decides the output bytes
(prompt, negative prompt, model name, preset, size, seed, LoRAs, output format) and the model's weights
fingerprint. A hit returns where the file is (an ArtifactStore key) and the payload embedded in it,
including the receipt of the render that paid for it. Renders with a random seed are never cached
(the caller decides that; see ``cli.render``).

The table lives in SQL (``caches.tables.result_cache``), so every API server and worker sharing a
database shares the cache. Entries live ``ttl_seconds``; ``ttl_seconds <= 0`` turns the cache off
(``get`` misses, ``put`` stores nothing). The file itself is owned by the ArtifactStore: a row whose
file has gone is the caller's miss (see ``forget``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select

from rendercost.caches.tables import result_cache
from rendercost.db.clock import Clock, utcnow
from rendercost.db.upsert import dialect_insert
from rendercost.domain.specs import RenderSpec


def result_key(spec: RenderSpec, model_fingerprint: str) -> str:
    """The cache key of one image: ``spec.content_hash`` (already SHA-256 hex) over the weights."""
    return spec.content_hash(model_fingerprint)


@dataclass(frozen=True)
class CachedResult:
    """One cache entry."""

    key: str  # result_key of the spec
    location: str  # ArtifactStore key of the encoded file, receipt embedded
    media_type: str  # e.g. "image/png"
    receipt: dict[str, Any]  # the payload embedded in the file (prompt, seed, ..., "receipt")
    created_at: datetime  # UTC, when the paid render stored it
    expires_at: datetime  # UTC, after this it is a miss


class ResultCache:
    """Exact-result cache over one database; safe to share between threads (one Engine)."""

    def __init__(self, engine: Engine, ttl_seconds: float, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def get(self, key: str) -> CachedResult | None:
        """The live entry for ``key``, or None (absent, expired, or the cache is off)."""
        if not self.enabled:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(result_cache).where(
                    result_cache.c.key == key, result_cache.c.expires_at > self.clock()
                )
            ).first()
        if row is None:
            return None
        return CachedResult(
            key=row.key,
            location=row.location,
            media_type=row.media_type,
            receipt=dict(row.receipt),
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    def put(
        self, key: str, *, location: str, media_type: str, receipt: dict[str, Any]
    ) -> CachedResult | None:
        """Store (or replace) the entry for ``key``, live for ``ttl_seconds``; None when the cache is off.

        One upsert: two writers racing on one key both succeed and the last write stays (equal keys
        mean equal bytes, so either entry answers alike).
        """
        if not self.enabled:
            return None
        now = self.clock()
        entry = CachedResult(
            key=key,
            location=location,
            media_type=media_type,
            receipt=receipt,
            created_at=now,
            expires_at=now + timedelta(seconds=self.ttl_seconds),
        )
        values = {
            "key": key,
            "location": location,
            "media_type": media_type,
            "receipt": receipt,
            "created_at": entry.created_at,
            "expires_at": entry.expires_at,
        }
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, result_cache).values(values)
            replaced = {name: stmt.excluded[name] for name in values if name != "key"}
            conn.execute(stmt.on_conflict_do_update(index_elements=[result_cache.c.key], set_=replaced))
        return entry

    def forget(self, key: str) -> None:
        """Drop the entry for ``key`` (e.g. its file is gone); absent keys are fine."""
        with self.engine.begin() as conn:
            conn.execute(delete(result_cache).where(result_cache.c.key == key))

    def purge_expired(self) -> int:
        """Delete expired rows; return how many. Their files stay: the ArtifactStore's GC owns them."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(result_cache).where(result_cache.c.expires_at <= self.clock()))
        return result.rowcount
