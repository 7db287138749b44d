"""Reports: group totals equal the ledger; allocated + idle equals what the machine cost."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from rendercost.db.clock import ManualClock
from rendercost.domain.batch import BatchItem, BatchPlan
from rendercost.domain.costs import Attribution, Stage
from rendercost.domain.money import cost_of_seconds
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.governance.reports import build_report, parse_dimensions, percentile
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.idle import DeviceIdleMeter, IdleMeteredRunner, IdleRecorder, idle_meter
from rendercost.ledger.ledger import Ledger
from rendercost.ledger.savings import SavingsBook
from rendercost.ledger.tables import cost_lines
from rendercost.queue.tables import jobs
from rendercost.settings import Settings
from rendercost.testing.runner import FakeRunner
from tests.unit.governance.helpers import line, seed

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
PRICE_PER_HOUR = Decimal("2.5")  # helpers.line prices device time at 2.5 USD per device-hour


def _job_row(job_id: str, tenant: str, seconds: float) -> dict[str, object]:
    return {
        "id": job_id, "tenant": tenant, "state": "succeeded", "priority": "interactive", "priority_rank": 0,
        "model": "tiny", "payload": {}, "attempts": 1, "max_attempts": 3, "progress": 1.0, "result": {},
        "tags": {}, "created_at": T0, "updated_at": T0, "started_at": T0,
        "finished_at": T0 + timedelta(seconds=seconds),
    }  # fmt: skip


def _seed(engine: Engine) -> None:
    # one machine for one hour: 3 renders busy 3600 * 0.4 s in all, the rest idle
    seed(
        engine,
        "a1",
        T0,
        [line("a1", Stage.DENOISE, "0.5", seconds=720), line("a1", Stage.DECODE, "0.1", seconds=144)],
    )
    seed(
        engine,
        "a2",
        T0,
        [
            line(
                "a2",
                Stage.DENOISE,
                "0.2",
                seconds=288,
                avoided="0.05",
                details={"cache": "embedding", "skipped": "cached"},
            )
        ],
        preset="lightning",
    )
    seed(engine, "g1", T0, [line("g1", Stage.DENOISE, "0.2", seconds=288)], tenant="globex")
    seed(
        engine,
        "idle:w1:2026-06-01T10:00:00Z",
        T0,
        [line("idle:w1:2026-06-01T10:00:00Z", Stage.IDLE, "1.5", seconds=2160, image_index=-1)],
        tenant="_machine",
    )
    with engine.begin() as conn:
        conn.execute(
            insert(jobs),
            [_job_row("a1", "acme", 2.0), _job_row("a2", "acme", 4.0), _job_row("g1", "globex", 1.0)],
        )


def test_group_totals_equal_the_ledger(migrated_engine: Engine) -> None:
    _seed(migrated_engine)
    ledger = Ledger(migrated_engine)
    report = build_report(migrated_engine, by=("tenant", "preset"))
    keys = [(row.key["tenant"], row.key["preset"]) for row in report.rows]
    assert keys == [("acme", "lightning"), ("acme", "standard"), ("globex", "standard")]
    assert sum((row.cost for row in report.rows), Decimal(0)) + report.idle_cost == ledger.total()
    acme = build_report(migrated_engine, by=("tenant",), tenant="acme")
    assert acme.allocated_cost == Decimal("0.8") == ledger.total(tenant="acme")
    (row,) = acme.rows
    assert row.renders == 2
    assert row.cost_per_render == Decimal("0.4")
    assert row.p50_latency_s == 2.0
    assert row.p95_latency_s == 4.0
    assert row.savings == {"embedding": Decimal("0.05")}
    assert row.cache_hits == 1
    assert row.cache_hit_rate == 0.5  # one of acme's two images


def test_allocated_plus_idle_is_the_machine_cost(migrated_engine: Engine) -> None:
    _seed(migrated_engine)
    report = build_report(migrated_engine)
    machine_hours = Decimal(str(report.busy_seconds + report.idle_seconds)) / 3600
    assert machine_hours == 1
    assert report.machine_cost == machine_hours * PRICE_PER_HOUR == report.allocated_cost + report.idle_cost
    assert report.utilization == pytest.approx(0.4)
    assert report.marginal_cost_per_render == Decimal("0.333333")
    assert report.loaded_cost_per_render == Decimal("0.833333")


def test_bad_dimensions_and_percentiles() -> None:
    with pytest.raises(ValueError, match="unknown report dimension 'colour'"):
        parse_dimensions("tenant,colour")
    assert parse_dimensions(" model , class") == ("model", "class")
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0, 10.0], 0.95) == 10.0


def test_idle_recorder_lines_complete_the_machine_cost(migrated_engine: Engine) -> None:
    clock = ManualClock(T0)
    recorder = IdleRecorder(
        migrated_engine,
        worker_id="w1",
        usd_per_hour=PRICE_PER_HOUR,
        device_type="cpu",
        flush_after_s=60,
        clock=clock,
    )
    busy = [("b1", 1.25), ("b2", 3.5), ("b3", 0.75)]
    for job_id, seconds in busy:
        cost = cost_of_seconds(seconds, PRICE_PER_HOUR)
        seed(
            migrated_engine,
            job_id,
            clock(),
            [line(job_id, Stage.DENOISE, format(cost, "f"), seconds=seconds)],
        )
        recorder.add(20.0)  # waits between batches: flushed once 60 s have gathered
        clock.advance(30)
    assert recorder.flush() == 0  # 3 x 20 s were flushed by add() already
    recorder.add(7.5)
    assert recorder.flush() == 1
    report = build_report(migrated_engine)
    assert report.idle_seconds == 67.5
    assert report.busy_seconds == 5.5
    machine = cost_of_seconds(73.0, PRICE_PER_HOUR)
    assert (report.allocated_cost + report.idle_cost).quantize(Decimal("0.01")) == machine.quantize(
        Decimal("0.01")
    )
    assert abs(report.machine_cost - machine) <= Decimal("1e-9")  # one rounding quantum per line at most
    assert report.utilization == pytest.approx(5.5 / 73.0)


def _busy_device(clock: ManualClock, seconds: float) -> FakeRunner:
    """A runner seam: each call keeps the device busy for ``seconds`` of the test's clock."""
    return FakeRunner(image_size=(1, 1), before=lambda _plan, _on_step: clock.advance(seconds))


_PLAN = BatchPlan("b1", (BatchItem("j1", 0, RenderSpec(prompt="a lamp", width=64, height=64)),))


def test_metered_runner_counts_the_gaps_between_batches(migrated_engine: Engine) -> None:
    clock = ManualClock(T0)
    monotonic = lambda: clock().timestamp()  # noqa: E731
    recorder = IdleRecorder(migrated_engine, worker_id="w1", usd_per_hour=PRICE_PER_HOUR, device_type="cpu",
                            flush_after_s=30, clock=clock)  # fmt: skip
    meter = DeviceIdleMeter(recorder, monotonic=monotonic)
    runner = IdleMeteredRunner(_busy_device(clock, 2.0), meter)
    for _ in range(3):
        clock.advance(10.0)  # nothing to do
        meter.tick()
        clock.advance(5.0)
        runner.run(_PLAN)
    clock.advance(4.0)
    meter.close()
    report = build_report(migrated_engine)
    assert report.idle_seconds == pytest.approx(3 * 15.0 + 4.0)
    assert abs(report.idle_cost - cost_of_seconds(49.0, PRICE_PER_HOUR)) <= Decimal("1e-9")


def test_savings_by_mechanism_come_from_the_saving_lines_measured(migrated_engine: Engine) -> None:
    book = SavingsBook()
    request = RenderRequest(
        spec=RenderSpec(prompt="a mug", model="tiny", preset="standard", width=64, height=64)
    )
    solo = [line("solo1", Stage.DENOISE, "0.40", seconds=0.5)]
    batched = [line("pair", Stage.DENOISE, "0.30", seconds=0.25, image_index=i, batch_size=2) for i in (0, 1)]
    other = [line("other", Stage.DENOISE, "0.1", batch_size=4)]
    seed(migrated_engine, "solo1", T0, solo)
    seed(migrated_engine, "pair", T0, batched)
    seed(migrated_engine, "other", T0, other, model="sdxl")
    attribution = Attribution("acme", "tiny", "standard", "interactive", {"team": "ml"})
    with migrated_engine.begin() as conn:
        book.record(conn, solo, request, attribution, now=T0, learn=True)
        book.record(conn, batched, request, attribution, now=T0, learn=True)
        sdxl = replace(request, spec=replace(request.spec, model="sdxl"))
        book.record(conn, other, sdxl, replace(attribution, model="sdxl"), now=T0, learn=True)
    report = build_report(migrated_engine, by=("model",))
    by_model = {row.key["model"]: row for row in report.rows}
    solo_cost = cost_of_seconds(0.5, PRICE_PER_HOUR)
    assert by_model["tiny"].savings == {"batching": 2 * (solo_cost - Decimal("0.30"))}
    assert by_model["sdxl"].savings == {}  # never rendered alone: no reference, nothing claimed
    assert report.savings == by_model["tiny"].savings
    assert build_report(migrated_engine, by=("model",), tenant="globex").savings == {}


def test_idle_meter_prices_from_the_catalog(migrated_engine: Engine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    catalog = PriceCatalog.load(settings.catalog_path)
    meter = idle_meter(
        migrated_engine,
        catalog,
        device_type=settings.device_type,
        pricing_model=settings.pricing_model,
        region=settings.region,
        worker_id="w9",
    )
    meter.close()  # a moment of idle time since it was made
    (row,) = Ledger(migrated_engine).lines_for_job(_only_idle_job(migrated_engine))
    assert row.stage == Stage.IDLE
    assert row.unit_price == catalog.device_price(
        settings.device_type, settings.pricing_model, settings.region
    )


def _only_idle_job(engine: Engine) -> str:
    with engine.connect() as conn:
        (job_id,) = conn.execute(select(cost_lines.c.job_id)).scalars().all()
    return str(job_id)


def test_cache_hits_count_renders_not_lines(migrated_engine: Engine) -> None:
    """One render of two images answered by the cache at every stage is one hit, not six."""
    cached = {"cache": "result"}
    lines = [
        line("c1", stage, "0", image_index=i, avoided="0.01", details=cached)
        for i in range(2)
        for stage in (Stage.TEXT_ENCODE, Stage.DENOISE, Stage.DECODE)
    ]
    seed(migrated_engine, "c1", T0, lines)
    seed(migrated_engine, "c2", T0, [line("c2", Stage.DENOISE, "0.2", seconds=288)])
    (row,) = build_report(migrated_engine, by=("tenant",)).rows
    assert row.renders == 2
    assert row.cache_hits == 1 <= row.renders
    assert row.cache_hit_rate == pytest.approx(2 / 3)  # two of the three images
