"""Budgets: the breaker at admission, race safety, alerts once per period, override and reset."""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import Engine

from rendercost.db.clock import ManualClock
from rendercost.domain.costs import Stage
from rendercost.errors import BudgetExceeded, InvalidRequest, NotFound
from rendercost.governance.alerts import AlertNotifier, sign
from rendercost.governance.budgets import BudgetStore, period_bounds
from rendercost.governance.periods import Period
from rendercost.governance.tables import GLOBAL_SCOPE
from tests.unit.governance.helpers import line, seed

START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def test_period_bounds_are_utc_calendar() -> None:
    now = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period_bounds(Period.DAY, now) == (
        datetime(2026, 12, 31, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds(Period.MONTH, now) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_bad_input_is_refused(migrated_engine: Engine, clock: ManualClock) -> None:
    store = BudgetStore(migrated_engine, clock=clock)
    for amount in ("-1", "0", "abc", "NaN", "0.000000000001"):
        with pytest.raises(InvalidRequest):
            store.set("acme", amount, "day")
    with pytest.raises(InvalidRequest):
        store.set("acme", "5", "week")
    with pytest.raises(NotFound):
        store.get("acme")
    assert store.list() == []


def test_breaker_refuses_then_override_and_reset(migrated_engine: Engine, clock: ManualClock) -> None:
    store = BudgetStore(migrated_engine, clock=clock)
    store.set("acme", "1.00", "day")
    seed(migrated_engine, "j1", START - timedelta(hours=1), [line("j1", Stage.DENOISE, "0.95")])
    seed(migrated_engine, "other", START, [line("other", Stage.DENOISE, "5")], tenant="globex")
    assert store.get("acme").spent == Decimal("0.95")
    store.reserve("acme", Decimal("0.04"))
    with pytest.raises(
        BudgetExceeded, match=r"tenant 'acme' \(1.00 USD per day\) would be passed"
    ) as refused:
        store.reserve("acme", Decimal("0.02"))
    assert refused.value.code == "budget_exceeded"
    store.reserve("globex", Decimal("100"))  # no budget for globex
    store.override("acme", START + timedelta(hours=1))
    store.reserve("acme", Decimal("0.5"))
    seed(migrated_engine, "j2", START, [line("j2", Stage.DENOISE, "0.5")])  # what it actually cost
    clock.advance(2 * 3600)  # override over, still the same day (unattached reservations went stale)
    with pytest.raises(BudgetExceeded):
        store.reserve("acme", Decimal("0.01"))
    clock.advance(10 * 3600)  # next UTC day: spend resets
    assert store.get("acme").spent == 0
    store.reserve("acme", Decimal("0.5"))


def test_global_budget_covers_every_tenant(migrated_engine: Engine, clock: ManualClock) -> None:
    store = BudgetStore(migrated_engine, clock=clock)
    store.set(GLOBAL_SCOPE, "2", "month")
    seed(migrated_engine, "a", START, [line("a", Stage.DENOISE, "1.5")], tenant="acme")
    seed(migrated_engine, "b", START, [line("b", Stage.DENOISE, "0.4")], tenant="globex")
    with pytest.raises(BudgetExceeded, match="global budget"):
        store.reserve("initech", Decimal("0.2"))


def test_concurrent_requests_never_overspend_more_than_one_estimate(migrated_engine: Engine) -> None:
    store = BudgetStore(migrated_engine)
    store.set("acme", "1.00", "day")
    seed(migrated_engine, "j0", datetime.now(UTC), [line("j0", Stage.DENOISE, "0.80")])
    estimate = Decimal("0.03")
    admitted: list[str] = []
    barrier = threading.Barrier(12)

    def attempt(_: int) -> None:
        barrier.wait()
        with contextlib.suppress(BudgetExceeded):
            admitted.append(store.reserve("acme", estimate))

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(attempt, range(12)))
    status = store.get("acme")
    assert status.spent + status.reserved <= status.amount + estimate
    assert len(admitted) == 6  # 0.80 + 6 x 0.03 = 0.98; a 7th would pass 1.00
    assert status.reserved == estimate * 6


def test_each_threshold_fires_once_per_period(migrated_engine: Engine, clock: ManualClock) -> None:
    store = BudgetStore(migrated_engine, clock=clock)
    store.set("acme", "10", "day")
    posts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(204)

    fired_metric: list[str] = []
    notifier = AlertNotifier(
        store,
        webhook_url="http://127.0.0.1:9/alerts",
        secret="s3cret",
        on_alert=lambda alert: fired_metric.append(alert.threshold),
        transport=httpx.MockTransport(handler),
    )
    assert notifier.check("acme") == []
    seed(migrated_engine, "j1", START - timedelta(hours=2), [line("j1", Stage.DENOISE, "5.5")])
    first = [a.threshold for a in notifier.check("acme")]
    assert first == ["actual:50", "forecast:100"]  # 5.5 by noon forecasts 11 by midnight
    assert notifier.check("acme") == []
    seed(migrated_engine, "j2", START - timedelta(hours=1), [line("j2", Stage.DENOISE, "4.6")])
    assert [a.threshold for a in notifier.check("acme")] == ["actual:80", "actual:100"]
    assert notifier.check(None) == []
    assert fired_metric == ["actual:50", "forecast:100", "actual:80", "actual:100"]
    assert len(posts) == 4
    body = posts[0].content
    assert posts[0].headers["X-Rendercost-Signature"] == sign("s3cret", body)
    assert json.loads(body)["budget"]["scope"] == "acme"
    clock.advance(24 * 3600)  # a new day: nothing spent yet, nothing fires, and thresholds re-arm
    assert notifier.check("acme") == []
    seed(migrated_engine, "j3", clock(), [line("j3", Stage.DENOISE, "6")])
    assert [a.threshold for a in notifier.check("acme")] == ["actual:50", "forecast:100"]
