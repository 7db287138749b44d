"""The ArtifactStore contract."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ArtifactRef:
    """A stored file."""

    key: str  # content-addressed key, e.g. "ab/cd/abcd....png"
    size_bytes: int  # bytes stored
    sha256: str  # hex digest of the bytes
    media_type: str  # e.g. "image/png"


@dataclass(frozen=True)
class PresignedUrl:
    """A URL that fetches a stored file without an API key, until ``expires_at``."""

    url: str
    expires_at: datetime  # UTC


class ArtifactStore(Protocol):
    backend: str  # the price catalog's storage backend ("local", "s3") its storage lines are priced at

    def put(self, data: bytes, *, media_type: str, suffix: str) -> ArtifactRef:
        """Store ``data`` atomically under a content-addressed key (same bytes, same key)."""
        ...

    def get(self, key: str) -> bytes:
        """The stored bytes; ``NotFound`` if absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> str | None:
        """A filesystem path for the key when the store is local, else None (read with ``get``)."""
        ...

    def presigned_url(self, key: str, lifetime_s: int) -> PresignedUrl | None:
        """A URL that GETs ``key`` for ``lifetime_s`` seconds, or None where the store has none."""
        ...
