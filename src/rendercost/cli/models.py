"""`rendercost models list` and `rendercost models build-tiny PATH`.

The execution package (torch, diffusers) is imported inside the commands, so ``rendercost --help`` and
the other commands start without paying for it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rendercost.cli.common import cli_errors, load_settings

models_app = typer.Typer(
    name="models",
    help="Configured models: list them, build the tiny test model.",
    no_args_is_help=True,
)


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON array of {name, source, loadable, reason}.")
    ] = False,
) -> None:
    """Show every configured model and whether it can load (nothing is loaded or built)."""
    settings = load_settings(ctx)
    with cli_errors():
        from rendercost.execution.models.registry import ModelRegistry

        statuses = ModelRegistry(settings).status()
    if as_json:
        typer.echo(json.dumps([asdict(status) for status in statuses], indent=2))
        return
    table = Table(title="Models")
    for column in ("name", "source", "loadable", "details"):
        table.add_column(column, overflow="fold")
    for status in statuses:
        loadable = "[green]yes[/green]" if status.loadable else "[red]no[/red]"
        table.add_row(status.name, status.source, loadable, status.reason)
    Console().print(table)


@models_app.command("build-tiny")
def build_tiny(
    path: Annotated[Path, typer.Argument(help="Folder to create (must not exist, or be empty).")],
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write the tiny SDXL-shaped model (random weights, speed LoRAs) that tests and the default use."""
    with cli_errors():
        from rendercost.execution.models.tiny_model import build_tiny_model

        build_tiny_model(path, seed=seed)
    typer.echo(f"built the tiny model in {path}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(models_app)
