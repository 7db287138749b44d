"""Break-evens and the Erlang-C first guess. Pure arithmetic; money in ``Decimal``, ratios in floats.

- ``serverless_crossover``: the utilization above which a dedicated machine beats serverless. A busy
  stretch of ``burst_s`` seconds on serverless also pays ``cold_s`` (model load) and ``idle_s`` (the
  keep-warm tail), so serverless costs ``u * P_s * (1 + (cold_s + idle_s) / burst_s)`` per hour at
  utilization ``u``, against ``P_d`` for the dedicated one: the crossover is
  ``u* = P_d / (P_s * (1 + (cold_s + idle_s) / burst_s))``; None when ``u* >= 1`` (serverless is
  cheaper at any utilization).
- ``commitment_payback_months``: ``upfront / (on-demand monthly - committed monthly)``; 0 without an
  upfront when the commitment saves, None when it never pays.
- ``spot_breakeven_rate``: each interruption wastes ``wasted_s`` billed seconds (lost work plus the
  replacement's cold start), so a useful hour costs ``P_spot / (1 - r * wasted_s / 3600)``; spot stops
  paying at ``r* = 3600 / wasted_s * (1 - P_spot / P_on_demand)`` interruptions per hour.
- ``erlang_c_workers``: the fewest servers ``c`` of an M/M/c queue whose wait exceeds ``goal_s`` with
  probability at most ``1 - percentile``: ``P(W > t) = C(c, a) * exp(-(c*mu - lam) * t)``.
"""

from __future__ import annotations

import math
from decimal import Decimal

from rendercost.domain.money import ZERO

HOURS_PER_MONTH = 730.0  # 365 * 24 / 12, as cloud price pages count a month


def serverless_crossover(
    dedicated_per_hour: Decimal, serverless_per_hour: Decimal, *, cold_s: float, idle_s: float, burst_s: float
) -> float | None:
    """Utilization at which dedicated and serverless cost the same; None when serverless always wins."""
    if serverless_per_hour <= 0:
        return None
    overhead = 1.0 + (cold_s + idle_s) / burst_s if burst_s > 0 else math.inf
    crossover = float(dedicated_per_hour / serverless_per_hour) / overhead
    return crossover if crossover < 1.0 else None


def commitment_payback_months(
    on_demand_monthly: Decimal, committed_monthly: Decimal, upfront: Decimal = ZERO
) -> Decimal | None:
    """Months until the commitment's savings repay ``upfront``; None when it saves nothing."""
    saving = on_demand_monthly - committed_monthly
    if saving <= 0:
        return None
    return (upfront / saving).quantize(Decimal("0.01"))


def spot_breakeven_rate(
    spot_per_hour: Decimal, on_demand_per_hour: Decimal, *, wasted_s: float
) -> float | None:
    """Interruptions per hour at which spot costs as much as on-demand; None when spot never pays."""
    if spot_per_hour >= on_demand_per_hour or on_demand_per_hour <= 0:
        return None
    if wasted_s <= 0:
        return math.inf
    return 3600.0 / wasted_s * (1.0 - float(spot_per_hour / on_demand_per_hour))


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits, M/M/c with ``offered_load = lam / mu`` erlangs."""
    if offered_load >= servers:
        return 1.0
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= offered_load / k
        total += term
    top = term * offered_load / servers * servers / (servers - offered_load)
    return top / (total + top)


def erlang_c_workers(
    arrivals_per_s: float, service_s: float, *, goal_s: float, percentile: float = 0.95, limit: int = 10_000
) -> int:
    """Fewest workers with ``P(wait > goal_s) <= 1 - percentile``; ``limit`` when none below it does."""
    if arrivals_per_s <= 0 or service_s <= 0:
        return 1
    load, mu = arrivals_per_s * service_s, 1.0 / service_s
    for servers in range(max(1, math.floor(load)), limit + 1):
        if load >= servers:
            continue
        tail = erlang_c(servers, load) * math.exp(-(servers * mu - arrivals_per_s) * goal_s)
        if tail <= 1.0 - percentile:
            return servers
    return limit
