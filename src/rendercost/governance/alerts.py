"""Budget alerts: 50/80/100% of actual spend and 100% of forecast spend, each once per period; and
spend-anomaly alerts, once per anomalous tenant-hour (``anomalies``).

``AlertNotifier.check(tenant)`` looks at the global budget and ``tenant``'s. A threshold crossed for the
first time in a period inserts a row keyed (scope, period_start, threshold); only the writer whose
insert was new delivers it, so concurrent checks never double-fire. Delivery: one JSON log line, the
``on_alert`` callback (a metric counter), and a webhook POST signed ``X-Rendercost-Signature:
sha256=<HMAC-SHA256 of the body>`` (the same scheme as job webhooks) when a URL is configured.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import update

from rendercost.db.upsert import insert_ignoring_conflicts
from rendercost.governance.anomaly import Anomaly
from rendercost.governance.budgets import Budget, BudgetStore
from rendercost.governance.tables import GLOBAL_SCOPE, budget_alerts

log = logging.getLogger(__name__)

ACTUAL_THRESHOLDS = (50, 80, 100)  # percent of the budget actually spent
ANOMALY_THRESHOLD = "anomaly"  # budget_alerts.threshold of a spend anomaly (period_start: its hour)
FORECAST_THRESHOLD = 100  # percent of the budget the linear forecast reaches by period end
MIN_FORECAST_ELAPSED = 0.05  # forecast only after this fraction of the period (too noisy before)
SIGNATURE_HEADER = "X-Rendercost-Signature"
WEBHOOK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Alert:
    """One fired alert."""

    scope: str
    period_start: datetime
    threshold: str  # "actual:80", "forecast:100"
    payload: dict[str, Any]


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256>``: the job webhooks' scheme, so one verifier serves both."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def forecast(budget: Budget, now: datetime) -> Decimal | None:
    """Linear forecast of the period's spend (``None`` too early in the period to say)."""
    length = (budget.period_end - budget.period_start).total_seconds()
    elapsed = (now - budget.period_start).total_seconds()
    if elapsed < MIN_FORECAST_ELAPSED * length:
        return None
    return budget.spent * Decimal(length) / Decimal(elapsed)


def crossed(budget: Budget, now: datetime) -> list[str]:
    """Thresholds ``budget`` has reached now."""
    reached = [f"actual:{pct}" for pct in ACTUAL_THRESHOLDS if budget.spent * 100 >= budget.amount * pct]
    projected = forecast(budget, now)
    if projected is not None and projected * 100 >= budget.amount * FORECAST_THRESHOLD:
        reached.append(f"forecast:{FORECAST_THRESHOLD}")
    return reached


class AlertNotifier:
    """Fires and delivers budget alerts."""

    def __init__(
        self,
        budgets: BudgetStore,
        *,
        webhook_url: str | None = None,
        secret: str = "",
        on_alert: Callable[[Alert], None] = lambda _alert: None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._budgets = budgets
        self._url = webhook_url
        self._secret = secret
        self._on_alert = on_alert
        self._transport = transport

    def check(self, tenant: str | None = None) -> list[Alert]:
        """Fire every newly crossed threshold of the global budget and ``tenant``'s (all when None)."""
        fired: list[Alert] = []
        for budget in self._budgets.list():
            if tenant is None or budget.scope in (GLOBAL_SCOPE, tenant):
                fired.extend(self._fire(budget))
        return fired

    def anomalies(self, found: Sequence[Anomaly]) -> list[Alert]:
        """Fire one alert per anomalous tenant-hour (never twice for the same hour)."""
        fired = []
        for anomaly in found:
            payload = {"type": "spend.anomaly", **anomaly.to_dict(), "at": self._budgets.now().isoformat()}
            alert = self._record(anomaly.tenant, anomaly.hour, ANOMALY_THRESHOLD, payload)
            if alert is not None:
                fired.append(alert)
        return fired

    def _record(
        self, scope: str, period_start: datetime, threshold: str, payload: dict[str, Any]
    ) -> Alert | None:
        """Insert the alert row; deliver and return it when it is new, else None."""
        with self._budgets.engine.begin() as conn:
            stmt = insert_ignoring_conflicts(conn, budget_alerts, ("scope", "period_start", "threshold"))
            new = conn.execute(
                stmt.values(
                    scope=scope,
                    period_start=period_start,
                    threshold=threshold,
                    payload=payload,
                    created_at=self._budgets.now(),
                ).returning(budget_alerts.c.scope)
            ).first()
        if new is None:
            return None
        alert = Alert(scope, period_start, threshold, payload)
        self._deliver(alert)
        return alert

    def _fire(self, budget: Budget) -> list[Alert]:
        now = self._budgets.now()
        fired = []
        for threshold in crossed(budget, now):
            alert = self._record(
                budget.scope, budget.period_start, threshold, _payload(budget, threshold, now)
            )
            if alert is not None:
                fired.append(alert)
        return fired

    def _deliver(self, alert: Alert) -> None:
        log.warning("cost alert %s", json.dumps(alert.payload, sort_keys=True))
        self._on_alert(alert)
        if not self._url:
            return
        body = json.dumps(alert.payload, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        error: str | None = None
        try:
            with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, transport=self._transport) as client:
                client.post(self._url, content=body, headers=headers).raise_for_status()
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("cost alert webhook to %s failed: %s", self._url, error)
        values: dict[str, Any] = {"last_error": error} if error else {"delivered_at": self._budgets.now()}
        with self._budgets.engine.begin() as conn:
            conn.execute(
                update(budget_alerts)
                .where(
                    budget_alerts.c.scope == alert.scope,
                    budget_alerts.c.period_start == alert.period_start,
                    budget_alerts.c.threshold == alert.threshold,
                )
                .values(**values)
            )


def _payload(budget: Budget, threshold: str, now: datetime) -> dict[str, Any]:
    projected = forecast(budget, now)
    return {
        "type": "budget.threshold",
        "threshold": threshold,
        "budget": budget.to_dict(),
        "forecast_usd": format(projected.quantize(Decimal("0.000001")), "f")
        if projected is not None
        else None,
        "at": now.isoformat(),
    }
