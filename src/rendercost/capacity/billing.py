"""Billing rules: what a replay's worker sessions cost under one way of buying the device.

Pure functions; money is ``Decimal`` in and out, seconds are floats converted once per amount.

- Dedicated (on-demand, spot, reserved): every session is billed per second, at least
  ``DEDICATED_MINIMUM_S`` (EC2's 60-second minimum), at the catalog's device-hour price.
- Serverless: each session's billed seconds (cold start included when the offer bills it) are rounded
  UP to the offer's increment and priced per GPU-second.
- A savings-plan commitment: ``commit`` USD per hour is paid for every hour of the window and covers
  usage priced at ``(1 - discount)`` of on-demand; usage beyond it is paid at on-demand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from rendercost.capacity.replay import Session
from rendercost.domain.money import SECONDS_PER_HOUR, ZERO, quantize
from rendercost.ledger.planner_prices import ServerlessOffer

DEDICATED_MINIMUM_S = 60.0  # EC2 bills at least one minute per instance start


def seconds_decimal(seconds: float) -> Decimal:
    """A measured duration as an exact Decimal (the float's shortest repr)."""
    return Decimal(repr(seconds))


def cost_of(seconds: float, usd_per_hour: Decimal) -> Decimal:
    """``seconds`` of a device at ``usd_per_hour``, quantized."""
    return quantize(seconds_decimal(seconds) * usd_per_hour / SECONDS_PER_HOUR)


@dataclass(frozen=True)
class FleetBill:
    """What the fleet cost and for how many billed seconds."""

    cost: Decimal  # USD
    billed_s: float  # seconds billed over all sessions


def dedicated_bill(sessions: Iterable[Session], usd_per_hour: Decimal) -> FleetBill:
    """Per-second billing with a one-minute minimum per session."""
    billed = sum(max(s.end - s.start, DEDICATED_MINIMUM_S) for s in sessions)
    return FleetBill(cost=cost_of(billed, usd_per_hour), billed_s=billed)


def serverless_bill(sessions: Iterable[Session], offer: ServerlessOffer) -> FleetBill:
    """Each session rounded up to the offer's increment; the cold start billed when the offer says so."""
    billed = 0.0
    for session in sessions:
        seconds = session.end - session.start - (0.0 if offer.bills_cold_start else session.cold_s)
        billed += math.ceil(max(seconds, 0.0) / offer.increment_s - 1e-9) * offer.increment_s
    return FleetBill(cost=quantize(seconds_decimal(billed) * offer.usd_per_second), billed_s=billed)


def committed_cost(
    on_demand_cost: Decimal, hours: float, commit_per_hour: Decimal, discount: Decimal
) -> Decimal:
    """The window's cost under a savings plan: the commitment for every hour, plus on-demand for the
    usage the commitment's discounted dollars do not cover."""
    if not ZERO <= discount < 1:
        raise ValueError("discount must be in [0, 1)")
    commitment = quantize(commit_per_hour * seconds_decimal(hours))
    covered_on_demand = commitment / (1 - discount)  # on-demand dollars the commitment buys
    return quantize(commitment + max(ZERO, on_demand_cost - covered_on_demand))
