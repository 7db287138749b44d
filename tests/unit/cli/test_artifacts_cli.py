"""`rendercost artifacts sweep` over the settings' database and local folder; `render --retention-days`
above the cap is refused before anything loads."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from rendercost.artifacts.local import LocalArtifactStore
from rendercost.artifacts.tables import artifacts
from rendercost.cli import app
from rendercost.db.clock import utcnow
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from tests.unit.artifacts.test_sweeper import reference

ENV = {"RENDERCOST_CONFIG": None, "RENDERCOST_DATABASE_URL": None, "RENDERCOST_ARTIFACTS_URL": None}


def test_sweep_deletes_what_expired_and_dry_run_only_lists(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'rendercost.db'}")
    migrate(engine)
    store = LocalArtifactStore(tmp_path / "artifacts")
    old = store.put(b"yesterday's draft", media_type="image/webp", suffix="webp")
    new = store.put(b"today's final", media_type="image/png", suffix="png")
    now = utcnow()
    old_job = reference(engine, old, days=1, created=now - timedelta(days=2))
    reference(engine, new, days=30, created=now)
    runner = CliRunner(env=ENV)
    args = ["--data-dir", str(tmp_path), "artifacts", "sweep"]

    listed = runner.invoke(app, [*args, "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["expired_keys"] == [old.key]
    assert store.exists(old.key)

    swept = runner.invoke(app, args)
    assert swept.exit_code == 0, swept.output
    report = json.loads(swept.stdout)
    assert (report["files_deleted"], report["bytes_freed"], report["rows_marked"]) == (1, old.size_bytes, 1)
    assert not store.exists(old.key) and store.exists(new.key)
    with engine.connect() as conn:
        marked = conn.execute(
            select(artifacts.c.deleted_at).where(artifacts.c.job_id == old_job)
        ).scalar_one()
    assert marked is not None
    engine.dispose()


def test_render_refuses_a_retention_above_the_cap(tmp_path: Path) -> None:
    result = CliRunner(env=ENV).invoke(
        app, ["--data-dir", str(tmp_path), "render", "a chair", "--retention-days", "400"]
    )
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "retention-days 400" in line and "365" in line
    assert not (tmp_path / "rendercost.db").exists()  # refused before the database was opened
