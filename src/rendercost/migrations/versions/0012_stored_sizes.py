"""The measured file size per model, image size and format that format savings are measured against.

Revision ID: 0012_stored_sizes
Revises: 0011_lazy_rewrite_vectors
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import UtcDateTime

revision: str = "0012_stored_sizes"
down_revision: str | None = "0011_lazy_rewrite_vectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_sizes",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("output_format", sa.String(16), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", "width", "height", "output_format", name="pk_stored_sizes"),
    )


def downgrade() -> None:
    op.drop_table("stored_sizes")
