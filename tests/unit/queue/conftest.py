"""Queue test helpers: a manual clock and a SqlJobStore on a freshly migrated database (both engines)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from rendercost.db.clock import ManualClock
from rendercost.domain.costs import CostLine, Receipt, Stage
from rendercost.domain.results import ImageResult, JobResult
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.ledger.billing import Biller
from rendercost.ledger.ledger import Ledger
from rendercost.queue.sql_store import SqlJobStore

LEASE_S = 30.0  # lease used by the tests


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(migrated_engine: Engine, clock: ManualClock) -> SqlJobStore:
    return SqlJobStore(migrated_engine, max_attempts=3, retry_backoff_seconds=2.0, clock=clock)


@pytest.fixture
def biller(store: SqlJobStore, clock: ManualClock) -> Biller:
    """Completes the ``store``'s jobs and bills them (the only writer of cost lines)."""
    return Biller(store, clock=clock)


@pytest.fixture
def ledger(biller: Biller) -> Ledger:
    return biller.ledger


def make_request(
    prompt: str = "a red fox",
    *,
    priority: Priority = Priority.INTERACTIVE,
    model: str = "default",
    n: int = 1,
) -> RenderRequest:
    spec = RenderSpec(prompt=prompt, model=model, preset="lightning", width=64, height=64, seed=7)
    return RenderRequest(spec=spec, n=n, priority=priority)


def make_lines(job_id: str, n_images: int = 1, cost: str = "0.0000012345") -> list[CostLine]:
    """Two device lines per image, priced at ``cost`` each."""
    return [
        CostLine(
            job_id=job_id,
            image_index=index,
            stage=stage,
            device_seconds=0.5,
            unit_price=Decimal("2.5000"),
            unit="device-hour",
            quantity=Decimal("0.000138888888888889"),
            cost=Decimal(cost),
            batch_id="batch-1",
            batch_size=n_images,
            details={"steps": 4},
        )
        for index in range(n_images)
        for stage in (Stage.DENOISE, Stage.DECODE)
    ]


def make_result(n_images: int = 1, *, device: str = "cpu", lines: Sequence[CostLine] = ()) -> JobResult:
    """A succeeded job's result: ``n_images`` stored images, one batch; each image's receipt holds the
    ``lines`` of its image index (none: empty receipts)."""
    assert all(0 <= line.image_index < n_images for line in lines), "a line for an image not in the result"
    images = tuple(
        ImageResult(
            index,
            f"key-{index}.png",
            "image/png",
            7 + index,
            1000 + index,
            Receipt(tuple(line for line in lines if line.image_index == index)),
        )
        for index in range(n_images)
    )
    return JobResult(images, device=device, batch_ids=("batch-1",))
