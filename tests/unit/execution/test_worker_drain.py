"""Draining with a deadline (SIGTERM on a spot machine) and claiming by priority, on both engines.

A stop with ``drain_seconds`` time left lets the batch in hand finish; once the time is up, the batch
still rendering is cut short at its next step, its jobs go back to the queue without losing an attempt,
and the device time spent on them is one ``interrupted`` line per job, billed through the Biller. A
later worker renders them once: the ledger is then the receipts plus the interrupted lines, exactly.
Time inside the worker is a fake monotonic clock the runner advances, so the seconds are exact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rendercost.artifacts.local import LocalArtifactStore
from rendercost.batching.planner import BatchPlanner
from rendercost.domain.batch import BatchPlan
from rendercost.domain.costs import PricingModel, Stage
from rendercost.domain.jobs import JobState
from rendercost.domain.money import cost_of_seconds
from rendercost.domain.runner import StepCallback
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.execution.worker.interrupt import interrupted_line
from rendercost.execution.worker.loop import Worker
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.ledger.billing import Biller
from rendercost.ledger.catalog import PriceCatalog
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.runner import BeforeHook, FakeRunner

SPEC = RenderSpec(prompt="a spot machine", preset="lightning", width=64, height=64)
STAGE_SECONDS = {Stage.TEXT_ENCODE: 0.25, Stage.DENOISE: 1.0, Stage.DECODE: 0.5}
LINES_PER_IMAGE = len(STAGE_SECONDS) + 1  # the stages the fake reports + storage


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(migrated_engine: Engine) -> SqlJobStore:
    return SqlJobStore(migrated_engine, retry_backoff_seconds=0.0)


@pytest.fixture
def pricing() -> WorkerPricing:
    return WorkerPricing(PriceCatalog.load(), "cpu", PricingModel.SPOT, "us-east-1")


@pytest.fixture
def make_worker(store: SqlJobStore, pricing: WorkerPricing, tmp_path: Path) -> Callable[..., Worker]:
    def make(
        before: BeforeHook | None = None,
        *,
        worker_id: str = "spot-1",
        drain_seconds: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        priorities: frozenset[Priority] = frozenset(Priority),
        max_batch_size: int = 2,
    ) -> Worker:
        return Worker(
            store,
            FakeRunner(stage_seconds=STAGE_SECONDS, image_size=(8, 8), before=before),
            LocalArtifactStore(tmp_path / "artifacts"),
            BatchPlanner(max_batch_size=max_batch_size, max_wait_ms=0),
            pricing,
            biller=Biller(store),
            worker_id=worker_id,
            lease_seconds=30,
            drain_seconds=drain_seconds,
            monotonic=monotonic,
            priorities=priorities,
        )

    return make


def enqueue(store: SqlJobStore, n: int = 1, *, seed: int = 0, priority: Priority = Priority.BATCH) -> str:
    return store.enqueue("acme", RenderRequest(spec=replace(SPEC, seed=seed), n=n, priority=priority)).id


def sigterm_then_run(stop: threading.Event, clock: FakeMonotonic, seconds: float) -> BeforeHook:
    """A runner hook: on its first call, SIGTERM arrives at step 1 and the batch runs ``seconds`` more
    before step 2; later calls run normally."""
    calls = [0]

    def before(_plan: BatchPlan, on_step: StepCallback | None) -> None:
        calls[0] += 1
        if calls[0] > 1 or on_step is None:
            return
        stop.set()
        on_step(1, 4)
        clock.now += seconds
        on_step(2, 4)

    return before


def device_price(pricing: WorkerPricing) -> Decimal:
    return pricing.catalog.device_price(pricing.device_type, pricing.pricing_model, pricing.region)


def test_a_drain_out_of_time_releases_the_batch_and_books_its_device_time(
    store: SqlJobStore, make_worker: Callable[..., Worker], pricing: WorkerPricing
) -> None:
    first, second = enqueue(store, seed=1), enqueue(store, seed=2)
    stop, clock = threading.Event(), FakeMonotonic()
    spot = make_worker(sigterm_then_run(stop, clock, 1.5), drain_seconds=1.0, monotonic=clock)
    stats = spot.run_forever(stop)

    assert stats.jobs_succeeded == 0 and stats.batches == 0
    ledger = Biller(store).ledger
    price = device_price(pricing)
    for job_id in (first, second):
        job = store.get(job_id)
        assert job.state is JobState.QUEUED and job.attempts == 0  # released, no attempt lost
        (line,) = ledger.lines_for_job(job_id)
        assert line.stage is Stage.INTERRUPTED and line.image_index == -1
        assert line.device_seconds == pytest.approx(0.75)  # half of the 1.5 s batch: equal work
        assert line.cost == cost_of_seconds(0.75, price)
        assert line.pricing_model is PricingModel.SPOT
    assert spot.health.report().status == "stopped"

    rescue = make_worker(worker_id="on-demand").run_burst()
    assert rescue.jobs_succeeded == 2
    receipts = Decimal(0)
    for job_id in (first, second):
        job = store.get(job_id)
        assert job.state is JobState.SUCCEEDED and job.attempts == 1
        assert job.result is not None
        receipts += job.result.cost
        lines = ledger.lines_for_job(job_id)
        assert len(lines) == LINES_PER_IMAGE + 1  # its one receipt, once, plus the interruption
    interrupted = 2 * cost_of_seconds(0.75, price)
    assert ledger.total(tenant="acme") == receipts + interrupted


def test_a_drain_with_time_left_finishes_the_batch_and_books_nothing_extra(
    store: SqlJobStore, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(store)
    stop, clock = threading.Event(), FakeMonotonic()
    stats = make_worker(sigterm_then_run(stop, clock, 1.5), drain_seconds=5.0, monotonic=clock).run_forever(
        stop
    )
    assert stats.jobs_succeeded == 1
    lines = Biller(store).ledger.lines_for_job(job_id)
    assert len(lines) == LINES_PER_IMAGE
    assert Stage.INTERRUPTED not in {line.stage for line in lines}


def test_images_rendered_before_the_cut_count_as_lost_work(
    store: SqlJobStore, make_worker: Callable[..., Worker], pricing: WorkerPricing
) -> None:
    """A 3-image job in batches of 2: the first batch renders, the second is cut short. Both batches'
    device time was spent on an attempt that must be redone."""
    job_id = enqueue(store, n=3)
    stop, clock = threading.Event(), FakeMonotonic()
    calls = [0]

    def before(_plan: BatchPlan, on_step: StepCallback | None) -> None:
        calls[0] += 1
        if calls[0] == 2 and on_step is not None:
            stop.set()
            on_step(1, 4)
            clock.now += 0.4
            on_step(2, 4)

    make_worker(before, drain_seconds=0.2, monotonic=clock).run_forever(stop)
    (line,) = Biller(store).ledger.lines_for_job(job_id)
    assert line.stage is Stage.INTERRUPTED
    assert line.device_seconds == pytest.approx(sum(STAGE_SECONDS.values()) + 0.4)
    assert store.get(job_id).state is JobState.QUEUED


def test_each_interruption_of_a_job_is_its_own_line(store: SqlJobStore, pricing: WorkerPricing) -> None:
    job = store.get(enqueue(store))
    biller = Biller(store)
    assert biller.interrupted(job, interrupted_line(job, 0.5, pricing, worker_id="a"))
    assert biller.interrupted(job, interrupted_line(job, 0.25, pricing, worker_id="b"))
    lines = biller.ledger.lines_for_job(job.id)
    assert sorted(line.image_index for line in lines) == [-2, -1]
    assert sum(line.device_seconds for line in lines) == pytest.approx(0.75)
    other = store.get(enqueue(store, seed=5))
    with pytest.raises(ValueError, match="cost lines of jobs"):
        biller.interrupted(job, interrupted_line(other, 0.5, pricing, worker_id="a"))
    with pytest.raises(ValueError, match="INTERRUPTED"):
        biller.interrupted(job, replace(interrupted_line(job, 0.5, pricing, worker_id="a"), stage=Stage.IDLE))
    assert len(biller.ledger.lines_for_job(job.id)) == 2  # refused lines wrote nothing


def test_a_batch_only_worker_leaves_interactive_work_to_others(
    store: SqlJobStore, make_worker: Callable[..., Worker]
) -> None:
    interactive = enqueue(store, priority=Priority.INTERACTIVE)
    batch = enqueue(store, seed=3)
    stats = make_worker(priorities=frozenset({Priority.BATCH})).run_burst()
    assert stats.jobs_succeeded == 1
    assert store.get(batch).state is JobState.SUCCEEDED
    assert store.get(interactive).state is JobState.QUEUED
    assert store.get(interactive).attempts == 0


def test_health_is_ok_while_the_loop_turns_and_not_once_stopping(
    store: SqlJobStore, make_worker: Callable[..., Worker]
) -> None:
    enqueue(store)
    seen: list[str] = []
    stop = threading.Event()
    holder: list[Worker] = []

    def before(_plan: BatchPlan, _on_step: StepCallback | None) -> None:
        seen.append(holder[0].health.report().status)
        stop.set()
        seen.append(holder[0].health.report().status)

    holder.append(make_worker(before))
    assert holder[0].health.report().status == "starting"
    holder[0].run_forever(stop)
    assert seen == ["ok", "draining"]
    assert holder[0].health.report().status == "stopped"
