"""Tables of tenants, API keys, webhook signing secrets and web sign-in sessions, on the shared metadata
(Alembic revisions 0003_api_keys, 0006_webhook_fleet and 0009_web_sessions)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, String, Table

from rendercost.db.metadata import metadata
from rendercost.db.types import JsonDocument, UtcDateTime

MAX_TENANT_LENGTH = 64  # tenant names; jobs.tenant (128) holds any of them

tenants = Table(
    "tenants",
    metadata,
    Column("name", String(MAX_TENANT_LENGTH), primary_key=True),  # the tenant id on jobs and cost lines
    Column("created_at", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # public id, e.g. "key_1a2b3c4d5e6f7a8b"
    Column("tenant", String(MAX_TENANT_LENGTH), ForeignKey("tenants.name"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # hex SHA-256 of the secret key
    Column("prefix", String(16), nullable=False),  # first characters of the key, to recognise it
    Column("tags", JsonDocument, nullable=False),  # {"k": "v"} carried to the key's jobs and cost lines
    Column("admin", Boolean, nullable=False),  # may administer (the first key of a fresh install)
    Column("webhook_secret", String(128), nullable=True),  # signs this key's webhooks; None: server's
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),  # a revoked key is refused
)

DEPLOYMENT_SCOPE = "*"  # the signing_secrets row of the whole deployment (no tenant is named "*")

signing_secrets = Table(
    "signing_secrets",
    metadata,
    Column("scope", String(MAX_TENANT_LENGTH), primary_key=True),  # DEPLOYMENT_SCOPE, or a tenant
    Column("secret", String(128), nullable=False),  # whsec_<base64 of 32 random bytes>
    Column("created_at", UtcDateTime, nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # hex SHA-256 of the cookie's secret; never the secret
    Column("key_id", String(32), ForeignKey("api_keys.id"), nullable=False, index=True),  # who signed in
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),  # refused from then on
    Column("ended_at", UtcDateTime, nullable=True),  # signed out; refused from then on
)
