"""Semantic rewrite cache: rewritten prompts found again by meaning, per tenant and scope.

Revision ID: 0005_rewrite_cache
Revises: 0004_governance
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import JsonDocument, UtcDateTime

revision: str = "0005_rewrite_cache"
down_revision: str | None = "0004_governance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rewrite_cache",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("guard", sa.String(512), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("rewrite", JsonDocument, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rewrite_cache"),
    )
    op.create_index("ix_rewrite_cache_scope", "rewrite_cache", ["tenant", "scope"])
    op.create_index("ix_rewrite_cache_expires", "rewrite_cache", ["expires_at"])


def downgrade() -> None:
    op.drop_table("rewrite_cache")
