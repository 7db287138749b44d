"""Everything governance needs over one database, built once per process (``build_governance``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine

from rendercost.admission.estimate import CostEstimator
from rendercost.admission.gate import BudgetGate
from rendercost.admission.routing import RoutingStore
from rendercost.db.clock import Clock, utcnow
from rendercost.governance.alerts import Alert, AlertNotifier
from rendercost.governance.budgets import BudgetStore
from rendercost.governance.tables import GLOBAL_SCOPE


@dataclass(frozen=True)
class Governance:
    """Budgets, their admission gate and alerts, routing policies, and the engine reports read."""

    engine: Engine  # reports and the FOCUS export read the ledger here
    budgets: BudgetStore
    gate: BudgetGate
    notifier: AlertNotifier
    routing: RoutingStore


def build_governance(
    engine: Engine,
    *,
    alert_webhook_url: str | None = None,
    alert_secret: str = "",
    on_alert: Callable[[Alert], None] = lambda _alert: None,
    clock: Clock = utcnow,
) -> Governance:
    budgets = BudgetStore(engine, clock=clock)
    notifier = AlertNotifier(budgets, webhook_url=alert_webhook_url, secret=alert_secret, on_alert=on_alert)
    return Governance(
        engine=engine,
        budgets=budgets,
        gate=BudgetGate(budgets, CostEstimator(engine), notifier),
        notifier=notifier,
        routing=RoutingStore(engine, clock=clock),
    )


def alert_counter(registry: CollectorRegistry) -> Callable[[Alert], None]:
    """An ``on_alert`` that counts alerts in ``rendercost_budget_alerts_total{scope,threshold}``."""
    counter = Counter(
        "rendercost_budget_alerts",
        "Budget alerts fired, by scope and threshold.",
        ["scope", "threshold"],
        registry=registry,
    )

    def count(alert: Alert) -> None:
        counter.labels("global" if alert.scope == GLOBAL_SCOPE else alert.scope, alert.threshold).inc()

    return count
