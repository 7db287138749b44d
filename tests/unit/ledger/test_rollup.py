"""The spend rollup: budgets read it; a transaction that fails leaves neither lines nor rollup; a repeat
is rolled up once; the migration fills it from an existing ledger (SQLite and PostgreSQL). That it equals
the ledger after a mix of real renders is tested through the API (tests/unit/api/test_spend_rollup.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select

from rendercost.db.clock import ManualClock
from rendercost.db.engine import create_db_engine
from rendercost.db.metadata import metadata
from rendercost.db.migrate import load_table_modules, migrate
from rendercost.domain.costs import Attribution, Stage
from rendercost.governance.budgets import BudgetStore
from rendercost.ledger import rollup
from rendercost.ledger.ledger import Ledger
from rendercost.ledger.tables import ALL_TENANTS, cost_lines, spend_rollup
from rendercost.queue.sql_store import SqlJobStore
from tests.unit.governance.helpers import line, seed

PAST = datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC)  # the last instant of a month


def rollup_rows(engine: Engine) -> dict[tuple[str, datetime], tuple[Decimal, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(spend_rollup)).mappings().all()
    return {(row["scope"], row["day"]): (row["cost"], row["lines"]) for row in rows}


def months(days: set[datetime]) -> set[tuple[datetime, datetime]]:
    found = set()
    for day in days:
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        found.add((start, end))
    return found


def assert_rollup_is_the_ledger(engine: Engine) -> int:
    """Every scope's spend per day and per month, from the rollup, equals the ledger's exact sum; the
    rollup has a row for exactly the (scope, day) pairs the ledger has lines in. Returns rows checked."""
    ledger = Ledger(engine)
    with engine.connect() as conn:
        tenants = {t for (t,) in conn.execute(select(cost_lines.c.tenant).distinct())}
        stamps = [c for (c,) in conn.execute(select(cost_lines.c.created_at))]
    days = {rollup.day_of(stamp) for stamp in stamps}
    rows = rollup_rows(engine)
    expected_keys = {(ALL_TENANTS, d) for d in days}
    checked = 0
    for tenant in [*sorted(tenants), None]:
        scope = ALL_TENANTS if tenant is None else tenant
        windows = {(d, d + timedelta(days=1)) for d in days} | months(days)
        for start, end in sorted(windows):
            with engine.connect() as conn:
                from_rollup = rollup.spent(conn, tenant, start, end)
            assert from_rollup == ledger.total(start, end, tenant), (scope, start, end)
            checked += 1
        for day in days:
            count = ledger.count_lines(day, day + timedelta(days=1), tenant)
            if count and tenant is not None:
                expected_keys.add((scope, day))
            if count:
                assert rows[(scope, day)][1] == count
    assert set(rows) == expected_keys
    return checked


def test_budgets_read_the_rollup(migrated_engine: Engine) -> None:
    now = datetime(2026, 11, 15, 12, tzinfo=UTC)
    store = BudgetStore(migrated_engine, clock=ManualClock(now))
    store.set("acme", "10", "month")
    seed(migrated_engine, "j1", now - timedelta(days=3), [line("j1", Stage.DENOISE, "1.25")])
    seed(migrated_engine, "j2", now, [line("j2", Stage.DENOISE, "0.5")])
    assert store.get("acme").spent == Decimal("1.75")
    with migrated_engine.begin() as conn:  # the rollup, not the ledger, is what admission reads
        conn.execute(spend_rollup.delete())
    assert store.get("acme").spent == 0


def test_a_failed_transaction_leaves_neither_lines_nor_rollup(migrated_engine: Engine) -> None:
    store = SqlJobStore(migrated_engine)
    ledger = Ledger(migrated_engine)
    lines = [line("j1", Stage.DENOISE, "0.25"), line("j1", Stage.DECODE, "0.125")]
    attribution = Attribution("acme", "tiny", "standard")
    with pytest.raises(RuntimeError), store.transaction() as conn:
        assert ledger.insert_lines(conn, lines, attribution) == 2
        raise RuntimeError("the settle failed after billing")
    assert ledger.count_lines() == 0 and rollup_rows(migrated_engine) == {}
    with store.transaction() as conn:
        ledger.insert_lines(conn, lines, attribution)
    with store.transaction() as conn:
        assert ledger.insert_lines(conn, lines, attribution) == 0  # a repeat: billed once
    day = rollup.day_of(datetime.now(UTC))
    assert rollup_rows(migrated_engine) == {
        ("acme", day): (Decimal("0.375"), 2),
        (ALL_TENANTS, day): (Decimal("0.375"), 2),
    }


def test_spend_windows_must_be_whole_days(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as conn, pytest.raises(ValueError, match="whole UTC days"):
        rollup.spent(conn, "acme", datetime(2026, 1, 1, 6, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))


def test_the_migration_fills_the_rollup_from_an_existing_ledger(db_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(db_url)
    try:
        migrate(engine, "0006_webhook_fleet")
        with engine.begin() as conn:  # lines written by the release before the rollup existed
            conn.execute(
                cost_lines.insert(),
                [
                    {
                        "job_id": f"j{i}",
                        "image_index": 0,
                        "stage": "denoise",
                        "device_seconds": 1.0,
                        "unit_price": Decimal("2.5"),
                        "unit": "device-hour",
                        "quantity": Decimal("0.001"),
                        "cost": Decimal("0.0000000001") * (i + 1),
                        "cost_avoided": Decimal(0),
                        "device_type": "cpu",
                        "pricing_model": "on_demand",
                        "batch_id": "b",
                        "batch_size": 1,
                        "details": {},
                        "tenant": ("acme", "globex")[i % 2],
                        "model": "tiny",
                        "preset": "speed",
                        "request_class": None,
                        "tags": {},
                        "created_at": PAST + timedelta(hours=i),  # across a day and a month
                    }
                    for i in range(6)
                ],
            )
        migrate(engine)
        assert assert_rollup_is_the_ledger(engine) > 0
        assert rollup_rows(engine)[(ALL_TENANTS, rollup.day_of(PAST))] == (Decimal("0.0000000001"), 1)
    finally:
        engine.dispose()


def test_the_migration_matches_the_rollup_table(migrated_engine: Engine) -> None:
    load_table_modules()
    with migrated_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    mentioned = [entry for entry in diff if "spend_rollup" in repr(entry) or "model_preset_id" in repr(entry)]
    assert mentioned == []
