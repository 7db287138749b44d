"""The planner over a history rendered through the real jobs API (painter at the model seam: every call
reports the same stage seconds, so the replayed figures can be checked exactly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rendercost.capacity.history import read_history
from rendercost.capacity.plan import plan_from_database
from rendercost.capacity.scenario import Scenario
from rendercost.ledger.catalog import PriceCatalog
from rendercost.settings import Settings
from tests.unit.api.conftest import ApiFactory
from tests.unit.capacity.workloads import MIXED, render


@pytest.fixture
def rendered(make_api: ApiFactory) -> tuple[object, datetime, datetime]:
    api = make_api(max_batch_size=1)
    admin = {"Authorization": f"Bearer {api.server.admin_key.secret}"}  # type: ignore[union-attr]
    since = datetime.now(UTC) - timedelta(seconds=1)
    render(api.client, {**admin}, MIXED, pace_s=0.0)
    return api, since, datetime.now(UTC) + timedelta(seconds=1)


def test_history_reads_every_job_with_its_class_and_cache_hits(
    rendered: tuple[object, datetime, datetime],
) -> None:
    api, since, until = rendered
    history = read_history(api.server.engine, since, until)  # type: ignore[attr-defined]
    assert len(history.workload.arrivals) == len(MIXED)
    assert [a.render_class for a in history.workload.arrivals] == [m["class"] for m in MIXED]
    assert sum(a.result_hit for a in history.workload.arrivals) >= 1  # repeats answered from the cache
    assert history.samples and history.actuals.total > 0


def test_the_as_is_replay_reproduces_the_ledger(rendered: tuple[object, datetime, datetime]) -> None:
    api, since, until = rendered
    server = api.server  # type: ignore[attr-defined]
    report = plan_from_database(
        server.engine, server.settings, PriceCatalog.load(), since=since, until=until, scenarios=()
    )
    assert abs(report.backtest["error"]) < 0.001, report.backtest  # the painter: same seconds every call
    for preset, row in report.backtest["by_preset"].items():
        assert abs(row["error"]) < 0.001, (preset, row)
    assert report.baseline.evidence == "measured"
    assert Decimal(report.to_dict()["baseline"]["cost_usd"]) == report.baseline.cost


def test_scenarios_carry_their_break_evens_and_keda_values(
    rendered: tuple[object, datetime, datetime],
) -> None:
    api, since, until = rendered
    server = api.server  # type: ignore[attr-defined]
    scenarios = (
        Scenario(name="auto", device="l4", autoscale=True, min_workers=0, max_workers=3, jobs_per_worker=2),
        Scenario(name="runpod", pricing="serverless", serverless="runpod-flex-24gb"),
        Scenario(name="reserved", device="l4", pricing="reserved", commit_upfront=Decimal(100)),
        Scenario(name="spot", device="l4", pricing="spot"),
    )
    report = plan_from_database(
        server.engine, server.settings, PriceCatalog.load(), since=since, until=until, scenarios=scenarios
    )
    plan = {s["name"]: s for s in report.to_dict()["scenarios"]}
    auto = plan["auto"]["keda"]
    assert (auto["targetQueryValue"], auto["minReplicaCount"], auto["maxReplicaCount"]) == ("2", 0, 3)
    assert plan["runpod"]["keda"] == {} and plan["runpod"]["pricing"] == "serverless"
    runpod = plan["runpod"]["breakevens"]
    assert runpod["cold_start_s"] == 20.0 and runpod["serverless_usd_per_hour"] == "0.68400"
    # one-image bursts of milliseconds each pay a 20 s cold start: dedicated wins almost at once
    assert 0 < runpod["dedicated_beats_serverless_above_utilization"] < 0.01
    reserved = plan["reserved"]["breakevens"]
    # 100 USD upfront / (587.50 - 370.11) USD saved per 730-hour month = 0.46 months
    assert reserved["months_until_commitment_pays"] == "0.46"
    spot = plan["spot"]["breakevens"]
    assert spot["spot_stops_paying_above_interruptions_per_hour"] > 0
    assert all(s.cost > 0 for s in report.scenarios)


def test_the_as_is_fleet_is_the_devices_that_metered_idle_time(
    rendered: tuple[object, datetime, datetime],
) -> None:
    from rendercost.ledger.idle import IdleRecorder

    api, since, _ = rendered
    server = api.server  # type: ignore[attr-defined]
    for worker in ("gpu-a", "gpu-b"):
        recorder = IdleRecorder(
            server.engine, worker_id=worker, usd_per_hour=Decimal("0.1785"), device_type="cpu"
        )
        recorder.add(5.0)
        recorder.flush()
    later = datetime.now(UTC) + timedelta(seconds=1)
    history = read_history(server.engine, since, later)
    assert history.actuals.devices == 2 and history.actuals.idle_seconds == 10.0
    report = plan_from_database(
        server.engine, server.settings, PriceCatalog.load(), since=since, until=later, scenarios=()
    )
    assert report.baseline.workers == 2  # the as-is replay runs the two devices the ledger saw


def test_the_as_is_replay_prices_at_what_the_ledger_paid(make_api: ApiFactory) -> None:
    api = make_api(max_batch_size=1, region="eu-west-1")  # lines at the eu-west-1 price, 0.2016 USD/h
    admin = {"Authorization": f"Bearer {api.server.admin_key.secret}"}  # type: ignore[union-attr]
    since = datetime.now(UTC) - timedelta(seconds=1)
    render(api.client, admin, MIXED[:4], pace_s=0.0)
    planner = Settings(data_dir=api.server.settings.data_dir, max_batch_size=1, max_wait_ms=0)  # us-east-1
    report = plan_from_database(
        api.server.engine, planner, PriceCatalog.load(), since=since, until=datetime.now(UTC),
        scenarios=(Scenario(name="eu", region="eu-west-1"), Scenario(name="us", region="us-east-1")),
    )  # fmt: skip
    assert abs(report.backtest["error"]) < 0.001, report.backtest
    eu, us = report.scenarios
    assert eu.allocated == report.baseline.allocated
    assert us.allocated == (eu.allocated * Decimal("0.1785") / Decimal("0.2016")).quantize(Decimal("1e-10"))


def test_the_backtest_holds_on_sqlite_and_postgresql(db_url: str, make_api: ApiFactory) -> None:
    """(``db_url`` first: the database outlives the server, whose idle meter writes on shutdown.)"""
    api = make_api(max_batch_size=1, database_url=db_url)
    admin = {"Authorization": f"Bearer {api.server.admin_key.secret}"}  # type: ignore[union-attr]
    since = datetime.now(UTC) - timedelta(seconds=1)
    render(api.client, admin, MIXED, pace_s=0.0)
    report = plan_from_database(
        api.server.engine, api.server.settings, PriceCatalog.load(), since=since, until=datetime.now(UTC),
        scenarios=(Scenario(name="l4", device="l4", routes={"draft": "lightning"}, caches=True),),
    )  # fmt: skip
    assert abs(report.backtest["error"]) < 0.001, report.backtest
    assert report.baseline.result_hit_rate == 0.25  # 4 of the 16 requests repeat an earlier one
    assert report.scenarios[0].result_hit_rate == 0.25
