"""The session store on SQLite and PostgreSQL: open, resolve, end, expiry, revoked keys, the CSRF token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from rendercost.auth.keys import KeyStore
from rendercost.auth.sessions import SessionStore, csrf_token
from rendercost.auth.tables import web_sessions
from rendercost.errors import AuthenticationFailed, PermissionDenied


def test_a_session_resolves_to_its_key_until_it_ends(migrated_engine: Engine) -> None:
    keys = KeyStore(migrated_engine)
    key = keys.create("acme").key
    store = SessionStore(migrated_engine)
    opened = store.open(key)
    session = store.resolve(opened.secret)
    assert session.key.id == key.id and session.key.tenant == "acme"
    assert session.csrf_token == csrf_token(opened.secret) == opened.session.csrf_token
    with migrated_engine.connect() as conn:
        row = conn.execute(select(web_sessions)).one()
    assert opened.secret not in row and opened.session.csrf_token not in row  # neither is stored
    store.end(opened.secret)
    store.end(opened.secret)  # twice: a no-op
    with pytest.raises(AuthenticationFailed):
        store.resolve(opened.secret)
    other = store.open(key)  # another sign-in of the same key is its own session
    assert store.resolve(other.secret).key.id == key.id


def test_expired_forged_and_revoked_sessions_are_refused(migrated_engine: Engine) -> None:
    keys = KeyStore(migrated_engine)
    created = keys.create("acme")
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    store = SessionStore(migrated_engine, ttl=timedelta(hours=1), clock=lambda: now[0])
    opened = store.open(created.key)
    for forged in ("", "rcs_nope", created.secret, opened.secret + "x"):
        with pytest.raises(AuthenticationFailed):
            store.resolve(forged)
    now[0] += timedelta(minutes=59)
    assert store.resolve(opened.secret).expires_at == datetime(2026, 3, 1, 1, tzinfo=UTC)
    now[0] += timedelta(minutes=1)
    with pytest.raises(AuthenticationFailed):
        store.resolve(opened.secret)
    store.open(created.key)  # the next sign-in deletes the expired row
    with migrated_engine.connect() as conn:
        assert len(conn.execute(select(web_sessions)).all()) == 1
    live = SessionStore(migrated_engine).open(created.key)
    keys.revoke(created.key.id)
    with pytest.raises(AuthenticationFailed):
        SessionStore(migrated_engine).resolve(live.secret)


def test_the_csrf_token_is_checked_exactly(migrated_engine: Engine) -> None:
    key = KeyStore(migrated_engine).create("acme").key
    session = SessionStore(migrated_engine).open(key).session
    session.check_csrf(session.csrf_token)
    for wrong in (None, "", session.csrf_token[:-1], session.csrf_token.upper() + "0"):
        with pytest.raises(PermissionDenied) as refused:
            session.check_csrf(wrong)
        assert refused.value.code == "csrf_token_invalid"
