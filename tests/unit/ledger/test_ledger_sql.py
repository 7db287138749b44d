"""The ledger on both engines: exact Decimals, idempotent writes, totals and counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from rendercost.db.clock import ManualClock
from rendercost.domain.costs import Attribution, CostLine, PricingModel, Stage
from rendercost.ledger.ledger import Ledger
from rendercost.ledger.tables import cost_lines

EXTREMES = [
    Decimal("9999999999.9999999999"),  # the largest NUMERIC(20, 10)
    Decimal("0.0000000001"),  # one quantum
    Decimal("-1234567890.0123456789"),  # a refund, at full precision
    Decimal("0.1"),  # not exact in binary floating point
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ledger(migrated_engine: Engine, clock: ManualClock) -> Ledger:
    return Ledger(migrated_engine, clock=clock)


def _line(job_id: str, index: int = 0, stage: Stage = Stage.DENOISE, cost: str = "0.0000001000") -> CostLine:
    return CostLine(
        job_id=job_id,
        image_index=index,
        stage=stage,
        device_seconds=1.25,
        unit_price=Decimal("3.6700000000"),
        unit="device-hour",
        quantity=Decimal("0.000347222222222222"),
        cost=Decimal(cost),
        device_type="h100",
        pricing_model=PricingModel.SPOT,
        batch_id="b1",
        batch_size=2,
        cost_avoided=Decimal("0.5"),
        details={"steps": 4, "cache": None},
    )


def _write(engine: Engine, ledger: Ledger, lines: Sequence[CostLine], tenant: str = "acme") -> int:
    with engine.begin() as conn:
        return ledger.insert_lines(conn, lines, Attribution(tenant, "default", "lightning"))


def test_decimals_round_trip_exactly(ledger: Ledger, migrated_engine: Engine) -> None:
    lines = [_line("job_x", index, cost=str(amount)) for index, amount in enumerate(EXTREMES)]
    assert _write(migrated_engine, ledger, lines) == len(EXTREMES)
    back = ledger.lines_for_job("job_x")
    assert back == lines
    assert [line.cost for line in back] == EXTREMES
    assert all(isinstance(line.cost, Decimal) for line in back)
    assert [str(line.cost) for line in back][1] == "1E-10"  # same digits on both engines
    assert ledger.total() == sum(EXTREMES)


def test_totals_are_exact_where_floats_would_drift(ledger: Ledger, migrated_engine: Engine) -> None:
    lines = [_line(f"job_{i}", cost="0.1") for i in range(10)] + [
        _line(f"job_{i}", cost="0.0000000003", stage=Stage.DECODE) for i in range(10)
    ]
    _write(migrated_engine, ledger, lines)
    assert ledger.total() == Decimal("1.000000003")
    assert sum(0.1 for _ in range(10)) != 1.0  # what a float column would have summed to


def test_writes_are_idempotent_per_job_image_and_stage(ledger: Ledger, migrated_engine: Engine) -> None:
    first = [_line("job_a", 0), _line("job_a", 1)]
    assert _write(migrated_engine, ledger, first) == 2
    again = [_line("job_a", 0, cost="5"), _line("job_a", 1, cost="5"), _line("job_a", 1, Stage.DECODE)]
    assert _write(migrated_engine, ledger, again) == 1
    assert ledger.count_lines(job_id="job_a") == 3
    assert ledger.total() == Decimal("0.0000003000")


def test_lines_come_back_in_image_then_pipeline_order(ledger: Ledger, migrated_engine: Engine) -> None:
    stages = [Stage.STORAGE, Stage.DECODE, Stage.TEXT_ENCODE, Stage.DENOISE]
    _write(migrated_engine, ledger, [_line("job_o", index, stage) for index in (1, 0) for stage in stages])
    back = [(line.image_index, line.stage) for line in ledger.lines_for_job("job_o")]
    in_order = [Stage.TEXT_ENCODE, Stage.DENOISE, Stage.DECODE, Stage.STORAGE]
    assert back == [(index, stage) for index in (0, 1) for stage in in_order]
    assert ledger.lines_for_job("job_none") == []


def test_total_and_count_filter_by_time_and_tenant(
    ledger: Ledger, migrated_engine: Engine, clock: ManualClock
) -> None:
    start = clock()
    _write(migrated_engine, ledger, [_line("job_1", cost="1")], tenant="acme")
    clock.advance(60)
    _write(migrated_engine, ledger, [_line("job_2", cost="2")], tenant="globex")
    clock.advance(60)
    _write(migrated_engine, ledger, [_line("job_3", cost="4")], tenant="acme")
    assert ledger.total() == Decimal(7)
    assert ledger.total(tenant="acme") == Decimal(5)
    assert ledger.total(since=start + timedelta(seconds=60)) == Decimal(6)
    assert ledger.total(until=start + timedelta(seconds=60)) == Decimal(1)
    assert ledger.total(tenant="nobody") == Decimal(0)
    assert ledger.count_lines(tenant="acme", since=start + timedelta(seconds=1)) == 1
    assert ledger.count_lines() == 3


def test_context_columns_are_stored(ledger: Ledger, migrated_engine: Engine, clock: ManualClock) -> None:
    with migrated_engine.begin() as conn:
        ledger.insert_lines(
            conn, [_line("job_c")], Attribution("acme", "sdxl", "speed", "batch", {"team": "ads"})
        )
    c = cost_lines.c
    query = select(c.tenant, c.model, c.preset, c.request_class, c.tags, c.created_at)
    with migrated_engine.connect() as conn:
        assert conn.execute(query).one() == ("acme", "sdxl", "speed", "batch", {"team": "ads"}, clock())


def test_quantity_rounds_half_even_at_18_places(ledger: Ledger, migrated_engine: Engine) -> None:
    line = _line("job_q")
    exact_third = Decimal(1) / Decimal(3)  # 28 significant digits
    _write(migrated_engine, ledger, [CostLine(**{**line.__dict__, "quantity": exact_third})])
    assert ledger.lines_for_job("job_q")[0].quantity == Decimal("0.333333333333333333")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cost", Decimal("0.00000000001"), "decimal places"),
        ("cost", Decimal("10000000000"), "does not fit"),
        ("unit_price", 0.5, "not a Decimal"),
        ("cost_avoided", Decimal("NaN"), "finite"),
        ("job_id", "", "job_id"),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_written(
    ledger: Ledger, migrated_engine: Engine, field: str, value: object, message: str
) -> None:
    good = _line("job_g", 0)
    bad = CostLine(**{**_line("job_g", 1).__dict__, field: value})
    with pytest.raises(ValueError, match=message):
        _write(migrated_engine, ledger, [good, bad])
    assert ledger.count_lines() == 0


def test_a_line_twice_in_one_write_is_refused(ledger: Ledger, migrated_engine: Engine) -> None:
    with pytest.raises(ValueError, match="twice"):
        _write(migrated_engine, ledger, [_line("job_d"), _line("job_d", cost="1")])
    assert ledger.count_lines() == 0


def test_thousands_of_lines_in_one_call_are_written_once(ledger: Ledger, migrated_engine: Engine) -> None:
    lines = [_line(f"job_{i // 6}", index=i % 6) for i in range(3001)]  # more than one VALUES page
    assert _write(migrated_engine, ledger, lines) == 3001
    assert _write(migrated_engine, ledger, [*lines[-1500:], _line("job_new")]) == 1  # repeats skipped
    assert ledger.count_lines(tenant="acme") == 3002
