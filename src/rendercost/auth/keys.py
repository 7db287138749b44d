"""Create, list, revoke and verify API keys.

A key is ``rc_`` followed by 43 URL-safe random characters. It is returned once, by ``create``; the
database keeps only its SHA-256, a short prefix to recognise it, its tenant and its tags. ``verify``
hashes what a client sent and looks the hash up. All methods are blocking (SQL): async callers run them
in a thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from rendercost.auth.tables import api_keys, tenants
from rendercost.errors import AuthenticationFailed, InvalidRequest, NotFound

KEY_PREFIX = "rc_"  # every key starts with this, so secret scanners can find leaked ones
PREFIX_CHARS = 10  # characters of the key kept in clear, for `keys list`
ADMIN_TENANT = "admin"  # tenant of the key made on first start
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_TAG_VALUE = 256


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str  # public id, e.g. "key_1a2b3c4d5e6f7a8b"
    tenant: str  # owner of everything the key creates
    prefix: str  # first characters of the key
    tags: dict[str, str] = field(default_factory=dict)  # carried to jobs and cost lines
    admin: bool = False  # made on first start; may administer
    created_at: datetime | None = None  # UTC
    revoked_at: datetime | None = None  # UTC; None while the key works
    webhook_secret: str | None = field(default=None, repr=False)  # signs its webhooks; None: server's

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class CreatedKey:
    """What ``create`` returns: the stored key and the secret, which is never shown again."""

    key: ApiKey
    secret: str = field(repr=False)


def hash_key(secret: str) -> str:
    """Hex SHA-256 of a key, as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_tags(pairs: Iterable[str]) -> dict[str, str]:
    """``["team=ml", "env=prod"]`` -> ``{"team": "ml", "env": "prod"}``; ``InvalidRequest`` otherwise."""
    tags: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _TAG_KEY_RE.match(name) or len(value) > MAX_TAG_VALUE:
            raise InvalidRequest(
                f"tag {pair!r} must be NAME=VALUE (NAME: letters, digits, _ . -; VALUE up to "
                f"{MAX_TAG_VALUE} characters)",
                param="tag",
            )
        tags[name] = value
    return tags


def _check_tenant(name: str) -> str:
    if not _TENANT_RE.match(name):
        raise InvalidRequest(
            f"tenant {name!r} must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            param="tenant",
        )
    return name


def _row_to_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant=row.tenant,
        prefix=row.prefix,
        tags=dict(row.tags or {}),
        admin=bool(row.admin),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        webhook_secret=row.webhook_secret,
    )


class KeyStore:
    """API keys and tenants in the shared database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        tenant: str,
        *,
        tags: dict[str, str] | None = None,
        admin: bool = False,
        webhook_secret: str | None = None,
    ) -> CreatedKey:
        """Make a key for ``tenant`` (created if new); the returned secret is shown once."""
        _check_tenant(tenant)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        key = ApiKey(
            id="key_" + secrets.token_hex(8),
            tenant=tenant,
            prefix=secret[:PREFIX_CHARS],
            tags=dict(tags or {}),
            admin=admin,
            created_at=now,
            webhook_secret=webhook_secret,
        )
        with self.engine.begin() as conn:
            if conn.execute(select(tenants.c.name).where(tenants.c.name == tenant)).first() is None:
                conn.execute(insert(tenants).values(name=tenant, created_at=now))
            conn.execute(
                insert(api_keys).values(
                    id=key.id,
                    tenant=tenant,
                    key_hash=hash_key(secret),
                    prefix=key.prefix,
                    tags=key.tags,
                    admin=admin,
                    webhook_secret=webhook_secret,
                    created_at=now,
                    revoked_at=None,
                )
            )
        return CreatedKey(key=key, secret=secret)

    def list_keys(self, *, tenant: str | None = None, include_revoked: bool = True) -> list[ApiKey]:
        """Keys, oldest first; optionally one tenant's, optionally only active ones."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_row_to_key(row) for row in conn.execute(query)]

    def get(self, key_id: str) -> ApiKey:
        """The key with id ``key_id`` (active or not); ``NotFound`` if absent."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}", param="key_id")
        return _row_to_key(row)

    def revoke(self, key_id: str) -> ApiKey:
        """Refuse the key from now on; revoking twice keeps the first time. ``NotFound`` if absent."""
        with self.engine.begin() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
            if row is None:
                raise NotFound(f"no API key with id {key_id!r}", param="key_id")
            if row.revoked_at is None:
                conn.execute(
                    update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=datetime.now(UTC))
                )
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
        return _row_to_key(row)

    def verify(self, secret: str) -> ApiKey:
        """The active key whose hash matches ``secret``; ``AuthenticationFailed`` otherwise."""
        if not secret.startswith(KEY_PREFIX):
            raise AuthenticationFailed("invalid API key")
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == hash_key(secret))).first()
        if row is None or row.revoked_at is not None:
            raise AuthenticationFailed("invalid or revoked API key")
        return _row_to_key(row)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(api_keys)).scalar_one())

    def ensure_admin_key(self, path: Path) -> CreatedKey | None:
        """On a fresh install (no keys at all) make an admin key and write it to ``path`` (mode 0600).

        Returns the new key, or None when keys already exist (then ``path`` is left alone).
        """
        if self.count() > 0:
            return None
        created = self.create(ADMIN_TENANT, admin=True, tags={"role": "admin"})
        write_secret_file(path, created.secret)
        return created


def write_secret_file(path: Path, secret: str) -> None:
    """Write ``secret`` and a newline to ``path``, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
