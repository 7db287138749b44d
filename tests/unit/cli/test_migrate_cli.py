"""`rendercost migrate`: upgrades an empty database to the newest revision, and is a no-op after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rendercost.cli import app
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import current_revision, head_revision


def test_migrate_upgrades_an_empty_database_then_does_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("RENDERCOST_DATABASE_URL", url)
    first = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "migrate", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"before": None, "after": head_revision()}
    engine = create_db_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    again = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "migrate"])
    assert again.exit_code == 0, again.output
    assert again.output.strip() == f"database at {head_revision()} (was {head_revision()})"
