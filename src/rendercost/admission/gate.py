"""The admission step the API calls before queuing: estimate, reserve against budgets, enqueue.

``BudgetGate.admit(tenant, request, enqueue)`` reserves the request's estimate (refusing with
``BudgetExceeded`` when a budget would be passed), runs ``enqueue`` and ties the reservation to the job.
If ``enqueue`` raises, the reservation is released: a refused or failed enqueue leaves nothing behind.
Then it evaluates the budget alerts (each fires once per period).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rendercost.admission.estimate import CostEstimator
from rendercost.domain.jobs import Job
from rendercost.domain.specs import RenderRequest
from rendercost.governance.alerts import AlertNotifier
from rendercost.governance.budgets import BudgetStore

log = logging.getLogger(__name__)


class BudgetGate:
    """Budget admission for one database."""

    def __init__(
        self, budgets: BudgetStore, estimator: CostEstimator, notifier: AlertNotifier | None = None
    ) -> None:
        self.budgets = budgets
        self.estimator = estimator
        self.notifier = notifier

    def admit(self, tenant: str, request: RenderRequest, enqueue: Callable[[], Job]) -> Job:
        """Blocking: reserve, enqueue, attach; ``BudgetExceeded`` before anything is queued."""
        self.budgets.settle()
        estimate = self.estimator.estimate(request)
        reservation = self.budgets.reserve(tenant, estimate)
        try:
            job = enqueue()
        except BaseException:
            self.budgets.release(reservation)
            raise
        self.budgets.attach(reservation, job.id)
        if self.notifier is not None:
            try:
                self.notifier.check(tenant)
            except Exception:  # alerts never refuse work that was admitted
                log.exception("budget alert check failed")
        return job
