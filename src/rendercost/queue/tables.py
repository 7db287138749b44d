"""The ``jobs`` table: one row per job, claimed with a lease.

Claim order is ``(priority_rank, created_at, seq)``: interactive before batch, then oldest, then insertion
order (``seq``) so equal timestamps still give a stable order. The payload is JSON with a schema version,
never pickle.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from rendercost.db.metadata import metadata
from rendercost.db.types import JsonDocument, UtcDateTime

PAYLOAD_SCHEMA_VERSION = 2  # version of jobs.payload written now; readers refuse versions they do not know
MAX_IDEMPOTENCY_KEY_LENGTH = 255  # longest Idempotency-Key accepted
MAX_ERROR_LENGTH = 8000  # last_error is truncated to this many characters

jobs = Table(
    "jobs",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),  # public, opaque job id
    Column("tenant", String(128), nullable=False),
    Column("state", String(16), nullable=False),  # domain.jobs.JobState
    Column("priority", String(16), nullable=False),  # domain.specs.Priority
    Column("priority_rank", SmallInteger, nullable=False),  # 0 interactive, 1 batch: claim order
    Column("model", String(256), nullable=False),  # request.spec.model, for depth() and listing
    Column("payload", JsonDocument, nullable=False),  # {"schema_version": 2, "request": {...}}
    Column("idempotency_key", String(MAX_IDEMPOTENCY_KEY_LENGTH)),
    Column("attempts", Integer, nullable=False, default=0),  # claims so far
    Column("max_attempts", Integer, nullable=False),
    Column("lease_owner", String(128)),  # worker id; kept after the job finishes (who ran it)
    Column("lease_expires_at", UtcDateTime),  # set only while running
    Column("not_before", UtcDateTime),  # retry backoff: not claimable before this
    Column("last_error", Text),
    Column("progress", Float, nullable=False, default=0.0),
    Column("result", JsonDocument, nullable=False),
    Column("webhook_url", Text),
    Column("tags", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
    CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state_valid"),
    CheckConstraint("priority IN ('interactive', 'batch')", name="priority_valid"),
    Index("ix_jobs_claim", "state", "priority_rank", "created_at", "seq"),
    Index("ix_jobs_lease", "state", "lease_expires_at"),
    Index("ix_jobs_tenant_created", "tenant", "created_at"),
    Index("ix_jobs_created", "created_at"),
)
