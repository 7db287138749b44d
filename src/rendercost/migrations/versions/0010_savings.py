"""Savings by mechanism recorded per cost line (issue 17): saving_lines and solo_references.

Revision ID: 0010_savings
Revises: 0009_web_sessions
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import JsonDocument, Money, UtcDateTime

revision: str = "0010_savings"
down_revision: str | None = "0009_web_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


def upgrade() -> None:
    op.create_table(
        "saving_lines",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("mechanism", sa.String(32), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("reference", Money(), nullable=False),
        sa.Column("details", JsonDocument, nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("preset", sa.String(64), nullable=False),
        sa.Column("request_class", sa.String(32)),
        sa.Column("tags", JsonDocument, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_saving_lines"),
        sa.UniqueConstraint(
            "job_id", "image_index", "stage", "mechanism", name="uq_saving_lines_line_mechanism"
        ),
    )
    op.create_index("ix_saving_lines_created", "saving_lines", ["created_at"])
    op.create_index("ix_saving_lines_tenant_created", "saving_lines", ["tenant", "created_at"])
    op.create_table(
        "solo_references",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("preset", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("device_type", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model", "preset", "width", "height", "device_type", "stage", name="pk_solo_references"
        ),
    )


def downgrade() -> None:
    op.drop_table("solo_references")
    op.drop_index("ix_saving_lines_tenant_created", table_name="saving_lines")
    op.drop_index("ix_saving_lines_created", table_name="saving_lines")
    op.drop_table("saving_lines")
