"""Parsing `rendercost batch` files: good lines become requests, bad lines are named by number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rendercost.cli.batch_lines import parse_line, read_lines
from rendercost.domain.specs import OutputFormat, Priority
from rendercost.errors import InvalidRequest
from rendercost.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, min_side=64, max_n=4)


def test_full_line(settings: Settings) -> None:
    line = json.dumps(
        {
            "prompt": "a barn owl",
            "negative": "blurry",
            "preset": "lightning",
            "size": "64x128",
            "n": 3,
            "seed": 42,
            "model": "default",
            "format": "jpg",
            "retention_days": 90,
        }
    )
    request = parse_line(line, settings)
    assert request.n == 3
    assert request.priority is Priority.BATCH
    spec = request.spec
    assert (spec.prompt, spec.negative_prompt, spec.preset) == ("a barn owl", "blurry", "lightning")
    assert (spec.width, spec.height, spec.seed) == (64, 128, 42)
    assert spec.output_format is OutputFormat.JPEG
    assert request.retention.asked_days == 90  # granted at admission


def test_defaults_and_random_seed(settings: Settings) -> None:
    request = parse_line('{"prompt": "a fern"}', settings)
    assert request.n == 1
    assert request.spec.preset == "speed"
    assert request.spec.model == settings.default_model
    assert 0 <= request.spec.seed <= 2**32 - 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"negative": "x"}', "prompt is required"),
        ('{"prompt": "  "}', "prompt must not be empty"),
        ('{"prompt": "x", "steps": 3}', "unknown field(s) steps"),
        ('{"prompt": "x", "preset": "turbo"}', "unknown preset"),
        ('{"prompt": "x", "size": "big"}', "WIDTHxHEIGHT"),
        ('{"prompt": "x", "size": "60x64"}', "multiples of 8"),
        ('{"prompt": "x", "n": 9}', "n must be between 1 and 4"),
        ('{"prompt": "x", "n": true}', "n must be an integer"),
        ('{"prompt": "x", "seed": 4294967295, "n": 2}', "seed must be"),
        ('{"prompt": "x", "model": "sdxl-base"}', "unknown model"),
        ('{"prompt": "x", "format": "gif"}', "format 'gif'"),
        ('{"prompt": "x", "retention_days": 366}', "longest retention allowed here (365 days)"),
        ('{"prompt": "x", "retention_days": "1"}', "retention_days must be an integer"),
    ],
)
def test_bad_lines_name_their_fault(settings: Settings, line: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_line(line, settings)
    assert message in caught.value.message


def test_read_lines_numbers_lines_and_skips_blanks_and_comments(settings: Settings) -> None:
    text = ['{"prompt": "one", "seed": 1}', "", "# a comment", "{oops", '{"prompt": "five", "seed": 1}']
    good, bad = read_lines(text, settings)
    assert [line.number for line in good] == [1, 5]
    assert [(line.number, line.error.split(" (")[0]) for line in bad] == [(4, "not valid JSON")]
    assert good[0].idempotency_key != good[1].idempotency_key
    again, _ = read_lines(text, settings)
    assert [line.idempotency_key for line in again] == [line.idempotency_key for line in good]
