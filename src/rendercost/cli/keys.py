"""`rendercost keys create|list|revoke`: tenants' API keys.

``create`` prints the key once, alone on the last line of its output (so scripts can take
``| tail -n1``); only its SHA-256 is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from rendercost.cli.common import cli_errors, load_settings

if TYPE_CHECKING:  # the key store imports SQLAlchemy: only a command that runs needs it
    from rendercost.auth.keys import ApiKey, KeyStore
    from rendercost.settings import Settings

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(keys_app, name="keys")


@contextmanager
def _key_store(settings: Settings) -> Iterator[KeyStore]:
    from rendercost.auth.keys import KeyStore
    from rendercost.db.engine import create_db_engine

    engine = create_db_engine(settings.resolved_database_url)
    try:
        from rendercost.db.migrate import migrate  # alembic: only when a command opens the database

        migrate(engine)
        yield KeyStore(engine)
    finally:
        engine.dispose()


@keys_app.command("create")
def create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option("--tenant", help="Owner of the key (created if new).")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="NAME=VALUE, repeatable.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An administrator's key.")] = False,
    webhook_secret: Annotated[
        str | None, typer.Option("--webhook-secret", help="Signs this key's webhooks (default: server's).")
    ] = None,
) -> None:
    """Make a key; it is printed once, alone on the last line."""
    from rendercost.auth.keys import parse_tags

    settings = load_settings(ctx)
    with cli_errors(), _key_store(settings) as store:
        created = store.create(tenant, tags=parse_tags(tag or []), admin=admin, webhook_secret=webhook_secret)
    tags = ", ".join(f"{k}={v}" for k, v in created.key.tags.items()) or "none"
    typer.echo(f"Created key {created.key.id} for tenant {created.key.tenant!r} (tags: {tags}).")
    typer.echo("Store it now: it is not shown again.")
    typer.echo(created.secret)


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of a table.")] = False,
) -> None:
    """Keys (never their secrets): id, tenant, prefix, state, tags."""
    settings = load_settings(ctx)
    with cli_errors(), _key_store(settings) as store:
        keys = store.list_keys(tenant=tenant)
    if as_json:
        typer.echo(json.dumps([_key_dict(key) for key in keys], indent=2))
        return
    typer.echo(f"{'ID':<22} {'TENANT':<20} {'PREFIX':<12} {'STATE':<8} {'CREATED':<20} TAGS")
    for key in keys:
        state = "active" if key.active else "revoked"
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S") if key.created_at else ""
        tags = ",".join(f"{k}={v}" for k, v in key.tags.items())
        typer.echo(f"{key.id:<22} {key.tenant:<20} {key.prefix + '…':<12} {state:<8} {created:<20} {tags}")


def _key_dict(key: ApiKey) -> dict[str, object]:
    """What ``list --json`` shows of a key: never its secret or webhook secret."""
    return {
        "id": key.id,
        "tenant": key.tenant,
        "prefix": key.prefix,
        "active": key.active,
        "admin": key.admin,
        "tags": dict(key.tags),
        "created_at": key.created_at.isoformat() if key.created_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")]
) -> None:
    """Refuse a key from now on."""
    settings = load_settings(ctx)
    with cli_errors(), _key_store(settings) as store:
        key = store.revoke(key_id)
    typer.echo(f"Revoked {key.id} (tenant {key.tenant!r}).")
