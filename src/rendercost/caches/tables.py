"""The ``result_cache`` table: exact repeats of a render, answered from a stored file.

One row per cache key (``RenderSpec.content_hash(model fingerprint)``, a SHA-256 hex digest): where the
encoded file is (an ArtifactStore key), its media type, the payload embedded in it (prompt, seed, ...,
and the receipt of the render that paid for it), and when the row stops answering (``expires_at``).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table

from rendercost.db.metadata import metadata
from rendercost.db.types import JsonDocument, UtcDateTime

result_cache = Table(
    "result_cache",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 hex of everything that decides the bytes
    Column("location", String(512), nullable=False),  # ArtifactStore key of the file (receipt embedded)
    Column("media_type", String(64), nullable=False),  # e.g. "image/png"
    Column("receipt", JsonDocument, nullable=False),  # the embedded payload, receipt included
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),  # a row past this is a miss (and is purged)
    Index("ix_result_cache_expires", "expires_at"),
)
