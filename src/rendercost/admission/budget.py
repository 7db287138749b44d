"""Admission's budget step: reserve a request's estimated cost before it is queued.

``BudgetGuard.reserve(tenant, request)`` settles finished reservations, estimates the request
(``admission.estimate``) and reserves it, refusing with ``BudgetExceeded`` when a budget would be
passed. A tenant no budget covers reserves nothing (no estimate, no write): the check is one indexed
read, where the estimate reads up to ``estimate.SCAN_LINES`` ledger lines. A budget set while such a
request is in flight counts its cost once it is billed, not before. Admission then enqueues:
``attach`` ties the reservation to the job (and evaluates the budget alerts, each fired once per
period), or ``release`` gives it back when the enqueue was refused or failed, so nothing is left
behind.
"""

from __future__ import annotations

import logging

from rendercost.admission.estimate import CostEstimator
from rendercost.domain.specs import RenderRequest
from rendercost.governance.alerts import AlertNotifier
from rendercost.governance.budgets import BudgetStore

log = logging.getLogger(__name__)


class BudgetGuard:
    """Budget reservations for one database."""

    def __init__(
        self, budgets: BudgetStore, estimator: CostEstimator, notifier: AlertNotifier | None = None
    ) -> None:
        self.budgets = budgets
        self.estimator = estimator
        self.notifier = notifier

    def reserve(self, tenant: str, request: RenderRequest) -> str | None:
        """Blocking. The reservation's id (None: no budget covers ``tenant``, nothing reserved);
        ``BudgetExceeded`` (nothing reserved) when over a budget."""
        if not self.budgets.applies_to(tenant):
            return None
        self.budgets.settle()
        return self.budgets.reserve(tenant, self.estimator.estimate(request))

    def release(self, reservation: str) -> None:
        """Blocking. Give back a reservation whose enqueue was refused or failed."""
        self.budgets.release(reservation)

    def attach(self, reservation: str, tenant: str, job_id: str) -> None:
        """Blocking. Tie the reservation to the queued job, then evaluate ``tenant``'s alerts."""
        self.budgets.attach(reservation, job_id)
        if self.notifier is not None:
            try:
                self.notifier.check(tenant)
            except Exception:  # alerts never refuse work that was admitted
                log.exception("budget alert check failed")
