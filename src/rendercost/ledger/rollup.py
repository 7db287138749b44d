"""Spend per scope and UTC day (``spend_rollup``), kept in step with the ledger in the same transaction.

``Ledger.insert_lines`` is the one place cost lines are written, whatever the path (a job's completion,
a cache answer, prompt-rewrite tokens, idle time, storage); it calls ``add`` with the lines it actually
inserted (repeats skipped), inside the caller's transaction. The rollup therefore commits or rolls back
with its lines: for every scope and day it equals the exact SUM of the ledger's lines. ``spent`` reads a
day-aligned window from it, one row per day (at most 31 for a month) whatever the ledger's size: that is
what a budget check at admission costs.

Concurrent writers: on PostgreSQL each row is an upsert, ``cost = cost + excluded.cost`` (NUMERIC,
exact), written in sorted key order so writers lock rows in one order (``ALL_TENANTS`` sorts first) and
cannot deadlock. On SQLite every transaction holds the write lock from ``BEGIN IMMEDIATE``, so a read
then a write is safe; its money is decimal text, added in Python.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rendercost.db.types import DECIMAL_PRECISION, exact_sum
from rendercost.domain.money import ZERO
from rendercost.ledger.tables import ALL_TENANTS, cost_lines, spend_rollup

NewLine = tuple[str, Decimal, datetime]  # (tenant, cost, created_at) of one line just inserted


def day_of(moment: datetime) -> datetime:
    """UTC midnight starting the day that holds ``moment``."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def changes(lines: Iterable[NewLine]) -> dict[tuple[str, datetime], tuple[Decimal, int]]:
    """(scope, day) -> (cost, line count) the lines add: each line to its tenant and to ALL_TENANTS."""
    found: dict[tuple[str, datetime], tuple[Decimal, int]] = defaultdict(lambda: (ZERO, 0))
    with localcontext() as ctx:
        ctx.prec = DECIMAL_PRECISION
        for tenant, cost, created_at in lines:
            day = day_of(created_at)
            for scope in (tenant, ALL_TENANTS):
                total, count = found[(scope, day)]
                found[(scope, day)] = (total + cost, count + 1)
    return dict(found)


def add(conn: Connection, lines: Iterable[NewLine], *, now: datetime) -> None:
    """Add ``lines`` (just inserted in ``conn``'s transaction) to the rollup, in that transaction."""
    rows = [
        {"scope": scope, "day": day, "cost": cost, "lines": count, "updated_at": now}
        for (scope, day), (cost, count) in sorted(changes(lines).items())
    ]
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        stmt = pg_insert(spend_rollup)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[spend_rollup.c.scope, spend_rollup.c.day],
                set_={
                    "cost": spend_rollup.c.cost + stmt.excluded.cost,
                    "lines": spend_rollup.c.lines + stmt.excluded.lines,
                    "updated_at": stmt.excluded.updated_at,
                },
            ),
            rows,
        )
        return
    _add_read_then_write(conn, rows)


def _add_read_then_write(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """SQLite: the transaction holds the write lock, so no one writes between the read and the write.
    One read finds every row there is to add to."""
    c = spend_rollup.c
    wanted = {(row["scope"], row["day"]) for row in rows}
    query = select(c.scope, c.day, c.cost, c.lines).where(
        c.scope.in_({scope for scope, _ in wanted}), c.day.in_({day for _, day in wanted})
    )
    found = {(r.scope, r.day): r for r in conn.execute(query) if (r.scope, r.day) in wanted}
    for row in rows:
        there = found.get((row["scope"], row["day"]))
        if there is None:
            conn.execute(insert(spend_rollup).values(**row))
            continue
        with localcontext() as ctx:
            ctx.prec = DECIMAL_PRECISION
            cost = there.cost + row["cost"]
        conn.execute(
            update(spend_rollup)
            .where((c.scope == row["scope"]) & (c.day == row["day"]))
            .values(cost=cost, lines=there.lines + row["lines"], updated_at=row["updated_at"])
        )


def spent(conn: Connection, tenant: str | None, start: datetime, end: datetime) -> Decimal:
    """Exact spend of ``tenant`` (None: every tenant's lines) over ``[start, end)``, which must be whole
    UTC days (``ValueError`` otherwise): the rollup has no finer grain."""
    if day_of(start) != start or day_of(end) != end:
        raise ValueError(f"spend windows are whole UTC days, got [{start}, {end})")
    query = select(exact_sum(spend_rollup.c.cost)).where(
        spend_rollup.c.scope == (ALL_TENANTS if tenant is None else tenant),
        spend_rollup.c.day >= start,
        spend_rollup.c.day < end,
    )
    value = conn.execute(query).scalar_one()
    return ZERO if value is None else Decimal(value)


def rebuild(conn: Connection, *, now: datetime) -> int:
    """Recompute the whole rollup from the ledger (after a bulk load that bypassed ``Ledger``, or to
    repair); returns how many rows it wrote. Sums in SQL, grouped by tenant and day."""
    conn.execute(delete(spend_rollup))
    day_text = _day_text(conn)
    grouped = conn.execute(
        select(cost_lines.c.tenant, day_text, exact_sum(cost_lines.c.cost), func.count()).group_by(
            cost_lines.c.tenant, day_text
        )
    )
    totals: dict[tuple[str, datetime], tuple[Decimal, int]] = defaultdict(lambda: (ZERO, 0))
    with localcontext() as ctx:
        ctx.prec = DECIMAL_PRECISION
        for tenant, day, cost, count in grouped:
            moment = datetime.combine(date.fromisoformat(str(day)), datetime.min.time(), UTC)
            for scope in (tenant, ALL_TENANTS):
                total, lines = totals[(scope, moment)]
                totals[(scope, moment)] = (total + Decimal(cost), lines + int(count))
    rows = [
        {"scope": scope, "day": day, "cost": cost, "lines": count, "updated_at": now}
        for (scope, day), (cost, count) in sorted(totals.items())
    ]
    if rows:
        conn.execute(insert(spend_rollup), rows)
    return len(rows)


def _day_text(conn: Connection) -> Any:
    """``YYYY-MM-DD`` of a line's UTC creation day, in SQL (SQLite keeps UTC text; PostgreSQL timestamptz)."""
    if conn.dialect.name == "sqlite":
        return func.substr(cost_lines.c.created_at, 1, 10)
    return func.to_char(func.timezone("UTC", cost_lines.c.created_at), "YYYY-MM-DD")
