"""Governance: budgets, reservations, alerts, routing policies.

Revision ID: 0004_governance
Revises: 0003_api_keys
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import JsonDocument, Money, UtcDateTime

revision: str = "0004_governance"
down_revision: str | None = "0003_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("override_until", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_budgets"),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budget_reservations"),
    )
    op.create_index("ix_budget_reservations_tenant", "budget_reservations", ["tenant"])
    op.create_index("ix_budget_reservations_job", "budget_reservations", ["job_id"])
    op.create_table(
        "budget_alerts",
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("period_start", UtcDateTime(), nullable=False),
        sa.Column("threshold", sa.String(16), nullable=False),
        sa.Column("payload", JsonDocument, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("scope", "period_start", "threshold", name="pk_budget_alerts"),
    )
    op.create_table(
        "routing_policies",
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("rules", JsonDocument, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_routing_policies"),
    )


def downgrade() -> None:
    op.drop_table("routing_policies")
    op.drop_table("budget_alerts")
    op.drop_index("ix_budget_reservations_job", table_name="budget_reservations")
    op.drop_index("ix_budget_reservations_tenant", table_name="budget_reservations")
    op.drop_table("budget_reservations")
    op.drop_table("budgets")
