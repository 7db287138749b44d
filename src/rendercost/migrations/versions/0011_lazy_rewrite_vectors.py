"""The semantic rewrite cache embeds a prompt only when a lookup needs it: rewrite_cache.vector nullable.

Revision ID: 0011_lazy_rewrite_vectors
Revises: 0010_savings
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_lazy_rewrite_vectors"
down_revision: str | None = "0010_savings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rewrite_cache") as batch:
        batch.alter_column("vector", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM rewrite_cache WHERE vector IS NULL")  # entries a lookup never embedded
    with op.batch_alter_table("rewrite_cache") as batch:
        batch.alter_column("vector", existing_type=sa.LargeBinary(), nullable=False)
