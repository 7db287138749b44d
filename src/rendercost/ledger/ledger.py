"""The ledger: append-only cost lines, idempotent per (job, image index, stage).

``insert_lines`` writes inside the caller's transaction; only ``ledger/`` calls it (``billing.Biller``
in the transaction that settles a job, so a job's success and its bill commit together; ``idle`` for
idle device time). It adds the lines it wrote to the spend rollup (``ledger.rollup``) in that same
transaction, so every write path keeps the rollup equal to the ledger. Readers get frozen ``CostLine``
values and exact ``Decimal`` totals on both engines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, RowMapping, func, select

from rendercost.db.clock import Clock, utcnow
from rendercost.db.types import Money, Quantity, exact_sum
from rendercost.db.upsert import insert_ignoring_conflicts
from rendercost.domain.costs import Attribution, CostLine, PricingModel, Stage
from rendercost.domain.money import ZERO
from rendercost.ledger import rollup
from rendercost.ledger.tables import cost_lines

_MONEY = Money()
_QUANTITY = Quantity()


@dataclass(frozen=True)
class BilledLines:
    """Lines to write, the attribution they are billed to and when they were created."""

    lines: Sequence[CostLine]
    attribution: Attribution
    created_at: datetime


class Ledger:
    """Reads and idempotent writes of ``cost_lines``; safe to share between threads."""

    def __init__(self, engine: Engine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def insert_lines(
        self,
        conn: Connection,
        lines: Sequence[CostLine],
        attribution: Attribution,
        *,
        now: datetime | None = None,
    ) -> int:
        """Write ``lines``, billed to ``attribution``, in ``conn``'s transaction; return how many were new.

        A line whose (job_id, image_index, stage) is already in the ledger is skipped, so writing a
        job's lines twice bills it once. Lines need a non-empty ``job_id``: a render outside the queue
        (CLI, idle time) must still name itself uniquely, or its lines would be taken for a repeat.
        Raises ``ValueError`` (and writes nothing) for such a line, for a line repeated within
        ``lines``, or for money that does not fit ``NUMERIC(20, 10)``.
        """
        return self.insert_billed(conn, [BilledLines(lines, attribution, now or self._clock())])

    def insert_billed(self, conn: Connection, billed: Sequence[BilledLines]) -> int:
        """``insert_lines`` for several attributions at once (the jobs of one batch): one statement and
        one rollup update for all of them. Same contract; ``ValueError`` writes nothing of any."""
        _check_unique_keys(line for group in billed for line in group.lines)
        rows = [
            _line_row(line, group.attribution)
            | {"tags": dict(group.attribution.tags), "created_at": group.created_at}
            for group in billed
            for line in group.lines
        ]
        if not rows:
            return 0
        stmt = insert_ignoring_conflicts(conn, cost_lines, ("job_id", "image_index", "stage"))
        # executemany with RETURNING: one compiled (and cached) statement, sent in batched VALUES
        returning = stmt.returning(cost_lines.c.tenant, cost_lines.c.cost, cost_lines.c.created_at)
        new = [(row.tenant, row.cost, row.created_at) for row in conn.execute(returning, rows)]
        rollup.add(conn, new, now=max(group.created_at for group in billed))  # repeats return nothing
        return len(new)

    def lines_for_job(self, job_id: str) -> list[CostLine]:
        """The job's lines, by image index then pipeline order."""
        stage_order = {stage: position for position, stage in enumerate(Stage)}
        with self._engine.connect() as conn:
            rows = conn.execute(select(cost_lines).where(cost_lines.c.job_id == job_id)).mappings().all()
        lines = [line_from_row(row) for row in rows]
        return sorted(lines, key=lambda line: (line.image_index, stage_order[line.stage]))

    def total(
        self, since: datetime | None = None, until: datetime | None = None, tenant: str | None = None
    ) -> Decimal:
        """Exact sum of ``cost`` over lines created in ``[since, until)``, optionally for one tenant."""
        query = select(exact_sum(cost_lines.c.cost)).where(*period_filters(since, until, tenant))
        with self._engine.connect() as conn:
            value = conn.execute(query).scalar_one()
        return ZERO if value is None else Decimal(value)

    def count_lines(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
        *,
        job_id: str | None = None,
    ) -> int:
        """How many lines match, with the same filters as ``total``."""
        conditions = period_filters(since, until, tenant)
        if job_id is not None:
            conditions.append(cost_lines.c.job_id == job_id)
        query = select(func.count()).select_from(cost_lines).where(*conditions)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def line_from_row(row: RowMapping) -> CostLine:
    """A frozen ``CostLine`` from a ``cost_lines`` row."""
    return CostLine(
        job_id=row["job_id"],
        image_index=row["image_index"],
        stage=Stage(row["stage"]),
        device_seconds=row["device_seconds"],
        unit_price=row["unit_price"],
        unit=row["unit"],
        quantity=row["quantity"],
        cost=row["cost"],
        device_type=row["device_type"],
        pricing_model=PricingModel(row["pricing_model"]),
        batch_id=row["batch_id"],
        batch_size=row["batch_size"],
        cost_avoided=row["cost_avoided"],
        details=dict(row["details"]),
    )


def _line_row(line: CostLine, attribution: Attribution) -> dict[str, Any]:
    if not line.job_id:
        raise ValueError("a cost line needs a job_id that names its render uniquely")
    for amount in (line.unit_price, line.cost, line.cost_avoided):
        _MONEY.normalize(amount)  # fail before writing, not half-way through
    _QUANTITY.normalize(line.quantity)
    return {
        "job_id": line.job_id,
        "image_index": line.image_index,
        "stage": str(line.stage),
        "device_seconds": line.device_seconds,
        "unit_price": line.unit_price,
        "unit": line.unit,
        "quantity": line.quantity,
        "cost": line.cost,
        "cost_avoided": line.cost_avoided,
        "device_type": line.device_type,
        "pricing_model": str(line.pricing_model),
        "batch_id": line.batch_id,
        "batch_size": line.batch_size,
        "details": dict(line.details),
        "tenant": attribution.tenant,
        "model": attribution.model,
        "preset": attribution.preset,
        "request_class": attribution.request_class,
    }


def _check_unique_keys(lines: Iterable[CostLine]) -> None:
    seen: set[tuple[str, int, str]] = set()
    for line in lines:
        key = (line.job_id, line.image_index, str(line.stage))
        if key in seen:
            raise ValueError(f"cost line {key} appears twice in one write")
        seen.add(key)


def period_filters(
    since: datetime | None, until: datetime | None, tenant: str | None
) -> list[ColumnElement[bool]]:
    """Conditions selecting cost lines created in ``[since, until)``, optionally one tenant's."""
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(cost_lines.c.created_at >= since)
    if until is not None:
        conditions.append(cost_lines.c.created_at < until)
    if tenant is not None:
        conditions.append(cost_lines.c.tenant == tenant)
    return conditions
