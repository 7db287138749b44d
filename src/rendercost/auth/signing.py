"""Webhook signing secrets kept in the database, and the Standard Webhooks signature.

``SigningSecrets.ensure(scope)`` returns the secret of a scope (``DEPLOYMENT_SCOPE``, or a tenant),
creating it on first use with insert-if-absent then read in one transaction: every server on one
database gets the same secret, also when several start at once (the primary key decides; the losers read
the winner's row). Secrets are ``whsec_<base64 of 32 random bytes>``, the Standard Webhooks form.

``standard_signature`` is the Standard Webhooks scheme (https://www.standardwebhooks.com):
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the secret's bytes: the base64 after
``whsec_`` for such a secret, the UTF-8 bytes of any other (an operator's ``webhook_secret`` or a key's
own ``--webhook-secret``); ``standard_secret`` gives that key in ``whsec_`` form for receivers' libraries.
Blocking (SQL) methods: async callers run them in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from rendercost.auth.tables import DEPLOYMENT_SCOPE, signing_secrets
from rendercost.db.upsert import insert_ignoring_conflicts

SECRET_PREFIX = "whsec_"  # noqa: S105  a public prefix, not a secret
SECRET_BYTES = 32
TOLERANCE_S = 300  # how far a webhook-timestamp may be from the receiver's clock (the spec's 5 minutes)


def new_signing_secret() -> str:
    """A fresh ``whsec_<base64>`` secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: base64-decoded after ``whsec_``, else its UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    return secret.encode()


def standard_secret(secret: str) -> str:
    """``secret`` as a Standard Webhooks library takes it (``whsec_<base64 of its key>``)."""
    return SECRET_PREFIX + base64.b64encode(signing_key(secret)).decode()


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard(secret: str, headers: Mapping[str, str], body: bytes, *, now: float) -> bool:
    """True when ``headers`` (lower-case names) carry a valid ``v1`` signature of ``body`` under
    ``secret`` and a ``webhook-timestamp`` within ``TOLERANCE_S`` of ``now`` (unix seconds)."""
    try:
        msg_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
        offered = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_S:
        return False
    expected = standard_signature(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


class SigningSecrets:
    """The ``signing_secrets`` table; blocking calls."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure(self, scope: str = DEPLOYMENT_SCOPE) -> str:
        """The secret of ``scope``, created if absent; every caller on one database gets the same."""
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignoring_conflicts(conn, signing_secrets, ["scope"]).values(
                    scope=scope, secret=new_signing_secret(), created_at=datetime.now(UTC)
                )
            )
            found = conn.execute(select(signing_secrets.c.secret).where(signing_secrets.c.scope == scope))
            return str(found.scalar_one())
