"""API keys: shown once, stored hashed, tagged, revocable; the first start makes an admin key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from rendercost.auth.keys import KeyStore, hash_key, parse_tags
from rendercost.auth.tables import api_keys
from rendercost.cli import app
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.errors import AuthenticationFailed, InvalidRequest, NotFound


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    migrate(engine)
    return engine


def test_create_verify_revoke(engine: Engine) -> None:
    store = KeyStore(engine)
    created = store.create("acme", tags={"team": "ml"})
    assert created.secret.startswith("rc_") and len(created.secret) > 40
    assert created.secret not in repr(created)
    verified = store.verify(created.secret)
    assert (verified.id, verified.tenant, verified.tags) == (created.key.id, "acme", {"team": "ml"})
    with engine.connect() as conn:
        row = conn.execute(select(api_keys)).one()
    assert row.key_hash == hash_key(created.secret)
    assert created.secret not in str(tuple(row))  # only the hash is stored
    store.revoke(created.key.id)
    with pytest.raises(AuthenticationFailed):
        store.verify(created.secret)
    with pytest.raises(NotFound):
        store.revoke("key_missing")
    assert not store.list_keys()[0].active


def test_bad_input_is_refused(engine: Engine) -> None:
    store = KeyStore(engine)
    with pytest.raises(InvalidRequest):
        store.create("bad tenant!")
    with pytest.raises(InvalidRequest):
        parse_tags(["novalue"])
    assert parse_tags(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(AuthenticationFailed):
        store.verify("rc_unknown")


def test_first_start_makes_one_admin_key(engine: Engine, tmp_path: Path) -> None:
    store = KeyStore(engine)
    path = tmp_path / "admin-key"
    created = store.ensure_admin_key(path)
    assert created is not None and created.key.admin
    assert path.read_text().strip() == created.secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.ensure_admin_key(path) is None  # keys exist now: nothing new
    assert store.verify(created.secret).tenant == "admin"


def test_cli_create_prints_the_key_last_then_list_and_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    created = runner.invoke(app, [*base, "keys", "create", "--tenant", "acme", "--tag", "team=ml"])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("rc_")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'rendercost.db'}")
    key = KeyStore(engine).verify(secret)
    assert key.tags == {"team": "ml"}
    listed = runner.invoke(app, [*base, "keys", "list"])
    assert key.id in listed.output and "team=ml" in listed.output and secret not in listed.output
    revoked = runner.invoke(app, [*base, "keys", "revoke", key.id])
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(app, [*base, "keys", "list"]).output
    bad = runner.invoke(app, [*base, "keys", "create", "--tenant", "acme", "--tag", "oops"])
    assert bad.exit_code == 2
    engine.dispose()
