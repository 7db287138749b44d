"""FOCUS export: the FinOps Foundation's validator passes it and its totals equal the ledger's."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rendercost.domain.costs import Stage
from rendercost.governance.focus import write_focus
from rendercost.ledger.ledger import Ledger
from tests.unit.governance.helpers import line, seed

UNSATISFIABLE_LEAVES = {"InvoiceId-C-004-C"}
T0 = datetime(2026, 3, 31, 23, 40, 5, tzinfo=UTC)


def seed_month_edge(engine: Engine) -> None:
    seed(
        engine,
        "job-1",
        T0,
        [line("job-1", Stage.DENOISE, "0.0123456789"), line("job-1", Stage.STORAGE, "0.0000001")],
    )
    seed(
        engine,
        "job-2",
        datetime(2026, 4, 1, 0, 5, tzinfo=UTC),
        [line("job-2", Stage.TEXT_ENCODE, "0.001"), line("job-2", Stage.DENOISE, "0", avoided="0.02")],
        tenant="globex",
        request_class=None,
    )
    seed(
        engine,
        "idle:w1:2026-04-01T00:00:00Z",
        datetime(2026, 4, 1, 0, 10, tzinfo=UTC),
        [line("idle:w1:2026-04-01T00:00:00Z", Stage.IDLE, "0.5", image_index=-1)],
        tenant="_machine",
    )


def test_rows_follow_focus_rules(migrated_engine: Engine, tmp_path: Path) -> None:
    seed_month_edge(migrated_engine)
    out = tmp_path / "focus.csv"
    result = write_focus(migrated_engine, out)
    rows = list(csv.DictReader(out.open()))
    assert result.rows == len(rows) == 5
    assert result.billed_total == Ledger(migrated_engine).total()
    first = rows[0]
    assert first["ChargePeriodStart"] == "2026-03-31T23:00:00Z"
    assert first["ChargePeriodEnd"] == "2026-04-01T00:00:00Z"
    assert first["BillingPeriodStart"] == "2026-03-01T00:00:00Z"
    assert first["BillingPeriodEnd"] == "2026-04-01T00:00:00Z"
    assert first["ServiceCategory"] == "AI and Machine Learning"
    assert first["ServiceSubcategory"] == "Generative AI"
    assert rows[1]["ServiceCategory"] == "Storage"
    assert first["x_AllocationOf"] == "machine cost"
    assert json.loads(first["Tags"]) == {
        "class": "interactive",
        "model": "tiny",
        "preset": "standard",
        "stage": "denoise",
        "team": "ml",
        "tenant": "acme",
    }
    for row in rows:
        assert Decimal(row["ListCost"]) == Decimal(row["ListUnitPrice"]) * Decimal(row["PricingQuantity"])
    assert [r["x_CostBasis"] for r in rows] == ["marginal"] * 4 + ["idle"]
    april = write_focus(migrated_engine, tmp_path / "april.csv", since=datetime(2026, 4, 1, tzinfo=UTC))
    assert april.rows == 3
    assert april.billed_total == Ledger(migrated_engine).total(since=datetime(2026, 4, 1, tzinfo=UTC))


def test_unknown_suffix_writes_nothing(migrated_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        write_focus(migrated_engine, tmp_path / "out" / "focus.xlsx")
    assert not (tmp_path / "out").exists()
