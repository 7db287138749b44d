"""`rendercost config show` and the one-line refusal of a misspelt setting, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rendercost
from rendercost.cli import app


@pytest.fixture(autouse=True)
def _no_ambient_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RENDERCOST_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("RENDERCOST_SECRETS_DIR", str(tmp_path / "absent-secrets"))


def test_serve_with_a_misspelt_variable_exits_naming_the_real_one(tmp_path: Path) -> None:
    source_root = str(Path(rendercost.__file__).parent.parent)  # the tree under test
    env = {
        **os.environ,
        "PYTHONPATH": source_root,
        "RENDERCOST_DATABSE_URL": "postgresql://db.invalid/rendercost",
        "RENDERCOST_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-c", "from rendercost.cli import main; main()", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "RENDERCOST_DATABSE_URL" in lines[0]
    assert "did you mean RENDERCOST_DATABASE_URL?" in lines[0]
    assert not (tmp_path / "data").exists()  # nothing started on the default SQLite file


def test_config_show_lists_values_with_origins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "rendercost.toml"
    config.write_text('region = "eu-central-1"\n')
    monkeypatch.setenv("RENDERCOST_MAX_N", "3")
    monkeypatch.setenv("RENDERCOST_WEBHOOK_SECRET", "do-not-print-me")
    result = CliRunner().invoke(
        app, ["--config", str(config), "--data-dir", str(tmp_path), "config", "show"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split(maxsplit=2)[1:] for line in result.output.splitlines()}
    assert lines["region"] == ["toml", '"eu-central-1"']
    assert lines["max_n"] == ["env", "3"]
    assert lines["data_dir"] == ["flag", json.dumps(str(tmp_path))]
    assert lines["port"] == ["default", "8000"]
    assert "do-not-print-me" not in result.output


def test_config_show_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RENDERCOST_DATABASE_URL", "postgresql://app:hunter2@db/rendercost")
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["database_url"] == {
        "name": "database_url",
        "env": "RENDERCOST_DATABASE_URL",
        "value": "postgresql://app:****@db/rendercost",
        "origin": "env",
    }
    assert rows["speed.compile"]["origin"] == "default"


def test_config_show_refuses_an_unknown_toml_key(tmp_path: Path) -> None:
    config = tmp_path / "rendercost.toml"
    config.write_text("max_nn = 3\n")
    result = CliRunner().invoke(app, ["--config", str(config), "config", "show"])
    assert result.exit_code == 2
    assert "unknown setting max_nn" in result.output
    assert "did you mean max_n?" in result.output
