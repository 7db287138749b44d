"""The semantic rewrite cache: a prompt that MEANS the same as one already rewritten reuses its rewrite.

Scope is exact: tenant + ``scope_key(template hash, target model, parameters)``; entries are never
shared across scopes or tenants. Within a scope, a lookup takes the most similar live entry whose
``guard_signature`` (colours, numbers, negations, nouns) equals the prompt's AND whose cosine with the
prompt (all-MiniLM-L6-v2, unit vectors) is at least the threshold (default 0.94), so "red sneaker"
never reuses "white sneaker" and "two sneakers" never reuses "a sneaker".

Embeddings are computed only where they can decide something. The guard must match exactly, so the
index is keyed by guard: a prompt whose guard no live entry shares is a miss with nothing embedded,
an entry with the same text is a hit at cosine 1, and only the remaining candidates (the prompt and
those of its guard, in one MiniLM call) are embedded. ``put`` embeds nothing: an entry's vector is
computed when a later prompt first needs it (kept in memory, not written back). One MiniLM forward
is about 30 ms of a CPU core, which the API process would otherwise spend on every new prompt beside
the renders of a worker that shares the machine. The vectors of the last ``EMBED_MEMO_SIZE`` texts
are remembered (read-only arrays).

Rows live in SQL (``caches.tables.rewrite_cache``, TTL 7 days by default; ``vector`` NULL until a
caller supplied one); the index is in memory, rebuilt from the table by ``load()`` at start.
Thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
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
EMBED_MEMO_SIZE = 4096  # texts whose vectors are kept (384 float32 each: about 6 MB)
GUARD_CHARS = 512  # the stored guard's length; a longer one is stored cut and never matches


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
class _Entry:
    id: str
    prompt: str
    rewrite: dict[str, Any]
    expires: datetime
    vector: np.ndarray | None  # None until a lookup needs it


@dataclass
class _Group:
    """The entries of one scope that share one guard, oldest first."""

    entries: list[_Entry] = field(default_factory=list)
    by_prompt: dict[str, _Entry] = field(default_factory=dict)  # the newest entry of each text
    matrix: np.ndarray | None = None  # every entry's vector stacked, once all are known

    def add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        self.by_prompt[entry.prompt] = entry
        self.matrix = None


class _VectorMemo:
    """The last ``size`` texts' vectors (read-only), the missing ones embedded in one call. Written
    here because ``functools.lru_cache`` memoizes one argument per call and cannot take the vectors of
    several texts from one batched embedder call."""

    def __init__(self, embedder: Embedder, size: int = EMBED_MEMO_SIZE) -> None:
        self._embedder = embedder
        self._size = size
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                if (vector := self._vectors.get(text)) is not None:
                    found[text] = vector
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:
            computed = np.asarray(self._embedder.embed(missing), dtype=np.float32)
            for text, row in zip(missing, computed, strict=True):
                vector = np.array(row, dtype=np.float32)
                vector.setflags(write=False)
                found[text] = vector
        with self._lock:
            for text, vector in found.items():
                self._vectors[text] = vector
                self._vectors.move_to_end(text)
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)
        return [found[text] for text in texts]


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
        self._memo = _VectorMemo(embedder)
        self.threshold = threshold
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._on_lookup = on_lookup
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str, str], _Group] = {}  # (tenant, scope, guard)

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def load(self) -> int:
        """Rebuild the in-memory index from the table (live rows); return how many were indexed."""
        with self._engine.begin() as conn:
            conn.execute(delete(rewrite_cache).where(rewrite_cache.c.expires_at <= self._clock()))
            rows = conn.execute(select(rewrite_cache).order_by(rewrite_cache.c.created_at)).all()
        with self._lock:
            self._groups.clear()
            for row in rows:
                vector = None if row.vector is None else np.frombuffer(row.vector, dtype=np.float32)
                entry = _Entry(row.id, row.prompt, dict(row.rewrite), row.expires_at, vector)
                self._index(row.tenant, row.scope, row.guard, entry)
        return len(rows)

    def embed(self, prompt: str) -> np.ndarray:
        """The prompt's unit vector (read-only; the same array for a text embedded recently)."""
        return self._memo.vectors([prompt])[0]

    def lookup(
        self,
        tenant: str,
        scope: str,
        prompt: str,
        *,
        threshold: float | None = None,
        vector: np.ndarray | None = None,
    ) -> SemanticHit | None:
        """The most similar live entry of (tenant, scope) with the prompt's guard, at or above the
        threshold; ``vector``: the prompt's, when the caller has it (else embedded if needed)."""
        hit = self._search(tenant, scope, prompt, threshold, vector) if self.enabled else None
        if self._on_lookup is not None and self.enabled:
            self._on_lookup(hit is not None)
        return hit

    def _search(
        self, tenant: str, scope: str, prompt: str, threshold: float | None, vector: np.ndarray | None
    ) -> SemanticHit | None:
        guard, now = guard_signature(prompt), self._clock()
        with self._lock:
            group = self._groups.get((tenant, scope, guard))
            if group is None or group.entries[-1].expires <= now:  # one TTL: the newest expires last
                return None
            entries, matrix, same_text = list(group.entries), group.matrix, group.by_prompt.get(prompt)
        if vector is None and same_text is not None and same_text.expires > now:
            return SemanticHit(same_text.id, prompt, same_text.rewrite, 1.0)
        query, matrix = self._vectors(group, entries, matrix, prompt, vector)
        similarities = matrix @ query
        minimum = self.threshold if threshold is None else threshold
        above = np.flatnonzero(similarities >= minimum)
        for i in above[np.argsort(-similarities[above])]:
            if entries[i].expires > now:
                entry = entries[i]
                return SemanticHit(entry.id, entry.prompt, entry.rewrite, float(similarities[i]))
        return None

    def _vectors(
        self,
        group: _Group,
        entries: list[_Entry],
        matrix: np.ndarray | None,
        prompt: str,
        vector: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The query's vector and the group's matrix: what is not known yet embedded in one call."""
        unknown = [] if matrix is not None else [entry for entry in entries if entry.vector is None]
        texts = ([] if vector is not None else [prompt]) + [entry.prompt for entry in unknown]
        computed = self._memo.vectors(texts) if texts else []
        query = np.asarray(vector if vector is not None else computed.pop(0), dtype=np.float32)
        if matrix is None:
            for entry, found in zip(unknown, computed, strict=True):
                entry.vector = found
            matrix = np.stack([entry.vector for entry in entries if entry.vector is not None])
            with self._lock:
                if len(group.entries) == len(entries):  # no entry was added meanwhile
                    group.matrix = matrix
        return query, matrix

    def put(
        self,
        tenant: str,
        scope: str,
        prompt: str,
        rewrite: Mapping[str, Any],
        *,
        vector: np.ndarray | None = None,
    ) -> str | None:
        """Store a rewrite (table and index); its id, or None when the cache is off. Nothing is
        embedded: ``vector`` is stored when given, else computed when a lookup first needs it."""
        if not self.enabled:
            return None
        now = self._clock()
        entry = _Entry(
            uuid.uuid4().hex,
            prompt,
            dict(rewrite),
            now + timedelta(seconds=self.ttl_seconds),
            None if vector is None else np.asarray(vector, dtype=np.float32),
        )
        guard = guard_signature(prompt)[:GUARD_CHARS]
        stored = None if entry.vector is None else entry.vector.tobytes()
        with self._engine.begin() as conn:
            conn.execute(
                insert(rewrite_cache).values(
                    id=entry.id, tenant=tenant, scope=scope, prompt=prompt, guard=guard, vector=stored,
                    rewrite=entry.rewrite, created_at=now, expires_at=entry.expires,
                )
            )  # fmt: skip
        with self._lock:
            self._index(tenant, scope, guard, entry)
        return entry.id

    def index_only(self, tenant: str, scope: str, prompts: Sequence[str], vectors: np.ndarray) -> None:
        """Index entries without storing them (benchmarks fill large indexes this way)."""
        expires = self._clock() + timedelta(seconds=self.ttl_seconds)
        with self._lock:
            for prompt, vector in zip(prompts, vectors, strict=True):
                entry = _Entry(uuid.uuid4().hex, prompt, {}, expires, np.asarray(vector, dtype=np.float32))
                self._index(tenant, scope, guard_signature(prompt)[:GUARD_CHARS], entry)

    def _index(self, tenant: str, scope: str, guard: str, entry: _Entry) -> None:
        self._groups.setdefault((tenant, scope, guard), _Group()).add(entry)
