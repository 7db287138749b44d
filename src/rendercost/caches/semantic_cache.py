"""The semantic rewrite cache: a prompt that MEANS the same as one already rewritten reuses its rewrite.

Scope is exact: tenant + ``scope_key(template hash, target model, parameters)``; entries are never
shared across scopes or tenants. Within a scope, a lookup embeds the prompt (all-MiniLM-L6-v2, unit
vectors) and takes the most similar live entry whose cosine is at least the threshold (default 0.94)
AND whose ``guard_signature`` (colours, numbers, negations, nouns) equals the prompt's, so "red
sneaker" never reuses "white sneaker" and "two sneakers" never reuses "a sneaker".

Rows live in SQL (``caches.tables.rewrite_cache``, TTL 7 days by default); the vector index is in
memory (one numpy matrix per scope), rebuilt from the table by ``load()`` at start. Thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, delete, insert, select

from rendercost.caches.prompt_guard import guard_signature
from rendercost.caches.tables import rewrite_cache
from rendercost.db.clock import Clock, utcnow

DEFAULT_THRESHOLD = 0.94
DEFAULT_TTL_SECONDS = 7 * 86400.0


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...  # float32 (n, d) unit vectors


def scope_key(template_hash: str, target_model: str, parameters: Mapping[str, Any]) -> str:
    """SHA-256 hex of what must match exactly for two prompts to share a rewrite."""
    document = {"template": template_hash, "model": target_model, "parameters": dict(parameters)}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class SemanticHit:
    id: str  # the entry reused
    prompt: str  # the prompt that was rewritten
    rewrite: dict[str, Any]  # what was stored (RewriteResult fields)
    similarity: float  # cosine of the two prompts


@dataclass
class _Shard:
    ids: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)
    rewrites: list[dict[str, Any]] = field(default_factory=list)
    expires: list[datetime] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    matrix: np.ndarray | None = None  # stacked rows, rebuilt after an insert

    def vectors(self) -> np.ndarray:
        if self.matrix is None or len(self.matrix) != len(self.rows):
            self.matrix = np.vstack(self.rows).astype(np.float32)
        return self.matrix


class SemanticCache:
    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Clock = utcnow,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self._engine = engine
        self._embedder = embedder
        self.threshold = threshold
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._on_lookup = on_lookup
        self._lock = threading.Lock()
        self._shards: dict[tuple[str, str], _Shard] = {}

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def load(self) -> int:
        """Rebuild the in-memory index from the table (live rows); return how many were indexed."""
        with self._engine.begin() as conn:
            conn.execute(delete(rewrite_cache).where(rewrite_cache.c.expires_at <= self._clock()))
            rows = conn.execute(select(rewrite_cache)).all()
        with self._lock:
            self._shards.clear()
            for row in rows:
                vector = np.frombuffer(row.vector, dtype=np.float32)
                self._index(
                    row.tenant,
                    row.scope,
                    row.id,
                    row.prompt,
                    row.guard,
                    vector,
                    dict(row.rewrite),
                    row.expires_at,
                )
        return len(rows)

    def embed(self, prompt: str) -> np.ndarray:
        return np.asarray(self._embedder.embed([prompt])[0], dtype=np.float32)

    def lookup(
        self,
        tenant: str,
        scope: str,
        prompt: str,
        *,
        threshold: float | None = None,
        vector: np.ndarray | None = None,
    ) -> SemanticHit | None:
        """The best live entry of (tenant, scope) at or above the threshold with the same guard."""
        hit = self._search(tenant, scope, prompt, threshold, vector) if self.enabled else None
        if self._on_lookup is not None and self.enabled:
            self._on_lookup(hit is not None)
        return hit

    def _search(
        self, tenant: str, scope: str, prompt: str, threshold: float | None, vector: np.ndarray | None
    ) -> SemanticHit | None:
        with self._lock:
            shard = self._shards.get((tenant, scope))
            if shard is None or not shard.rows:
                return None
            matrix = shard.vectors()
        query = self.embed(prompt) if vector is None else vector
        similarities = matrix @ query
        guard = guard_signature(prompt)
        now = self._clock()
        minimum = self.threshold if threshold is None else threshold
        candidates = np.flatnonzero(similarities >= minimum)
        for i in candidates[np.argsort(-similarities[candidates])]:
            if shard.guards[i] == guard and shard.expires[i] > now:
                return SemanticHit(shard.ids[i], shard.prompts[i], shard.rewrites[i], float(similarities[i]))
        return None

    def put(
        self,
        tenant: str,
        scope: str,
        prompt: str,
        rewrite: Mapping[str, Any],
        *,
        vector: np.ndarray | None = None,
    ) -> str | None:
        """Store a rewrite (table and index); its id, or None when the cache is off."""
        if not self.enabled:
            return None
        vector = self.embed(prompt) if vector is None else vector
        now = self._clock()
        entry_id = uuid.uuid4().hex
        guard = guard_signature(prompt)
        expires = now + timedelta(seconds=self.ttl_seconds)
        with self._engine.begin() as conn:
            conn.execute(
                insert(rewrite_cache).values(
                    id=entry_id, tenant=tenant, scope=scope, prompt=prompt, guard=guard[:512],
                    vector=vector.astype(np.float32).tobytes(), rewrite=dict(rewrite),
                    created_at=now, expires_at=expires,
                )
            )  # fmt: skip
        with self._lock:
            self._index(tenant, scope, entry_id, prompt, guard[:512], vector, dict(rewrite), expires)
        return entry_id

    def index_only(self, tenant: str, scope: str, prompts: Sequence[str], vectors: np.ndarray) -> None:
        """Index entries without storing them (benchmarks fill large indexes this way)."""
        expires = self._clock() + timedelta(seconds=self.ttl_seconds)
        with self._lock:
            for prompt, vector in zip(prompts, vectors, strict=True):
                self._index(
                    tenant, scope, uuid.uuid4().hex, prompt, guard_signature(prompt), vector, {}, expires
                )

    def _index(
        self,
        tenant: str,
        scope: str,
        entry_id: str,
        prompt: str,
        guard: str,
        vector: np.ndarray,
        rewrite: dict[str, Any],
        expires: datetime,
    ) -> None:
        shard = self._shards.setdefault((tenant, scope), _Shard())
        shard.ids.append(entry_id)
        shard.prompts.append(prompt)
        shard.guards.append(guard)
        shard.rewrites.append(rewrite)
        shard.expires.append(expires)
        shard.rows.append(np.asarray(vector, dtype=np.float32))
