"""``render``'s enumerated options are choices: ``--help`` lists them, completion offers them, any other
value is one line and exit 2 before anything runs (the bad values themselves: ``test_render.BAD_INPUTS``)."""

from __future__ import annotations

import click
import pytest
from typer.testing import CliRunner

from rendercost.cli import app
from rendercost.cli.common import Choices
from rendercost.cli.render import FORMAT_CHOICES, PRESET_CHOICES
from rendercost.domain.presets import PRESETS
from rendercost.domain.specs import OutputFormat


def test_render_help_lists_every_preset_and_format() -> None:
    result = CliRunner().invoke(app, ["render", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    assert "[" + "|".join(PRESETS) + "]" in result.stdout
    assert "[" + "|".join(f.value for f in OutputFormat) + "]" in result.stdout


@pytest.mark.parametrize(
    ("choices", "typed", "name"),
    [
        (FORMAT_CHOICES, "JPG", "jpeg"),
        (FORMAT_CHOICES, " webp", "webp"),
        (PRESET_CHOICES, "Lightning", "lightning"),
    ],
)
def test_a_value_reaches_the_command_as_its_canonical_name(choices: Choices, typed: str, name: str) -> None:
    assert choices.check(typed) == name


def test_no_value_stays_none() -> None:
    assert FORMAT_CHOICES.check(None) is None


def test_completion_offers_the_names_that_match() -> None:
    command = click.Command("render")
    param = click.Option(["--preset"])
    assert PRESET_CHOICES.complete(click.Context(command), param, "") == list(PRESETS)
    assert PRESET_CHOICES.complete(click.Context(command), param, "sp") == ["speed"]
    assert FORMAT_CHOICES.complete(click.Context(command), param, "J") == ["jpeg"]


def test_a_typo_is_one_line_and_exit_2_even_before_the_prompt_is_checked() -> None:
    result = CliRunner().invoke(app, ["render", "", "--preset", "lightnin"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown preset 'lightnin'; choose one of: " + ", ".join(PRESETS)
    ]
