"""Budgets per tenant and global, per UTC day or calendar month, with a breaker at admission.

Spend in a period is the ledger's exact total since the period began, read from the spend rollup
(``ledger.rollup``, kept in the lines' own transaction), so a check costs the same at any ledger size.
*Reserved* is the sum of the estimates of admitted requests whose jobs are not terminal yet (a terminal
job's actual cost is in the ledger, so its reservation stops counting: that is settlement).
``reserve`` refuses with ``BudgetExceeded`` when spent + reserved + estimate would pass a budget that
applies, unless an admin override is in force. The check and the insert run in ONE transaction
holding the budget rows' lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
serializes writers), so N concurrent requests near a budget overspend by at most one estimate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, Engine, Exists, delete, func, or_, select, update

from rendercost.db.clock import Clock, utcnow
from rendercost.db.types import Money, exact_sum
from rendercost.domain.jobs import TERMINAL_STATES
from rendercost.domain.money import ZERO
from rendercost.errors import BudgetExceeded, InvalidRequest, NotFound
from rendercost.governance.periods import Period
from rendercost.governance.tables import GLOBAL_SCOPE, budget_reservations, budgets
from rendercost.ledger import rollup
from rendercost.queue.tables import jobs

UNATTACHED_TTL = timedelta(minutes=10)  # a reservation whose enqueue never happened stops counting
_MONEY = Money()


@dataclass(frozen=True)
class Budget:
    """A budget and where it stands now."""

    scope: str  # tenant, or "*" for all tenants
    amount: Decimal  # USD per period
    period: Period
    override_until: datetime | None  # admissions ignore the budget until then
    period_start: datetime
    period_end: datetime  # exclusive
    spent: Decimal  # ledger total in the period so far
    reserved: Decimal  # estimates of admitted, unfinished requests

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.spent - self.reserved

    def to_dict(self) -> dict[str, object]:
        return {
            "scope": "global" if self.scope == GLOBAL_SCOPE else self.scope,
            "amount_usd": usd(self.amount),
            "period": str(self.period),
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "spent_usd": format(self.spent, "f"),
            "reserved_usd": format(self.reserved, "f"),
            "remaining_usd": format(self.remaining, "f"),
            "override_until": self.override_until.isoformat() if self.override_until else None,
        }


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` of the UTC day or calendar month holding ``now``."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.DAY:
        return day, day + timedelta(days=1)
    start = day.replace(day=1)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def parse_amount(value: str | Decimal) -> Decimal:
    """A positive USD amount; ``InvalidRequest`` otherwise."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError as exc:
        raise InvalidRequest(f"budget amount {value!r} is not a number", param="amount") from exc
    if not amount.is_finite() or amount <= 0:
        raise InvalidRequest(f"budget amount must be a positive number of USD, got {value!r}", param="amount")
    try:
        return _MONEY.normalize(amount)
    except ValueError as exc:
        raise InvalidRequest(f"budget amount {value!r}: {exc}", param="amount") from exc


def parse_period(value: str) -> Period:
    try:
        return Period(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"budget period must be 'day' or 'month', got {value!r}", param="period"
        ) from exc


class BudgetStore:
    """Budgets, reservations and the admission check. Safe to share between threads."""

    def __init__(self, engine: Engine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    @property
    def engine(self) -> Engine:
        return self._engine

    def now(self) -> datetime:
        return self._clock()

    # -- administration ---------------------------------------------------------------------------

    def set(self, scope: str, amount: str | Decimal, period: str) -> Budget:
        """Create or replace the budget of ``scope`` (a tenant, or ``"*"``); keeps an override."""
        value, per, now = parse_amount(amount), parse_period(period), self._clock()
        if not scope or len(scope) > 128:
            raise InvalidRequest("a budget needs a tenant name (or '*' for global)", param="tenant")
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(budgets)
                .where(budgets.c.scope == scope)
                .values(amount=value, period=str(per), updated_at=now)
            ).rowcount
            if not changed:
                conn.execute(
                    budgets.insert().values(
                        scope=scope,
                        amount=value,
                        period=str(per),
                        override_until=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
        return self.get(scope)

    def override(self, scope: str, until: datetime | None) -> Budget:
        """Let admissions past ``scope``'s budget until ``until`` (``None`` ends an override)."""
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(budgets)
                .where(budgets.c.scope == scope)
                .values(override_until=until, updated_at=self._clock())
            ).rowcount
        if not changed:
            raise NotFound(f"no budget for {scope!r}")
        return self.get(scope)

    def get(self, scope: str) -> Budget:
        with self._engine.connect() as conn:
            row = conn.execute(select(budgets).where(budgets.c.scope == scope)).mappings().first()
            if row is None:
                raise NotFound(f"no budget for {scope!r}")
            return self._status(conn, row, self._clock())

    def list(self) -> list[Budget]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(budgets).order_by(budgets.c.scope)).mappings().all()
            now = self._clock()
            return [self._status(conn, row, now) for row in rows]

    # -- admission --------------------------------------------------------------------------------

    def applies_to(self, tenant: str) -> bool:
        """Whether any budget covers ``tenant`` (its own or the global one): one indexed read."""
        query = select(budgets.c.scope).where(budgets.c.scope.in_((GLOBAL_SCOPE, tenant))).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(query).first() is not None

    def reserve(self, tenant: str, estimate: Decimal) -> str:
        """Check every budget that applies to ``tenant`` and reserve ``estimate``; return the
        reservation id. ``BudgetExceeded`` (nothing written) when one would be passed."""
        now = self._clock()
        reservation = uuid.uuid4().hex
        with self._engine.begin() as conn:
            query = (
                select(budgets).where(budgets.c.scope.in_((GLOBAL_SCOPE, tenant))).order_by(budgets.c.scope)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            for row in conn.execute(query).mappings().all():
                status = self._status(conn, row, now)
                overridden = status.override_until is not None and status.override_until > now
                if not overridden and status.spent + status.reserved + estimate > status.amount:
                    raise BudgetExceeded(_refusal(status, tenant, estimate))
            conn.execute(
                budget_reservations.insert().values(
                    id=reservation, tenant=tenant, job_id=None, amount=estimate, created_at=now
                )
            )
        return reservation

    def attach(self, reservation: str, job_id: str) -> None:
        """Tie a reservation to its job: it counts until the job is terminal."""
        with self._engine.begin() as conn:
            conn.execute(
                update(budget_reservations)
                .where(budget_reservations.c.id == reservation)
                .values(job_id=job_id)
            )

    def release(self, reservation: str) -> None:
        """Drop a reservation (the request was not queued after all)."""
        with self._engine.begin() as conn:
            conn.execute(delete(budget_reservations).where(budget_reservations.c.id == reservation))

    def settle(self) -> int:
        """Delete reservations of terminal jobs and stale unattached ones; return how many."""
        now = self._clock()
        with self._engine.begin() as conn:
            return conn.execute(
                delete(budget_reservations).where(
                    or_(
                        _job_finished(),
                        (budget_reservations.c.job_id.is_(None))
                        & (budget_reservations.c.created_at < now - UNATTACHED_TTL),
                    )
                )
            ).rowcount

    # -- reading ----------------------------------------------------------------------------------

    def _status(self, conn: Connection, row: object, now: datetime) -> Budget:
        mapping = dict(row)  # type: ignore[call-overload]
        period = Period(mapping["period"])
        start, end = period_bounds(period, now)
        scope: str = mapping["scope"]
        tenant = None if scope == GLOBAL_SCOPE else scope
        return Budget(
            scope=scope,
            amount=mapping["amount"],
            period=period,
            override_until=mapping["override_until"],
            period_start=start,
            period_end=end,
            spent=spent(conn, start, end, tenant),
            reserved=reserved(conn, tenant, now),
        )


def spent(conn: Connection, start: datetime, end: datetime, tenant: str | None) -> Decimal:
    """Exact ledger total in the whole-day window ``[start, end)`` (one tenant's, or everyone's), read
    from the spend rollup the ledger keeps: at most one row per day, whatever the ledger's size."""
    return rollup.spent(conn, tenant, start, end)


def reserved(conn: Connection, tenant: str | None, now: datetime) -> Decimal:
    """Estimates of requests admitted and not finished (terminal jobs and stale reservations excluded)."""
    query = select(exact_sum(budget_reservations.c.amount)).where(
        or_(
            budget_reservations.c.job_id.is_(None)
            & (budget_reservations.c.created_at >= now - UNATTACHED_TTL),
            budget_reservations.c.job_id.is_not(None) & ~_job_finished(),
        )
    )
    if tenant is not None:
        query = query.where(budget_reservations.c.tenant == tenant)
    value = conn.execute(query).scalar_one()
    return ZERO if value is None else Decimal(value)


def _job_finished() -> Exists:
    """The reservation's job is terminal: one lookup by the job's id per reservation, so settling and
    summing reservations cost what the open reservations cost, not the size of the jobs table."""
    terminal = [str(state) for state in TERMINAL_STATES]
    return (
        select(jobs.c.id)
        .where(jobs.c.id == budget_reservations.c.job_id, jobs.c.state.in_(terminal))
        .exists()
    )


def count_reservations(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(budget_reservations)).scalar_one())


def usd(value: Decimal) -> str:
    """A USD amount for people: cents at least, no trailing zeros beyond them."""
    cents = value.quantize(Decimal("0.01"))
    return format(cents if cents == value else value.normalize(), "f")


def _refusal(status: Budget, tenant: str, estimate: Decimal) -> str:
    who = "the global budget" if status.scope == GLOBAL_SCOPE else f"the budget of tenant {tenant!r}"
    return (
        f"{who} ({usd(status.amount)} USD per {status.period}) would be passed: {status.spent:.6f} spent, "
        f"{status.reserved:.6f} reserved and this request needs about {estimate:.6f}; it resets at "
        f"{status.period_end:%Y-%m-%dT%H:%M:%SZ} or an admin can override it"
    )
