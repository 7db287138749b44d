"""Engine room: jobs (the queue), cost_lines (the ledger), artifacts.

Revision ID: 0001_engine_room
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import JsonDocument, Money, Quantity, UtcDateTime

revision: str = "0001_engine_room"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


def upgrade() -> None:
    _create_jobs()
    _create_cost_lines()
    _create_artifacts()


def downgrade() -> None:
    op.drop_table("artifacts")
    op.drop_table("cost_lines")
    op.drop_table("jobs")


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("seq", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("priority_rank", sa.SmallInteger(), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("payload", JsonDocument, nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires_at", UtcDateTime()),
        sa.Column("not_before", UtcDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("result", JsonDocument, nullable=False),
        sa.Column("webhook_url", sa.Text()),
        sa.Column("tags", JsonDocument, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime()),
        sa.Column("finished_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("seq", name="pk_jobs"),
        sa.UniqueConstraint("id", name="uq_jobs_id"),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="ck_jobs_state_valid"
        ),
        sa.CheckConstraint("priority IN ('interactive', 'batch')", name="ck_jobs_priority_valid"),
    )
    op.create_index("ix_jobs_claim", "jobs", ["state", "priority_rank", "created_at", "seq"])
    op.create_index("ix_jobs_lease", "jobs", ["state", "lease_expires_at"])
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant", "created_at"])
    op.create_index("ix_jobs_created", "jobs", ["created_at"])


def _create_cost_lines() -> None:
    op.create_table(
        "cost_lines",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("device_seconds", sa.Float(), nullable=False),
        sa.Column("unit_price", Money(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("quantity", Quantity(), nullable=False),
        sa.Column("cost", Money(), nullable=False),
        sa.Column("cost_avoided", Money(), nullable=False),
        sa.Column("device_type", sa.String(64), nullable=False),
        sa.Column("pricing_model", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("details", JsonDocument, nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("preset", sa.String(64), nullable=False),
        sa.Column("request_class", sa.String(32)),
        sa.Column("tags", JsonDocument, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cost_lines"),
        sa.UniqueConstraint("job_id", "image_index", "stage", name="uq_cost_lines_job_image_stage"),
    )
    op.create_index("ix_cost_lines_created", "cost_lines", ["created_at"])
    op.create_index("ix_cost_lines_tenant_created", "cost_lines", ["tenant", "created_at"])


def _create_artifacts() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.UniqueConstraint("job_id", "image_index", name="uq_artifacts_job_image"),
    )
    op.create_index("ix_artifacts_key", "artifacts", ["key"])
    op.create_index("ix_artifacts_tenant_created", "artifacts", ["tenant", "created_at"])
