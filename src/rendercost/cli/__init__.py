"""The ``rendercost`` command: one Typer app; each sub-module registers its own commands.

Global options (before the command): ``--config FILE``, ``--data-dir DIR`` and ``--version``. Any
RenderCostError or bad input ends the command with exit code 2 and one readable line on stderr.

Command modules import the heavy packages (torch, diffusers, the API, the stores) inside the command
that runs, never at module level: ``rendercost --help`` and ``--version`` start in well under a second
(``tests/unit/cli/test_startup.py`` checks what they import).
"""

from __future__ import annotations

import os

# diffusers and transformers announce optional backends (torchvision, ...) on import; a CLI user
# wants errors only. Set before any submodule imports them; an explicit env setting still wins.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

from pathlib import Path
from typing import Annotated

import typer

from rendercost.cli import (
    artifacts,
    batch,
    config,
    governance,
    keys,
    migrate,
    models,
    plan,
    render,
    serve,
    worker,
)
from rendercost.cli.common import CliState

app = typer.Typer(
    name="rendercost",
    help="A text-to-image server that knows what every render costs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _print_version(requested: bool) -> None:
    if requested:
        from importlib.metadata import version  # ~0.1 s: only when asked

        typer.echo(f"rendercost {version('rendercost')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (or RENDERCOST_CONFIG).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Models, database, artifacts (or RENDERCOST_DATA_DIR)."),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    ctx.obj = CliState(config=config, data_dir=data_dir)


for _module in (render, models, batch, worker, serve, keys, governance, plan, config, artifacts, migrate):
    _module.register(app)


def main() -> None:
    app()
