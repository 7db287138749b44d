"""Storage lifecycle per request class: retention granted and deletion of artifacts (issue 17).

Revision ID: 0008_artifact_lifecycle
Revises: 0007_spend_rollup
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008_artifact_lifecycle"
down_revision: str | None = "0007_spend_rollup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
