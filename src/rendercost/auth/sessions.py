"""Web sign-in sessions: an API key exchanged for an opaque cookie, kept server-side.

``open`` makes a session for a verified key and returns its secret once (the cookie's value); the
database keeps only the secret's SHA-256, the key it stands for and its expiry. ``resolve`` turns a
cookie back into the key, refusing an unknown, expired or ended session and a revoked key, so revoking a
key ends its sessions too. ``end`` (sign-out) marks the row ended: the same cookie is refused from then
on, wherever it was copied to.

Each session has a CSRF token, an HMAC of the secret: the server derives it from the cookie on every
request and never stores it, the page echoes it in ``X-CSRF-Token`` (or a ``csrf_token`` form field),
and a cross-site page, which cannot read the cookie or the page, cannot know it. All methods block (SQL).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update

from rendercost.auth.keys import ApiKey, KeyStore, hash_key
from rendercost.auth.tables import web_sessions
from rendercost.db.clock import as_utc
from rendercost.errors import AuthenticationFailed, NotFound, PermissionDenied

SESSION_COOKIE = "rendercost_session"  # the cookie's name
SESSION_PREFIX = "rcs_"  # every session secret starts with this (never a valid API key)
SESSION_TTL = timedelta(hours=12)  # a session is refused this long after sign-in
CSRF_HEADER = "X-CSRF-Token"  # where page scripts echo the token
CSRF_FIELD = "csrf_token"  # where plain forms carry it
_CSRF_CONTEXT = b"rendercost-csrf-v1"


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose cookie is ``secret``."""
    return hmac.new(secret.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: who signed in, the token unsafe requests must echo, and when it expires."""

    key: ApiKey  # the API key signed in with (its tenant and admin flag apply)
    csrf_token: str = field(repr=False)  # echoed by the page in X-CSRF-Token
    expires_at: datetime  # UTC

    def check_csrf(self, sent: str | None) -> None:
        """``PermissionDenied`` (403 ``csrf_token_invalid``) unless ``sent`` is this session's token."""
        if not sent or not hmac.compare_digest(sent.encode(), self.csrf_token.encode()):
            raise PermissionDenied(
                f"this request changes state: send the page's CSRF token in {CSRF_HEADER}",
                code="csrf_token_invalid",
            )


@dataclass(frozen=True)
class OpenedSession:
    """What ``open`` returns: the session and the cookie's secret, which is never stored."""

    session: Session
    secret: str = field(repr=False)


class SessionStore:
    """Web sessions in the shared database, next to the API keys they stand for."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl: timedelta = SESSION_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._keys = KeyStore(engine)
        self._ttl = ttl
        self._clock = clock

    def open(self, key: ApiKey) -> OpenedSession:
        """A new session for ``key`` (already verified); its secret is returned once. Sessions that
        expired are deleted on the way, so the table holds only the live and recently ended ones."""
        secret = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + self._ttl
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
            conn.execute(
                insert(web_sessions).values(
                    id_hash=hash_key(secret), key_id=key.id, created_at=now, expires_at=expires, ended_at=None
                )
            )
        return OpenedSession(Session(key, csrf_token(secret), expires), secret)

    def resolve(self, secret: str) -> Session:
        """The live session of cookie ``secret``; ``AuthenticationFailed`` when it is unknown, expired,
        ended, or its key was revoked."""
        refused = AuthenticationFailed("not signed in, or the session ended: sign in again")
        if not secret.startswith(SESSION_PREFIX):
            raise refused
        with self._engine.connect() as conn:
            row = conn.execute(select(web_sessions).where(web_sessions.c.id_hash == hash_key(secret))).first()
        if row is None or row.ended_at is not None or as_utc(row.expires_at) <= self._clock():
            raise refused
        try:
            key = self._keys.get(row.key_id)
        except NotFound:
            raise refused from None
        if not key.active:
            raise refused
        return Session(key, csrf_token(secret), as_utc(row.expires_at))

    def end(self, secret: str) -> None:
        """Sign out: the session of ``secret`` is refused from now on (ending twice is a no-op)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(web_sessions)
                .where(web_sessions.c.id_hash == hash_key(secret), web_sessions.c.ended_at.is_(None))
                .values(ended_at=self._clock())
            )
