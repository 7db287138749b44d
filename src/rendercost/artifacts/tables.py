"""The ``artifacts`` table: which stored file belongs to which image of which job.

Keys are content-addressed, so two images with equal bytes share a key; a row is unique per
``(job_id, image_index)`` and a repeated write of the same image is a no-op.

Lifecycle (``artifacts.sweeper``): each row is one reference to its key, kept ``retention_days`` from
``created_at`` until ``expires_at``; a file is deleted once none of its key's rows is unexpired, and
every row of that key then gets ``deleted_at`` (rows are kept: the ledger and history still name them).
``expires_at`` NULL: kept until deleted by hand.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, UniqueConstraint

from rendercost.db.metadata import metadata
from rendercost.db.types import UtcDateTime

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("key", String(512), nullable=False),  # ArtifactStore key
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("image_index", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("retention_days", Integer, nullable=True),  # granted at admission; priced on the storage line
    Column("expires_at", UtcDateTime, nullable=True),  # created_at + retention_days
    Column("deleted_at", UtcDateTime, nullable=True),  # when the sweeper deleted the file
    UniqueConstraint("job_id", "image_index", name="uq_artifacts_job_image"),
    Index("ix_artifacts_key", "key"),  # is a key still referenced (garbage collection)
    Index("ix_artifacts_tenant_created", "tenant", "created_at"),
    Index("ix_artifacts_live_expiry", "deleted_at", "expires_at"),  # what the sweeper looks for
)
