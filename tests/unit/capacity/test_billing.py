"""Billing rules on sessions whose bills are worked out by hand."""

from __future__ import annotations

from decimal import Decimal

from rendercost.capacity.billing import committed_cost, dedicated_bill, serverless_bill
from rendercost.capacity.replay import Session
from rendercost.ledger.catalog import PriceCatalog


def test_dedicated_sessions_are_billed_per_second_with_a_one_minute_minimum() -> None:
    bill = dedicated_bill([Session(0.0, 3600.0, 0.0), Session(0.0, 10.0, 0.0)], Decimal("0.8048"))
    assert bill.billed_s == 3660.0
    assert bill.cost == Decimal("0.8182133333")  # 3660 s * 0.8048 / 3600


def test_serverless_rounds_each_session_up_and_bills_the_cold_start_when_the_offer_does() -> None:
    offer = PriceCatalog.load().planner.serverless["runpod-flex-24gb"]
    bill = serverless_bill([Session(0.0, 20.4, 20.0), Session(0.0, 0.2, 0.0)], offer)
    assert bill.billed_s == 22.0  # 21 s + 1 s
    assert bill.cost == Decimal("0.00418")  # 22 * 0.00019


def test_a_commitment_covers_discounted_usage_and_the_rest_is_on_demand() -> None:
    # 10 h at 0.5/h committed = 5.00, buying 5 / (1 - 0.37) = 7.9365... of on-demand usage
    assert committed_cost(Decimal(4), 10.0, Decimal("0.5"), Decimal("0.37")) == Decimal("5.0000000000")
    assert committed_cost(Decimal(10), 10.0, Decimal("0.5"), Decimal("0.37")) == Decimal("7.0634920635")
