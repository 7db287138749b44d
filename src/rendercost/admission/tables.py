"""Admission tables: preset-routing policies (per tenant, request class -> preset and priority)."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from rendercost.db.metadata import metadata
from rendercost.db.types import JsonDocument, UtcDateTime

routing_policies = Table(
    "routing_policies",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("rules", JsonDocument, nullable=False),  # {"draft": {"preset": "lightning", "priority": "batch"}}
    Column("updated_at", UtcDateTime, nullable=False),
)
