"""Webhooks for a fleet: leases and a stored retry schedule on the outbox; signing secrets in the database.

Revision ID: 0006_webhook_fleet
Revises: 0005_rewrite_cache
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import UtcDateTime

revision: str = "0006_webhook_fleet"
down_revision: str | None = "0005_rewrite_cache"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_deliveries", sa.Column("next_attempt_at", UtcDateTime(), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("first_attempt_at", UtcDateTime(), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("lease_owner", sa.String(128), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("lease_expires_at", UtcDateTime(), nullable=True))
    op.execute("UPDATE webhook_deliveries SET next_attempt_at = updated_at")  # pending rows: due now
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("next_attempt_at", existing_type=UtcDateTime(), nullable=False)
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "signing_secrets",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_signing_secrets"),
    )


def downgrade() -> None:
    op.drop_table("signing_secrets")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
        batch.drop_column("first_attempt_at")
        batch.drop_column("next_attempt_at")
