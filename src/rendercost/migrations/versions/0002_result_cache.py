"""Result cache: exact repeats of a render answered from a stored file.

Revision ID: 0002_result_cache
Revises: 0001_engine_room
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import JsonDocument, UtcDateTime

revision: str = "0002_result_cache"
down_revision: str | None = "0001_engine_room"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "result_cache",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("location", sa.String(512), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("receipt", JsonDocument, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_result_cache"),
    )
    op.create_index("ix_result_cache_expires", "result_cache", ["expires_at"])


def downgrade() -> None:
    op.drop_table("result_cache")
