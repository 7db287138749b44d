"""The webhook outbox: one row per job that asked for a webhook (Alembic revision 0003_api_keys).

A row is written when the job is submitted, so a delivery survives a server restart; the dispatcher
(``api.webhooks``) delivers it once the job is finished and records the outcome.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from rendercost.db.metadata import metadata
from rendercost.db.types import UtcDateTime

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("job_id", String(64), primary_key=True),  # one delivery per job
    Column("tenant", String(128), nullable=False),
    Column("key_id", String(32), nullable=True),  # key that submitted the job: its secret signs
    Column("url", Text, nullable=False),
    Column("base_url", Text, nullable=False),  # the server's URL as the client saw it, for image links
    Column("state", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),  # POSTs tried so far
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_webhook_deliveries_state", "state", "created_at"),
)
