"""Governance tables: budgets, their reservations and alerts.

- ``budgets``: one row per scope (a tenant's name, or ``GLOBAL_SCOPE`` for all tenants together). The
  row is also the lock that serializes check-and-reserve (``SELECT ... FOR UPDATE`` on PostgreSQL).
- ``budget_reservations``: an admitted request's estimated cost, counted against the budget until its
  job reaches a terminal state (its actual cost is in the ledger by then).
- ``budget_alerts``: ``PRIMARY KEY (scope, period_start, threshold)`` makes every alert fire once.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text

from rendercost.db.metadata import metadata
from rendercost.db.types import JsonDocument, Money, UtcDateTime

GLOBAL_SCOPE = "*"  # budgets.scope of the budget over every tenant

budgets = Table(
    "budgets",
    metadata,
    Column("scope", String(128), primary_key=True),  # tenant name, or GLOBAL_SCOPE
    Column("amount", Money(), nullable=False),  # USD per period
    Column("period", String(8), nullable=False),  # "day" or "month", UTC calendar
    Column("override_until", UtcDateTime),  # admissions ignore the budget until then
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

budget_reservations = Table(
    "budget_reservations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("job_id", String(64)),  # NULL between reserve and enqueue
    Column("amount", Money(), nullable=False),  # the estimate, USD
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_budget_reservations_tenant", "tenant"),
    Index("ix_budget_reservations_job", "job_id"),
)

budget_alerts = Table(
    "budget_alerts",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("period_start", UtcDateTime, primary_key=True),
    Column(
        "threshold", String(16), primary_key=True
    ),  # "actual:50", "actual:80", "actual:100", "forecast:100"
    Column("payload", JsonDocument, nullable=False),  # what was sent
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),  # webhook accepted it (NULL: not yet, or no webhook)
    Column("last_error", Text),
)
