"""Biller.record on both engines: lines billed outside a job's completion, idempotent, all or nothing.
(Biller.complete and Biller.answer are tested with the job store in tests/unit/queue/test_complete.py.)"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from rendercost.db.clock import ManualClock
from rendercost.domain.costs import Attribution, CostLine, Stage
from rendercost.ledger.billing import Biller
from rendercost.ledger.tables import cost_lines
from rendercost.queue.sql_store import SqlJobStore

ATTRIBUTION = Attribution("acme", "default", "lightning", "interactive", {"api_key": "k1"})


def _line(job_id: str, stage: Stage = Stage.PROMPT_REWRITE, cost: str = "0.0000225000") -> CostLine:
    return CostLine(
        job_id=job_id,
        image_index=0,
        stage=stage,
        device_seconds=0.0,
        unit_price=Decimal("0.0000150000"),
        unit="1k-tokens",
        quantity=Decimal("1.5"),
        cost=Decimal(cost),
    )


@pytest.fixture
def biller(migrated_engine: Engine) -> Biller:
    clock = ManualClock()
    return Biller(SqlJobStore(migrated_engine, clock=clock), clock=clock)


def test_record_bills_lines_once_to_their_attribution(biller: Biller, migrated_engine: Engine) -> None:
    assert biller.record([_line("job_a"), _line("job_b")], ATTRIBUTION) == 2
    assert biller.record([_line("job_a", cost="9"), _line("job_c")], ATTRIBUTION) == 1  # job_a: a repeat
    assert biller.ledger.count_lines() == 3
    assert biller.ledger.total(tenant="acme") == Decimal("0.0000675000")
    c = cost_lines.c
    query = select(c.tenant, c.model, c.preset, c.request_class, c.tags).distinct()
    with migrated_engine.connect() as conn:
        assert conn.execute(query).all() == [
            ("acme", "default", "lightning", "interactive", {"api_key": "k1"})
        ]


def test_record_writes_nothing_when_one_line_is_bad(biller: Biller) -> None:
    too_fine = replace(_line("job_b"), cost=Decimal("0.00000000001"))  # finer than NUMERIC(20, 10)
    with pytest.raises(ValueError, match="decimal places"):
        biller.record([_line("job_a"), too_fine], ATTRIBUTION)
    with pytest.raises(ValueError, match="needs a job_id"):
        biller.record([_line("")], ATTRIBUTION)
    assert biller.ledger.count_lines() == 0
