"""`rendercost migrate`: upgrade the database schema to the newest revision, then exit.

Every process also migrates at start (under an advisory lock on PostgreSQL); a deployment runs this once
before its servers and workers start (the compose file's `migrate` step, the Helm chart's hook Job), so
none of them waits on another's upgrade.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rendercost.cli.common import cli_errors, load_settings


def register(app: typer.Typer) -> None:
    """Add this module's command to ``app``."""
    app.command("migrate")(migrate)


def migrate(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object {before, after}.")] = False,
) -> None:
    """Upgrade the configured database to the newest schema revision (a no-op when already there)."""
    from rendercost.db.engine import create_db_engine  # SQLAlchemy and alembic: only when it runs
    from rendercost.db.migrate import current_revision
    from rendercost.db.migrate import migrate as upgrade

    with cli_errors():
        settings = load_settings(ctx)
        engine = create_db_engine(settings.resolved_database_url)
        try:
            before = current_revision(engine)
            upgrade(engine)
            after = current_revision(engine)
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps({"before": before, "after": after}))
    else:
        typer.echo(f"database at {after} (was {before or 'empty'})")
