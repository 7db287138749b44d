"""`rendercost artifacts sweep | lifecycle`: the storage lifecycle by hand.

- ``sweep``: delete the stored files whose every reference has expired (local folder or S3), their
  rows kept with ``deleted_at``; prints one JSON report. ``--dry-run`` lists what would go.
- ``lifecycle``: print the S3 lifecycle configuration for the bucket (one rule per request class, by
  the ``rendercost-class`` tag the sweeper writes); ``--apply`` puts it on the bucket
  (``put_bucket_lifecycle_configuration``, which replaces the bucket's rules). S3 stores only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from rendercost.cli.common import cli_errors, fail, load_settings


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    group = typer.Typer(help="Stored images: sweep expired ones, the bucket's lifecycle rules.")
    group.command("sweep")(sweep)
    group.command("lifecycle")(lifecycle)
    app.add_typer(group, name="artifacts")


def sweep(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the expired keys; delete nothing.")
    ] = False,
) -> None:
    """Delete the stored files whose every reference has expired; print what was done (JSON)."""
    settings = load_settings(ctx)
    from rendercost.artifacts.factory import open_artifact_store
    from rendercost.artifacts.maintenance import build_maintenance
    from rendercost.db.clock import utcnow
    from rendercost.db.engine import create_db_engine
    from rendercost.db.migrate import migrate

    engine = create_db_engine(settings.resolved_database_url)
    try:
        with cli_errors(), _s3_errors():
            migrate(engine)
            artifacts = open_artifact_store(settings.artifacts_url, settings.resolved_artifacts_dir)
            maintenance = build_maintenance(settings, engine, artifacts)
            if dry_run:
                now = utcnow()
                keys: list[str] = []
                while batch := maintenance.sweeper.expired_keys(now, after=keys[-1] if keys else ""):
                    keys.extend(batch)
                typer.echo(json.dumps({"at": now.isoformat(), "expired_keys": keys}))
                return
            report = maintenance.run_once()
    finally:
        engine.dispose()
    typer.echo(json.dumps(report.to_dict()))


def lifecycle(
    ctx: typer.Context,
    apply: Annotated[bool, typer.Option("--apply", help="Put the configuration on the bucket.")] = False,
) -> None:
    """Print the bucket's lifecycle configuration (JSON, as aws s3api
    put-bucket-lifecycle-configuration takes it): expiry days per request class."""
    settings = load_settings(ctx)
    if not settings.artifacts_url:
        fail("artifacts lifecycle needs an S3 store: set artifacts_url (s3://bucket/prefix)")
    from rendercost.artifacts.s3 import S3ArtifactStore, S3Location
    from rendercost.artifacts.s3_lifecycle import apply_configuration, lifecycle_configuration

    with cli_errors(), _s3_errors():
        location = S3Location.parse(settings.artifacts_url)
        grace = settings.artifact_lifecycle_grace_days
        configuration = lifecycle_configuration(location, settings.artifact_class_days, grace)
        typer.echo(json.dumps(configuration, indent=2))
        if apply:
            apply_configuration(S3ArtifactStore(location), configuration)
            typer.echo(f"applied to bucket {location.bucket}", err=True)


@contextmanager
def _s3_errors() -> Iterator[None]:
    """botocore's errors (no credentials, access denied, no such bucket) as one line and exit 2."""
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        fail(f"S3: {exc}")
