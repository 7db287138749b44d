"""Each break-even against an answer worked out by hand in the test."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from rendercost.capacity.breakeven import (
    commitment_payback_months,
    erlang_c,
    erlang_c_workers,
    serverless_crossover,
    spot_breakeven_rate,
)

SERVERLESS = Decimal("0.684")  # RunPod flex 24 GB, USD per busy hour
DEDICATED = Decimal("0.8048")  # AWS g6.xlarge (L4) on-demand, USD per hour


def test_serverless_is_cheaper_at_any_utilization_before_cold_starts() -> None:
    # 0.684 * u < 0.8048 for every u <= 1: no crossover
    assert serverless_crossover(DEDICATED, SERVERLESS, cold_s=0.0, idle_s=0.0, burst_s=60.0) is None


def test_with_20_s_cold_starts_per_60_s_burst_dedicated_wins_above_88_percent() -> None:
    # each 60 s burst bills 80 s: serverless costs 0.684 * u * 80/60 = 0.912 u per hour;
    # 0.912 u = 0.8048  =>  u = 0.8048 / 0.912 = 0.88245...
    crossover = serverless_crossover(DEDICATED, SERVERLESS, cold_s=20.0, idle_s=0.0, burst_s=60.0)
    assert crossover == pytest.approx(0.8048 / 0.912, rel=1e-9)
    assert crossover == pytest.approx(0.88246, abs=1e-5)


def test_the_idle_keep_warm_tail_counts_like_a_cold_start() -> None:
    # 20 s cold + 5 s idle per 10 s burst: factor 35/10 = 3.5, u = 0.8048 / (0.684 * 3.5) = 0.33617
    crossover = serverless_crossover(DEDICATED, SERVERLESS, cold_s=20.0, idle_s=5.0, burst_s=10.0)
    assert crossover == pytest.approx(0.8048 / (0.684 * 3.5), rel=1e-9)


def test_a_commitment_pays_its_upfront_back_in_months_of_savings() -> None:
    # L4 on-demand 730 h * 0.8048 = 587.504; reserved 730 h * 0.5070 = 370.11; saving 217.394/month;
    # upfront 1000 => 1000 / 217.394 = 4.5999... months
    on_demand = Decimal(730) * Decimal("0.8048")
    reserved = Decimal(730) * Decimal("0.5070")
    assert commitment_payback_months(on_demand, reserved, Decimal(1000)) == Decimal("4.60")
    assert commitment_payback_months(on_demand, reserved) == Decimal("0.00")
    assert commitment_payback_months(reserved, on_demand, Decimal(1000)) is None  # it never pays


def test_spot_stops_paying_when_interruptions_waste_what_the_discount_saves() -> None:
    # spot 0.32 vs on-demand 0.8048; each interruption wastes 120 s:
    # r* = 3600 / 120 * (1 - 0.32 / 0.8048) = 30 * 0.602385... = 18.0716 per hour
    rate = spot_breakeven_rate(Decimal("0.32"), DEDICATED, wasted_s=120.0)
    assert rate == pytest.approx(30 * (1 - 0.32 / 0.8048), rel=1e-9)
    assert rate == pytest.approx(18.0716, abs=1e-4)
    assert spot_breakeven_rate(DEDICATED, DEDICATED, wasted_s=120.0) is None
    assert spot_breakeven_rate(Decimal("0.32"), DEDICATED, wasted_s=0.0) == math.inf


def test_erlang_c_matches_the_textbook_value() -> None:
    # 2 servers, 1 erlang: C = (1/2! * 2/(2-1)) / (1 + 1 + 1) = 1/3
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho


def test_erlang_c_workers_is_the_fewest_that_meet_the_goal() -> None:
    # 1 job/s of 1 s each, goal P(wait > 1 s) <= 5%:
    # c = 2: C = 1/3, tail = 1/3 * e^-(2-1) = 0.1226 > 0.05
    # c = 3: C = (1/6 * 3/2) / (1 + 1 + 1/2 + 1/4) = 1/11, tail = 1/11 * e^-(3-1) = 0.0123 <= 0.05
    assert erlang_c(3, 1.0) == pytest.approx(1 / 11, rel=1e-9)
    assert erlang_c_workers(1.0, 1.0, goal_s=1.0) == 3
