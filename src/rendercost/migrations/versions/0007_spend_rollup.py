"""Spend per budget scope and UTC day, kept as a rollup beside the cost lines (issue 12), filled from
the ledger that exists; and an index on (model, preset, id) so admission's cost estimate reads only
the newest lines: admission's cost no longer grows with the ledger.

Revision ID: 0007_spend_rollup
Revises: 0006_webhook_fleet
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext

import sqlalchemy as sa
from alembic import op

from rendercost.db.types import DECIMAL_PRECISION, Money, UtcDateTime, exact_sum

revision: str = "0007_spend_rollup"
down_revision: str | None = "0006_webhook_fleet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL_TENANTS = "*"  # the scope of every tenant's lines together


def upgrade() -> None:
    rollup = op.create_table(
        "spend_rollup",
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("day", UtcDateTime(), nullable=False),
        sa.Column("cost", Money(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day", name="pk_spend_rollup"),
    )
    assert rollup is not None  # noqa: S101  op.create_table returns the table it made
    op.bulk_insert(rollup, _backfill(op.get_bind()))
    op.create_index("ix_cost_lines_model_preset_id", "cost_lines", ["model", "preset", "id"])


def _backfill(conn: sa.Connection) -> list[dict[str, object]]:
    """The rollup of the ledger as it stands: exact sums per (tenant, UTC day), and per day overall."""
    lines = sa.table(
        "cost_lines", sa.column("tenant", sa.String()), sa.column("cost", Money()), sa.column("created_at")
    )
    if conn.dialect.name == "sqlite":  # UTC text, "YYYY-MM-DD HH:MM:SS.ffffff"
        day = sa.func.substr(lines.c.created_at, 1, 10)
    else:
        day = sa.func.to_char(sa.func.timezone("UTC", lines.c.created_at), "YYYY-MM-DD")
    query = sa.select(lines.c.tenant, day, exact_sum(lines.c.cost), sa.func.count()).group_by(
        lines.c.tenant, day
    )
    totals: dict[tuple[str, datetime], tuple[Decimal, int]] = defaultdict(lambda: (Decimal(0), 0))
    with localcontext() as ctx:
        ctx.prec = DECIMAL_PRECISION
        for tenant, text, cost, count in conn.execute(query):
            moment = datetime.combine(date.fromisoformat(str(text)), datetime.min.time(), UTC)
            for scope in (tenant, ALL_TENANTS):
                total, n = totals[(scope, moment)]
                totals[(scope, moment)] = (total + Decimal(str(cost)), n + int(count))
    now = datetime.now(UTC)
    return [
        {"scope": scope, "day": moment, "cost": cost, "lines": n, "updated_at": now}
        for (scope, moment), (cost, n) in sorted(totals.items())
    ]


def downgrade() -> None:
    op.drop_index("ix_cost_lines_model_preset_id", table_name="cost_lines")
    op.drop_table("spend_rollup")
