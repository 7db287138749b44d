"""Whole scenarios on a hand-sized workload with a known cost model: fleet bills worked out by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rendercost.capacity.costmodel import features, fit_cost_model
from rendercost.capacity.history import BatchSample
from rendercost.capacity.scenario import Scenario
from rendercost.capacity.simulate import PlanInputs, simulate
from rendercost.capacity.workload import Arrival, Workload
from rendercost.domain.costs import Stage
from rendercost.ledger.catalog import PriceCatalog

SPAN_S = 3600.0
L4 = Decimal("0.8048")


def inputs(arrivals: list[Arrival], *, workers: int = 2) -> PlanInputs:
    """A model where a 1024x1024 speed call takes 10 s (denoise only) on an L4; no storage, no rewrite."""
    per_step = 10.0 / 30  # seconds per step, all of it per-step overhead
    pixels = 1024**2
    samples = []
    for k in (1, 2, 3):
        steps = features(Stage.DENOISE, "speed", k, k * pixels)[0]
        samples.append(BatchSample("l4", Stage.DENOISE, per_step * steps, "speed", k, k * pixels))
    model = fit_cost_model(samples, PriceCatalog.load().planner.speeds)
    workload = Workload(arrivals=tuple(arrivals), span_s=SPAN_S, source="test")
    return PlanInputs(
        workload, model, PriceCatalog.load(), "l4", "on_demand", {}, Decimal(0), workers, 1, 0, 30.0
    )


def arrivals(count: int, every_s: float) -> list[Arrival]:
    return [Arrival(at_s=i * every_s, preset="speed", width=1024, height=1024, n=1) for i in range(count)]


def test_a_fixed_fleet_pays_every_worker_for_the_whole_window() -> None:
    sim = simulate(inputs(arrivals(10, 60.0)), Scenario(name="as-is"))
    assert sim.replay.busy_s == pytest.approx(100.0)
    assert sim.fleet_cost == Decimal(2) * L4  # two L4s for one hour
    assert sim.allocated_cost == (Decimal(100) * L4 / 3600).quantize(Decimal("1e-10"))
    assert sim.evidence == "measured"


def test_a_savings_plan_is_paid_per_hour_of_the_window_and_the_rest_on_demand() -> None:
    scenario = Scenario(name="plan", pricing="commitment", commit_usd_per_hour=Decimal("0.9"),
                        commit_discount=Decimal("0.37"))  # fmt: skip
    sim = simulate(inputs(arrivals(10, 60.0)), scenario)
    # on-demand usage 1.6096 USD; 0.90 committed buys 0.90 / 0.63 = 1.4285714286 of it; the rest on-demand
    assert sim.fleet_cost == Decimal("0.9") + (Decimal("1.6096") - Decimal("0.9") / Decimal("0.63")).quantize(
        Decimal("1e-10")
    )


def test_spot_interruptions_lose_work_and_the_fleet_pays_for_it() -> None:
    calm = simulate(
        inputs(arrivals(60, 30.0)), Scenario(name="spot", pricing="spot", interruptions_per_hour=0.0)
    )
    stormy = simulate(
        inputs(arrivals(60, 30.0)),
        Scenario(name="spot", pricing="spot", interruptions_per_hour=20.0, cold_start_s=30),
    )
    assert calm.fleet_cost == Decimal(2) * Decimal("0.32")
    assert stormy.replay.interruptions > 0 and stormy.replay.wasted_s > 0
    assert stormy.replay.busy_s == pytest.approx(calm.replay.busy_s)  # every job still renders once
    assert max(stormy.replay.latency_s) > max(calm.replay.latency_s)


def test_routing_a_class_to_lightning_shrinks_its_busy_time_by_the_step_ratio() -> None:
    drafts = [Arrival(at_s=i * 60.0, preset="speed", width=1024, height=1024, n=1, render_class="draft")
              for i in range(10)]  # fmt: skip
    plain = simulate(inputs(drafts), Scenario(name="as-is"))
    routed = simulate(inputs(drafts), Scenario(name="lightning", routes={"draft": "lightning"}))
    # per-step overhead only: 4 lightning steps against 30 speed steps
    assert routed.replay.busy_s == pytest.approx(plain.replay.busy_s * 4 / 30)
    assert routed.evidence == "inferred" and set(routed.by_preset) == {"lightning"}


def test_serverless_bills_cold_starts_and_the_keep_warm_tail_per_session() -> None:
    sim = simulate(
        inputs(arrivals(1, 60.0)),
        Scenario(name="runpod", pricing="serverless", serverless="runpod-flex-24gb"),
    )
    # one job: 20 s cold start + 10 s render + 5 s idle timeout = 35 billed seconds at 0.00019
    assert sim.fleet_cost == Decimal("35") * Decimal("0.00019")
    assert sim.replay.wait_s[0] == pytest.approx(20.0)
