"""Admission's budget step: reserve, enqueue, attach; settlement when the job ends; estimates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from rendercost.admission.budget import BudgetGuard
from rendercost.admission.estimate import CostEstimator
from rendercost.admission.front_door import Admission
from rendercost.admission.routing import check_rules, resolve_class, route
from rendercost.admission.ticket import Ticket
from rendercost.domain.costs import Stage
from rendercost.domain.jobs import Job
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.errors import BudgetExceeded, InvalidRequest
from rendercost.execution.models.catalog import SettingsModelCatalog
from rendercost.governance.budgets import BudgetStore, count_reservations
from rendercost.governance.tables import GLOBAL_SCOPE
from rendercost.ledger.billing import Biller
from rendercost.queue.sql_store import SqlJobStore
from rendercost.settings import Settings
from tests.unit.governance.helpers import line, seed

REQUEST = RenderRequest(
    spec=RenderSpec(prompt="a fox", model="tiny", preset="standard", width=64, height=64), n=2
)


def test_estimate_uses_recent_images_else_megapixels(migrated_engine: Engine) -> None:
    estimator = CostEstimator(migrated_engine, fallback_per_megapixel=Decimal("0.004"))
    assert estimator.estimate(REQUEST) == Decimal("0.004") * 64 * 64 / 1_000_000 * 2
    now = datetime.now(UTC)
    seed(migrated_engine, "j1", now, [line("j1", Stage.DENOISE, "0.03"), line("j1", Stage.DECODE, "0.01")])
    seed(migrated_engine, "j2", now, [line("j2", Stage.DENOISE, "0.02", image_index=i) for i in (0, 1)])
    assert estimator.estimate(REQUEST) == Decimal("0.0266666667") * 2  # (0.04 + 0.02 + 0.02) / 3 images


def test_reservation_counts_until_the_job_ends(migrated_engine: Engine) -> None:
    budgets = BudgetStore(migrated_engine)
    budgets.set("acme", "1", "day")
    store = SqlJobStore(migrated_engine)
    guard = BudgetGuard(budgets, CostEstimator(migrated_engine, fallback_per_megapixel=Decimal("50")))
    job = _admission(store, guard).admit(Ticket("acme", REQUEST)).job
    assert job is not None
    held = budgets.get("acme").reserved
    assert held == Decimal("50") * 64 * 64 / 1_000_000 * 2
    with pytest.raises(RuntimeError):
        _admission(_BrokenStore(migrated_engine), guard).admit(Ticket("acme", REQUEST))
    assert budgets.get("acme").reserved == held  # the failed enqueue's reservation was released
    store.cancel(job.id)
    assert budgets.get("acme").reserved == 0
    assert budgets.settle() == 1


def test_a_tenant_no_budget_covers_reserves_nothing(migrated_engine: Engine) -> None:
    budgets = BudgetStore(migrated_engine)
    budgets.set("acme", "1", "day")
    store = SqlJobStore(migrated_engine)
    guard = BudgetGuard(budgets, CostEstimator(migrated_engine, fallback_per_megapixel=Decimal("50")))
    admission = _admission(store, guard)
    assert admission.admit(Ticket("globex", REQUEST)).job is not None
    assert count_reservations(migrated_engine) == 0  # globex has no budget: no estimate, no row
    assert admission.admit(Ticket("acme", REQUEST)).job is not None
    assert count_reservations(migrated_engine) == 1
    budgets.set(GLOBAL_SCOPE, "5", "day")  # the global budget covers globex from now on
    assert admission.admit(Ticket("globex", REQUEST)).job is not None
    assert count_reservations(migrated_engine) == 2
    assert budgets.get(GLOBAL_SCOPE).reserved == Decimal("50") * 64 * 64 / 1_000_000 * 2 * 2


def test_refusal_queues_nothing(migrated_engine: Engine) -> None:
    budgets = BudgetStore(migrated_engine)
    budgets.set("acme", "0.00001", "day")  # the 64x64 fallback estimate is 0.0000164
    store = SqlJobStore(migrated_engine)
    guard = BudgetGuard(budgets, CostEstimator(migrated_engine))
    with pytest.raises(BudgetExceeded):
        _admission(store, guard).admit(Ticket("acme", REQUEST))
    assert store.list_jobs(tenant="acme") == []


def _admission(store: SqlJobStore, guard: BudgetGuard) -> Admission:
    """The front door with only its budget step on (no limits, cache or routing)."""
    catalog = SettingsModelCatalog(Settings())
    return Admission(store=store, biller=Biller(store), catalog=catalog, budget=guard)


class _BrokenStore(SqlJobStore):
    def enqueue(self, *_args: object, **_kwargs: object) -> Job:
        raise RuntimeError("database went away")


def test_routing_rules() -> None:
    rules = check_rules({"draft": {"preset": "lightning", "priority": "batch"}})
    routed = route(REQUEST, "draft", rules)
    assert routed.spec.preset == "lightning"
    assert routed.priority == Priority.BATCH
    assert route(REQUEST, "final", rules) is REQUEST
    assert resolve_class(None, {"class": "Draft"}) == "draft"
    assert resolve_class("final", {"class": "draft"}) == "final"
    assert resolve_class(None, {}) is None
    with pytest.raises(InvalidRequest):
        check_rules({"draft": {"preset": "lightning", "priority": "urgent"}})
    with pytest.raises(InvalidRequest):
        check_rules({"sketch": {"preset": "lightning"}})
