"""What every command shares: settings from the global options, and the one-line error exit."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError

from rendercost.errors import RenderCostError
from rendercost.settings import Settings

EXIT_BAD_INPUT = 2


@dataclass
class CliState:
    """Global options, stored on the Typer context."""

    config: Path | None = None
    data_dir: Path | None = None


def load_settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings from global options, env and TOML; ``overrides`` (flags set by a command) win."""
    state: CliState = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if state.config is not None:
        values["config"] = state.config
    if state.data_dir is not None:
        values["data_dir"] = state.data_dir
    with cli_errors():
        return Settings(**values)


def fail(message: str) -> NoReturn:
    """Print one readable line on stderr and exit 2."""
    first_line = " ".join(message.split())
    print(f"error: {first_line}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn rendercost, settings and file errors into ``fail``."""
    try:
        yield
    except RenderCostError as exc:
        fail(exc.message)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        fail(f"invalid settings: {problems}")
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        fail(str(exc))
