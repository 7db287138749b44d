"""The governance commands end to end over a real SQLite file: budgets, report, export, anomalies."""

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
from rendercost.ledger.ledger import Ledger
from rendercost.settings import Settings
from tests.unit.governance.helpers import line, seed


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    engine = create_db_engine(Settings(data_dir=tmp_path).resolved_database_url)
    migrate(engine)
    now = datetime.now(UTC)
    seed(engine, "j1", now, [line("j1", Stage.DENOISE, "0.25"), line("j1", Stage.DECODE, "0.05")])
    seed(engine, "j2", now, [line("j2", Stage.DENOISE, "0.125")], tenant="globex", preset="lightning")
    engine.dispose()
    return tmp_path


def _run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    return result.exit_code, result.stdout, result.stderr


def test_budgets_commands(data_dir: Path) -> None:
    code, out, _ = _run(data_dir, "budgets", "set", "acme", "--amount", "10", "--period", "day")
    assert code == 0
    assert Decimal(json.loads(out)["spent_usd"]) == Decimal("0.3")
    assert _run(data_dir, "budgets", "set", "global", "--amount", "100")[0] == 0
    code, out, _ = _run(data_dir, "budgets", "list")
    assert code == 0
    assert "acme" in out
    assert "global" in out
    code, out, _ = _run(data_dir, "budgets", "override", "acme", "--until", "2999-01-01T00:00:00Z")
    assert code == 0
    assert json.loads(out)["override_until"].startswith("2999-01-01")
    code, _, err = _run(data_dir, "budgets", "set", "acme", "--amount", "-5")
    assert code == 2
    assert "positive" in err
    code, _, err = _run(data_dir, "budgets", "show", "nobody")
    assert code == 2
    assert "no budget" in err
    assert _run(data_dir, "budgets", "override", "acme")[0] == 2


def test_report_and_export(data_dir: Path, tmp_path: Path) -> None:
    code, out, _ = _run(data_dir, "report", "--by", "tenant,preset", "--format", "json")
    assert code == 0
    report = json.loads(out)
    total = sum(Decimal(row["cost_usd"]) for row in report["rows"])
    engine = create_db_engine(Settings(data_dir=data_dir).resolved_database_url)
    assert total == Ledger(engine).total() == Decimal("0.425")
    engine.dispose()
    code, out, _ = _run(data_dir, "report", "--by", "model")
    assert code == 0
    assert "allocated 0.425" in out
    code, out, _ = _run(data_dir, "report", "--format", "csv")
    assert out.splitlines()[0].startswith("tenant,renders")
    assert _run(data_dir, "report", "--by", "colour")[0] == 2
    assert _run(data_dir, "report", "--since", "yesterday")[0] == 2
    target = tmp_path / "focus.csv"
    code, out, _ = _run(data_dir, "export", "focus", "--out", str(target))
    assert code == 0
    assert "Wrote 3 FOCUS rows" in out
    assert "0.425" in out
    code, _, err = _run(data_dir, "export", "focus", "--out", str(tmp_path / "focus.json"))
    assert code == 2
    assert "unknown export format" in err
    code, out, _ = _run(data_dir, "anomalies")
    assert code == 0
    assert "No spend anomalies." in out
