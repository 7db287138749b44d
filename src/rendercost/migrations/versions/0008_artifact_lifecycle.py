"""Storage lifecycle per request class: retention granted and deletion of artifacts (issue 17).

Rows written before this revision were priced for 30 days (the one retention there was): they get
``retention_days`` 30 and ``expires_at`` 30 days after they were created.

Revision ID: 0008_artifact_lifecycle
Revises: 0007_spend_rollup
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import UtcDateTime

revision: str = "0008_artifact_lifecycle"
down_revision: str | None = "0007_spend_rollup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_RETENTION_DAYS = 30  # what every artifact was priced for before this revision
_BATCH = 1000


def upgrade() -> None:
    op.add_column("artifacts", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.add_column("artifacts", sa.Column("expires_at", UtcDateTime(), nullable=True))
    op.add_column("artifacts", sa.Column("deleted_at", UtcDateTime(), nullable=True))
    op.create_index("ix_artifacts_live_expiry", "artifacts", ["deleted_at", "expires_at"])
    _backfill()


def _backfill() -> None:
    """``expires_at`` of the existing rows, computed in Python (date arithmetic differs per engine)."""
    table = sa.table(
        "artifacts",
        sa.column("id", sa.BigInteger()),
        sa.column("created_at", UtcDateTime()),
        sa.column("retention_days", sa.Integer()),
        sa.column("expires_at", UtcDateTime()),
    )
    conn = op.get_bind()
    while rows := conn.execute(
        sa.select(table.c.id, table.c.created_at).where(table.c.expires_at.is_(None)).limit(_BATCH)
    ).all():
        for row in rows:
            conn.execute(
                table.update()
                .where(table.c.id == row.id)
                .values(
                    retention_days=LEGACY_RETENTION_DAYS,
                    expires_at=row.created_at + timedelta(days=LEGACY_RETENTION_DAYS),
                )
            )


def downgrade() -> None:
    op.drop_index("ix_artifacts_live_expiry", table_name="artifacts")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("expires_at")
        batch.drop_column("retention_days")
