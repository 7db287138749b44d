"""Spend per budget scope and period, kept as a rollup beside the cost lines (issue 12).

Revision ID: 0007_spend_rollup
Revises: 0006_webhook_fleet
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007_spend_rollup"
down_revision: str | None = "0006_webhook_fleet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
