"""The ``result_cache`` table: exact repeats of a render, answered from a stored file.

One row per cache key (``RenderSpec.content_hash(model fingerprint)``, a SHA-256 hex digest): where the
encoded file is (an ArtifactStore key), its media type, the payload embedded in it (prompt, seed, ...,
and the receipt of the render that paid for it), and when the row stops answering (``expires_at``).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary, String, Table, Text

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

# Semantic rewrite cache: one row per stored rewrite, looked up by cosine similarity of ``vector`` within
# an exact scope (tenant + scope hash of rewrite template, target model and parameters).
rewrite_cache = Table(
    "rewrite_cache",
    metadata,
    Column("id", String(32), primary_key=True),  # uuid4 hex
    Column("tenant", String(128), nullable=False),  # entries are never shared between tenants
    Column("scope", String(64), nullable=False),  # sha256 hex of template hash, target model, parameters
    Column("prompt", Text, nullable=False),  # the customer prompt as sent
    Column("guard", String(512), nullable=False),  # colours, numbers, negations, nouns: must match exactly
    Column("vector", LargeBinary),  # float32 unit vector of the prompt (all-MiniLM-L6-v2); NULL: not yet
    Column("rewrite", JsonDocument, nullable=False),  # RewriteResult fields (prompt, provider, tokens, ...)
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_rewrite_cache_scope", "tenant", "scope"),
    Index("ix_rewrite_cache_expires", "expires_at"),
)
