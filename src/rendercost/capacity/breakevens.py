"""The break-evens of one simulated scenario, from its replay and the catalog (``capacity.breakeven``
holds the formulas):

- serverless: the utilization at which a dedicated on-demand machine of the same device is cheaper,
  with the burst length the replay saw (busy seconds per worker session);
- reserved / commitment: months until the commitment's saving repays its upfront;
- spot: the interruption rate at which spot stops paying, with the seconds each interruption wastes
  (the replay's lost work per interruption, or half a call when none happened, plus the cold start).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from rendercost.capacity.billing import dedicated_bill
from rendercost.capacity.breakeven import (
    HOURS_PER_MONTH,
    commitment_payback_months,
    serverless_crossover,
    spot_breakeven_rate,
)
from rendercost.capacity.simulate import PlanInputs, Simulation
from rendercost.domain.money import usd_text


def breakevens(inputs: PlanInputs, sim: Simulation) -> dict[str, Any]:
    """The break-evens that apply to ``sim``'s pricing model (empty for plain on-demand)."""
    if sim.pricing == "serverless":
        return _serverless(inputs, sim)
    if sim.pricing in ("reserved", "commitment"):
        return _commitment(inputs, sim)
    if sim.pricing == "spot":
        return _spot(inputs, sim)
    return {}


def _serverless(inputs: PlanInputs, sim: Simulation) -> dict[str, Any]:
    offer = inputs.catalog.planner.serverless[str(sim.scenario.serverless)]
    dedicated = inputs.catalog.device_price(offer.device, "on_demand", inputs.region_of(sim.scenario))
    sessions = sim.replay.sessions
    burst = sim.replay.busy_s / len(sessions) if sessions else 0.0
    cold = offer.cold_start_s if offer.bills_cold_start else 0.0
    crossover = serverless_crossover(
        dedicated, sim.usd_per_hour, cold_s=cold, idle_s=offer.idle_timeout_s, burst_s=burst
    )
    return {
        "dedicated_beats_serverless_above_utilization": None if crossover is None else round(crossover, 4),
        "dedicated_usd_per_hour": usd_text(dedicated),
        "serverless_usd_per_hour": usd_text(sim.usd_per_hour),
        "burst_s": round(burst, 3),
        "cold_start_s": cold,
        "idle_timeout_s": offer.idle_timeout_s,
        "note": "None: serverless is cheaper at any utilization" if crossover is None else "",
    }


def _commitment(inputs: PlanInputs, sim: Simulation) -> dict[str, Any]:
    on_demand = inputs.catalog.device_price(sim.device, "on_demand", inputs.region_of(sim.scenario))
    month = Decimal(repr(HOURS_PER_MONTH * 3600.0 / sim.window_s))  # windows per month
    on_demand_monthly = dedicated_bill(sim.replay.sessions, on_demand).cost * month
    committed_monthly = sim.fleet_cost * month
    months = commitment_payback_months(on_demand_monthly, committed_monthly, sim.scenario.commit_upfront)
    return {
        "months_until_commitment_pays": None if months is None else format(months, "f"),
        "on_demand_per_month_usd": usd_text(on_demand_monthly.quantize(Decimal("0.01"))),
        "committed_per_month_usd": usd_text(committed_monthly.quantize(Decimal("0.01"))),
        "upfront_usd": usd_text(sim.scenario.commit_upfront),
    }


def _spot(inputs: PlanInputs, sim: Simulation) -> dict[str, Any]:
    on_demand = inputs.catalog.device_price(sim.device, "on_demand", inputs.region_of(sim.scenario))
    result = sim.replay
    if result.interruptions:
        lost = result.wasted_s / result.interruptions
    else:
        lost = result.busy_s / max(result.calls, 1) / 2.0
    wasted = lost + sim.scenario.cold_start_s
    rate = spot_breakeven_rate(sim.usd_per_hour, on_demand, wasted_s=wasted)
    return {
        "spot_stops_paying_above_interruptions_per_hour": (
            None if rate is None or math.isinf(rate) else round(rate, 4)
        ),
        "wasted_s_per_interruption": round(wasted, 3),
        "replayed_interruptions": result.interruptions,
        "spot_usd_per_hour": usd_text(sim.usd_per_hour),
        "on_demand_usd_per_hour": usd_text(on_demand),
    }
