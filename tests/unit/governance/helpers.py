"""Seed the ledger with real cost lines for the governance tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine

from rendercost.domain.costs import Attribution, CostLine, Stage
from rendercost.ledger.ledger import Ledger


def line(
    job_id: str,
    stage: Stage,
    cost: str,
    *,
    seconds: float = 1.0,
    image_index: int = 0,
    avoided: str = "0",
    details: dict[str, object] | None = None,
    batch_size: int = 1,
) -> CostLine:
    price = Decimal("2.5")
    if stage == Stage.STORAGE:
        unit, price = "GB-month", Decimal("0.023")
        quantity = Decimal(cost) / price
    else:
        unit = "device-hour"
        quantity = Decimal(cost) / price
    return CostLine(
        job_id=job_id,
        image_index=image_index,
        stage=stage,
        device_seconds=seconds,
        unit_price=price,
        unit=unit,
        quantity=quantity.quantize(Decimal("1e-12")),
        cost=Decimal(cost),
        batch_id=f"b-{job_id}",
        batch_size=batch_size,
        cost_avoided=Decimal(avoided),
        details=details or {},
    )


def seed(
    engine: Engine,
    job_id: str,
    when: datetime,
    lines: list[CostLine],
    *,
    tenant: str = "acme",
    model: str = "tiny",
    preset: str = "standard",
    request_class: str | None = "interactive",
) -> None:
    ledger = Ledger(engine)
    with engine.begin() as conn:
        attribution = Attribution(tenant, model, preset, request_class, {"team": "ml"})
        ledger.insert_lines(conn, lines, attribution, now=when)
