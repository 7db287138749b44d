"""The webhook outbox: one row per job that asked for a webhook (Alembic revisions 0003_api_keys and
0006_webhook_fleet).

A row is written when the job is submitted, so a delivery survives a server restart. Once the job is
finished a dispatcher (``api.webhooks``) claims the row with a lease (``lease_owner`` until
``lease_expires_at``), POSTs it and records the outcome: ``delivered``, back to ``pending`` with the next
attempt's time, or ``failed`` when the retry schedule is spent.
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
    Column("attempts", Integer, nullable=False),  # POSTs tried so far (a claim counts one)
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),  # a pending row is not claimed before this
    Column("first_attempt_at", UtcDateTime, nullable=True),  # the schedule's max age counts from here
    Column("lease_owner", String(128), nullable=True),  # the dispatcher sending it now
    Column("lease_expires_at", UtcDateTime, nullable=True),  # after this another dispatcher may take it
    Index("ix_webhook_deliveries_state", "state", "created_at"),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
)
