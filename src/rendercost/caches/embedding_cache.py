"""The text-embedding cache: a prompt encoded once is not encoded again.

Entries are opaque ``bytes`` (the runner stores safetensors blobs: tensors, never pickle), keyed by
``embedding_key(encoder fingerprint, prompt, negative prompt, uses CFG, LoRAs)``. An in-memory LRU
(``max_entries``) sits in front of one file per key under ``folder`` (``<key>.safetensors``), so every
worker process on a machine shares what any of them encoded, and a restart starts warm. Entries live
``ttl_seconds`` (30 days by default, ``settings.embedding_cache_ttl_seconds``); the file's mtime is its
birth. ``ttl_seconds <= 0`` turns the cache off. Thread-safe.

``on_lookup(hit)`` is called for every lookup (the hit-rate metric hangs there).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

SUFFIX = ".safetensors"
DEFAULT_MAX_ENTRIES = 1024  # in-memory blobs (an SDXL row pair is ~0.6 MB in fp16)


def embedding_key(
    encoder_fingerprint: str,
    prompt: str,
    negative_prompt: str,
    *,
    uses_cfg: bool,
    loras: Sequence[tuple[str, float]] = (),
) -> str:
    """SHA-256 hex over everything that decides one prompt's embeddings. The negative prompt counts
    only with CFG (it is never encoded without); LoRAs count because they may patch the text encoders."""
    document = {
        "encoder": encoder_fingerprint,
        "prompt": prompt,
        "negative": negative_prompt if uses_cfg else None,
        "cfg": uses_cfg,
        "loras": [[name, weight] for name, weight in loras],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def check_key(key: str) -> str:
    """``key`` when it is an ``embedding_key`` (64 lowercase hex digits); ValueError otherwise."""
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"not an embedding key: {key!r}")
    return key


class EmbeddingCache(Protocol):
    """What the runner needs: blobs by key."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, blob: bytes) -> None: ...


class FileEmbeddingCache:
    """LRU in memory over safetensors files in one folder (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        ttl_seconds: float,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self.folder = folder
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._on_lookup = on_lookup
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (born, blob)
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{check_key(key)}{SUFFIX}"

    def get(self, key: str) -> bytes | None:
        """The live blob for ``key``, or None."""
        blob = self._lookup(key) if self.enabled else None
        with self._lock:
            if blob is None:
                self.misses += 1
            else:
                self.hits += 1
        if self._on_lookup is not None and self.enabled:
            self._on_lookup(blob is not None)
        return blob

    def _lookup(self, key: str) -> bytes | None:
        now = self._clock()
        with self._lock:
            found = self._memory.get(key)
            if found is not None and now - found[0] < self.ttl_seconds:
                self._memory.move_to_end(key)
                return found[1]
            self._memory.pop(key, None)
        path = self._path(key)
        try:
            born = path.stat().st_mtime
            if now - born >= self.ttl_seconds:
                path.unlink(missing_ok=True)
                return None
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        self._remember(key, born, blob)
        return blob

    def put(self, key: str, blob: bytes) -> None:
        """Store ``blob`` (memory and file, the file written atomically); no-op when off."""
        if not self.enabled:
            return
        now = self._clock()
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".emb.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(blob)
            os.utime(temporary, (now, now))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._remember(key, now, blob)

    def _remember(self, key: str, born: float, blob: bytes) -> None:
        with self._lock:
            self._memory[key] = (born, blob)
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)

    def hit_rate(self) -> float:
        with self._lock:
            total = self.hits + self.misses
            return self.hits / total if total else 0.0
