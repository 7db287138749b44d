"""Spend anomalies: a tenant's hourly spend against its own same-hour-of-week baseline.

For the hour being judged, the baseline is the median of the same hour of the week in earlier weeks
(from one week of history on), else - while history is short - the median of the trailing
``TRAILING_HOURS`` hours (from ``MIN_HISTORY`` hours on). The spread is the median absolute deviation
(MAD) of those baseline values, floored at ``MAD_FLOOR_FRACTION`` of the baseline; the modified z-score
is ``0.6745 * (actual - baseline) / MAD`` (Iglewicz and Hoaglin). An hour is an anomaly when
z >= 3.5 AND the excess over the baseline passes both an absolute floor (USD) and a relative floor
(fraction of the baseline), so tiny or flat series never page anyone.

``detect(series)`` is pure; ``hourly_spend`` and ``scan`` read the ledger and name the top drivers
(model, preset) of an anomalous hour.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, select

from rendercost.db.clock import as_utc
from rendercost.domain.costs import Stage
from rendercost.errors import InvalidRequest
from rendercost.ledger.tables import cost_lines

HOURS_PER_WEEK = 168
MIN_SEASONAL_WEEKS = 1  # same-hour-of-week values needed before the seasonal baseline is used
TRAILING_HOURS = 168  # trailing window while history is short (under a week)
MIN_HISTORY = 24  # hours of history needed to judge at all (a full daily cycle)
Z_SCALE = 0.6745  # makes the MAD consistent with the standard deviation for normal data
MAD_FLOOR_FRACTION = 0.25  # least spread, as a fraction of the baseline: one or two past weeks (or a
# flat series) understate it, and a zero MAD would flag any wobble (tuned on the seeded series in tests)


@dataclass(frozen=True)
class Thresholds:
    """When an hour counts as anomalous."""

    z: float = 3.5  # modified z-score
    min_excess_usd: float = 1.0  # absolute floor on actual - expected
    min_excess_ratio: float = 0.5  # relative floor: actual - expected >= ratio * expected


@dataclass(frozen=True)
class Anomaly:
    """An anomalous hour of one tenant's spend."""

    tenant: str
    hour: datetime  # start of the hour (UTC)
    expected_usd: float  # the baseline
    actual_usd: float
    z_score: float
    drivers: tuple[tuple[str, str, float], ...] = ()  # (model, preset, USD) in that hour, largest first

    def to_dict(self) -> dict[str, object]:
        return {
            "tenant": self.tenant,
            "hour": self.hour.isoformat(),
            "expected_usd": round(self.expected_usd, 6),
            "actual_usd": round(self.actual_usd, 6),
            "z_score": round(self.z_score, 2),
            "drivers": [{"model": m, "preset": p, "usd": round(v, 6)} for m, p, v in self.drivers],
        }


def baseline(history: Sequence[float]) -> tuple[float, float] | None:
    """(expected, MAD) for the value right after ``history`` (hourly, oldest first); None if too short."""
    if len(history) < MIN_HISTORY:
        return None
    last_week = len(history) - HOURS_PER_WEEK  # the same hour of the week, one week back
    seasonal = history[last_week::-HOURS_PER_WEEK] if last_week >= 0 else []
    window = list(seasonal) if len(seasonal) >= MIN_SEASONAL_WEEKS else list(history[-TRAILING_HOURS:])
    expected = statistics.median(window)
    mad = statistics.median(abs(value - expected) for value in window)
    return expected, max(mad, MAD_FLOOR_FRACTION * expected, 1e-9)


def score(actual: float, expected: float, mad: float) -> float:
    """The modified z-score of ``actual``."""
    return Z_SCALE * (actual - expected) / mad


def is_anomaly(actual: float, expected: float, mad: float, thresholds: Thresholds) -> bool:
    excess = actual - expected
    return (
        score(actual, expected, mad) >= thresholds.z
        and excess >= thresholds.min_excess_usd
        and excess >= thresholds.min_excess_ratio * expected
    )


def detect(series: Sequence[float], thresholds: Thresholds | None = None) -> list[int]:
    """Indices of anomalous hours in an hourly series (each judged on the hours before it only).

    Flagged hours are replaced by their baseline in the history later hours see, so one spike does not
    raise the bar for the next.
    """
    limits = thresholds or Thresholds()
    cleaned: list[float] = []
    flagged: list[int] = []
    for index, actual in enumerate(series):
        found = baseline(cleaned)
        if found is not None and is_anomaly(actual, found[0], found[1], limits):
            flagged.append(index)
            cleaned.append(found[0])
        else:
            cleaned.append(actual)
    return flagged


def hourly_spend(
    engine: Engine, since: datetime, until: datetime
) -> tuple[dict[str, list[float]], dict[tuple[str, int], dict[tuple[str, str], float]]]:
    """Per tenant, spend per hour in ``[since, until)`` (``since`` on an hour), and per (tenant, hour
    index) the spend by (model, preset). Idle lines are no tenant's spend and are left out."""
    hours = math.ceil((until - since).total_seconds() / 3600)  # a partial last hour counts
    series: dict[str, list[float]] = defaultdict(lambda: [0.0] * hours)
    drivers: dict[tuple[str, int], dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    query = select(
        cost_lines.c.tenant,
        cost_lines.c.model,
        cost_lines.c.preset,
        cost_lines.c.cost,
        cost_lines.c.created_at,
    ).where(
        cost_lines.c.created_at >= since,
        cost_lines.c.created_at < until,
        cost_lines.c.stage != str(Stage.IDLE),
    )
    with engine.connect() as conn:
        for tenant, model, preset, cost, created in conn.execute(query):
            index = int((created - since).total_seconds() // 3600)
            amount = float(Decimal(cost))
            series[tenant][index] += amount
            drivers[(tenant, index)][(model, preset)] += amount
    return dict(series), drivers


MAX_SCAN_HOURS = 24 * 7 * 13  # 13 weeks: enough history for same-hour-of-week baselines


def check_window(since: datetime, until: datetime) -> None:
    """Refuse an empty window or one longer than ``MAX_SCAN_HOURS``."""
    if until <= since:
        raise InvalidRequest("until must be later than since", param="until")
    if until - since > timedelta(hours=MAX_SCAN_HOURS):
        weeks = MAX_SCAN_HOURS // (24 * 7)
        raise InvalidRequest(
            f"an anomaly scan covers at most {weeks} weeks; narrow since/until", param="since"
        )


def scan(
    engine: Engine,
    since: datetime,
    until: datetime,
    *,
    thresholds: Thresholds | None = None,
    top: int = 3,
) -> list[Anomaly]:
    """Anomalous tenant-hours in ``[since, until)``, each with its top ``top`` (model, preset) drivers.
    The window must be non-empty and at most ``MAX_SCAN_HOURS`` long (``InvalidRequest`` otherwise): the
    scan is linear in its hours, and the window comes from clients."""
    since, until = as_utc(since), as_utc(until)
    check_window(since, until)
    start = since.replace(minute=0, second=0, microsecond=0)
    series, drivers = hourly_spend(engine, start, until)
    limits = thresholds or Thresholds()
    found: list[Anomaly] = []
    for tenant, values in sorted(series.items()):
        for index in detect(values, limits):
            expected, mad = baseline(_cleaned_before(values, index, limits)) or (0.0, 1.0)
            ranked = sorted(drivers[(tenant, index)].items(), key=lambda item: item[1], reverse=True)[:top]
            found.append(
                Anomaly(
                    tenant=tenant,
                    hour=start + timedelta(hours=index),
                    expected_usd=expected,
                    actual_usd=values[index],
                    z_score=score(values[index], expected, mad),
                    drivers=tuple((model, preset, usd) for (model, preset), usd in ranked),
                )
            )
    return found


def _cleaned_before(values: Sequence[float], index: int, limits: Thresholds) -> list[float]:
    flagged = set(detect(values[:index], limits))
    history = list(values[:index])
    for position in sorted(flagged):
        history[position] = (baseline(history[:position]) or (history[position], 0.0))[0]
    return history


def precision_recall(flagged: Sequence[int], planted: Sequence[int]) -> tuple[float, float]:
    """(precision, recall) of ``flagged`` against the ``planted`` anomalies."""
    hits = len(set(flagged) & set(planted))
    precision = hits / len(flagged) if flagged else 1.0
    recall = hits / len(planted) if planted else 1.0
    return precision, recall
