"""Web app sign-in sessions (issue 14).

Revision ID: 0009_web_sessions
Revises: 0008_artifact_lifecycle
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009_web_sessions"
down_revision: str | None = "0008_artifact_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
