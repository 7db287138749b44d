"""Savings by mechanism recorded per cost line (issue 17).

Revision ID: 0010_savings
Revises: 0009_web_sessions
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010_savings"
down_revision: str | None = "0009_web_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
