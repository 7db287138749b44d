"""Spend anomalies: precision and recall on a seeded series with planted spikes; the ledger scan."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from rendercost.domain.costs import Stage
from rendercost.errors import InvalidRequest
from rendercost.governance.alerts import AlertNotifier
from rendercost.governance.anomaly import MAX_SCAN_HOURS, Thresholds, detect, precision_recall, scan
from rendercost.governance.budgets import BudgetStore
from tests.unit.governance.helpers import line, seed

WEEKS = 6


def synthetic(seed_value: int) -> tuple[list[float], list[int]]:
    """Six weeks of hourly spend: a daily cycle, quiet weekends, 15% noise, and 25 planted spikes."""
    rng = random.Random(seed_value)
    values = []
    for hour in range(WEEKS * 168):
        daily = 1.0 + 0.8 * math.sin(2 * math.pi * ((hour % 24) - 8) / 24)
        weekend = 0.4 if (hour // 24) % 7 >= 5 else 1.0
        level = 10.0 * daily * weekend
        values.append(max(0.0, rng.gauss(level, 0.15 * level)))
    planted = sorted(rng.sample(range(48, len(values)), 25))
    for hour in planted:
        values[hour] = values[hour] * rng.uniform(2.5, 4.0) + 5.0
    return values, planted


def test_precision_and_recall_on_planted_spikes() -> None:
    scores = []
    for seed_value in (1, 2, 3, 4, 5):
        values, planted = synthetic(seed_value)
        flagged = detect(values, Thresholds(z=3.5, min_excess_usd=2.0, min_excess_ratio=0.5))
        scores.append(precision_recall(flagged, planted))
    precision = sum(p for p, _ in scores) / len(scores)
    recall = sum(r for _, r in scores) / len(scores)
    print(f"anomaly detection over 5 seeded series: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.9
    assert recall >= 0.8


def test_floors_keep_small_or_flat_series_quiet() -> None:
    flat = [0.01] * 200 + [0.05] + [0.01] * 10  # 5x, but four cents: under the absolute floor
    assert detect(flat) == []
    steady = [100.0] * 200 + [120.0]  # 20 % over a flat baseline: under the relative floor
    assert detect(steady) == []
    assert detect([1.0] * 200 + [30.0]) == [200]


def test_scan_names_tenant_expected_actual_and_drivers(migrated_engine: Engine) -> None:
    start = datetime(2026, 7, 1, tzinfo=UTC)
    for hour in range(48):
        when = start + timedelta(hours=hour, minutes=5)
        job = f"a{hour}"
        seed(migrated_engine, job, when, [line(job, Stage.DENOISE, "0.50")])
        seed(migrated_engine, f"g{hour}", when, [line(f"g{hour}", Stage.DENOISE, "0.30")], tenant="globex")
    spike = start + timedelta(hours=40, minutes=30)
    for n in range(12):
        seed(
            migrated_engine,
            f"s{n}",
            spike,
            [line(f"s{n}", Stage.DENOISE, "1.00")],
            model="sdxl",
            preset="quality",
        )
    found = scan(
        migrated_engine, start, start + timedelta(hours=48), thresholds=Thresholds(min_excess_usd=1.0)
    )
    assert [(a.tenant, a.hour) for a in found] == [("acme", start + timedelta(hours=40))]
    (anomaly,) = found
    assert anomaly.expected_usd == 0.5
    assert anomaly.actual_usd == 12.5
    assert anomaly.drivers[0] == ("sdxl", "quality", 12.0)
    assert anomaly.to_dict()["drivers"][1] == {"model": "tiny", "preset": "standard", "usd": 0.5}

    fired: list[str] = []
    notifier = AlertNotifier(BudgetStore(migrated_engine), on_alert=lambda alert: fired.append(alert.scope))
    assert [a.payload["tenant"] for a in notifier.anomalies(found)] == ["acme"]
    assert notifier.anomalies(found) == []  # once per tenant-hour
    assert fired == ["acme"]


def test_scan_refuses_empty_and_overlong_windows(migrated_engine: Engine) -> None:
    end = datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(InvalidRequest) as too_long:
        scan(migrated_engine, end - timedelta(hours=MAX_SCAN_HOURS + 1), end)
    assert too_long.value.param == "since"
    with pytest.raises(InvalidRequest):
        scan(migrated_engine, end, end)
    assert scan(migrated_engine, end - timedelta(hours=MAX_SCAN_HOURS), end.replace(tzinfo=None)) == []
