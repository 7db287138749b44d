"""What every command shares: settings from the global options, and the one-line error exit."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click
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


@dataclass(frozen=True)
class Choices:
    """An enumerated option's valid names, for ``typer.Option(**choices.option(help))``: ``--help`` shows
    them (as the option's metavar), shell completion offers them, and any other value ends the
    command before it does anything, with one line on stderr and exit 2 (click's own Choice error spans
    several lines). The value reaches the command as its canonical name (lower case, aliases resolved)."""

    what: str  # what a name names, for the error line: "preset", "format"
    names: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)  # another spelling -> its name

    def option(self, help_text: str) -> dict[str, Any]:
        """``typer.Option`` keyword arguments: metavar, completion, the check, the help text."""
        return {
            "metavar": "[" + "|".join(self.names) + "]",
            "shell_complete": self.complete,
            "callback": self.check,
            "help": help_text,
        }

    def complete(self, _ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
        """The names that start with what has been typed."""
        return [name for name in self.names if name.startswith(incomplete.lower())]

    def check(self, value: str | None) -> str | None:
        """``value``'s canonical name (None stays None); ``fail`` naming the valid ones otherwise."""
        if value is None:
            return None
        text = value.strip().lower()
        text = self.aliases.get(text, text)
        if text not in self.names:
            fail(f"unknown {self.what} {value!r}; choose one of: {', '.join(self.names)}")
        return text


def flag_values(ctx: typer.Context, **overrides: Any) -> dict[str, Any]:
    """The settings given as flags: the global options and ``overrides`` (a command's) that are set."""
    state: CliState = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if state.config is not None:
        values["config"] = state.config
    if state.data_dir is not None:
        values["data_dir"] = state.data_dir
    return values


def load_settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings from global options, env, .env, secrets and TOML; ``overrides`` (a command's flags) win.

    Also sets the level of rendercost's loggers from ``log_level``.
    """
    with cli_errors():
        settings = Settings(**flag_values(ctx, **overrides))
    configure_logging(settings.log_level)
    return settings


def configure_logging(level: str) -> None:
    """``rendercost.*`` loggers at ``level`` ("info", ...); where records go is the command's choice
    (``serve`` and ``worker`` install JSON lines on stderr)."""
    logging.getLogger("rendercost").setLevel(level.upper())


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
