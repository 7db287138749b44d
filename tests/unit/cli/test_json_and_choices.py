"""Every listing or showing command of keys, budgets, models, anomalies and report takes ``--json``;
enumerated options are choices, listed by ``--help``, and a typo is a usage error (exit 2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rendercost.cli import app
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.domain.costs import Stage
from rendercost.settings import Settings
from tests.unit.governance.helpers import line, seed


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    engine = create_db_engine(Settings(data_dir=tmp_path).resolved_database_url)
    migrate(engine)
    seed(engine, "j1", datetime.now(UTC), [line("j1", Stage.DENOISE, "0.25")])
    engine.dispose()
    return tmp_path


def _run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_keys_list_json_never_shows_secrets(data_dir: Path) -> None:
    code, out, _ = _run(data_dir, "keys", "create", "--tenant", "acme", "--tag", "team=ml")
    assert code == 0
    secret = out.splitlines()[-1]
    code, out, _ = _run(data_dir, "keys", "list", "--json")
    assert code == 0
    [key] = json.loads(out)
    assert (key["tenant"], key["active"], key["admin"], key["tags"]) == ("acme", True, False, {"team": "ml"})
    assert key["id"].startswith("key_") and secret.startswith(key["prefix"])
    assert secret not in out and "webhook_secret" not in key


def test_budgets_list_and_show_json(data_dir: Path) -> None:
    assert _run(data_dir, "budgets", "set", "acme", "--amount", "10", "--period", "day")[0] == 0
    code, out, _ = _run(data_dir, "budgets", "list", "--json")
    assert code == 0
    [budget] = json.loads(out)
    assert (budget["scope"], budget["period"]) == ("acme", "day")
    assert Decimal(budget["spent_usd"]) == Decimal("0.25")
    code, out, _ = _run(data_dir, "budgets", "show", "acme", "--json")
    assert code == 0
    assert json.loads(out) == budget


def test_anomalies_json_is_an_array(data_dir: Path) -> None:
    code, out, _ = _run(data_dir, "anomalies", "--json")
    assert code == 0
    assert json.loads(out) == []


def test_report_json_flag_is_format_json(data_dir: Path) -> None:
    code, out, _ = _run(data_dir, "report", "--json")
    assert code == 0
    assert Decimal(json.loads(out)["rows"][0]["cost_usd"]) == Decimal("0.25")


def test_models_list_json(tmp_path: Path) -> None:
    code, out, _ = _run(tmp_path, "models", "list", "--json")
    assert code == 0
    [model] = json.loads(out)
    assert (model["name"], model["loadable"]) == ("default", True)
    assert "built on first use" in model["reason"]


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (("report", "--format", "xml"), ("table", "json", "csv")),
        (("budgets", "set", "acme", "--amount", "1", "--period", "week"), ("day", "month")),
    ],
)
def test_enumerated_options_are_choices(
    data_dir: Path, args: tuple[str, ...], choices: tuple[str, ...]
) -> None:
    code, _, err = _run(data_dir, *args)
    assert code == 2  # click's usage error
    assert "Invalid value for '--" in err
    command = [arg for arg in args if not arg.startswith("-")][: 2 if args[0] == "budgets" else 1]
    code, out, _ = _run(data_dir, *command, "--help")
    assert code == 0
    assert all(choice in out for choice in choices)
