"""`rendercost config show`: the effective settings, each with where it came from, secrets masked.

Origins: ``default``, ``toml`` (the ``--config`` file), ``secrets`` (a file in ``secrets_dir``), ``.env``,
``env`` (a ``RENDERCOST_*`` variable) or ``flag`` (a global option).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rendercost.cli.common import cli_errors, flag_values
from rendercost.cli.setting_origins import explain

config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(config_app, name="config")


@config_app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON array of {name, env, value, origin}.")
    ] = False,
) -> None:
    """Every setting's value and origin (default, toml, secrets, .env, env, flag); secrets masked."""
    with cli_errors():
        rows = explain(**flag_values(ctx))
    if as_json:
        typer.echo(json.dumps([row.to_dict() for row in rows], indent=2))
        return
    width = max(len(row.name) for row in rows)
    for row in rows:
        typer.echo(f"{row.name:<{width}}  {row.origin:<8}  {json.dumps(row.value)}")
