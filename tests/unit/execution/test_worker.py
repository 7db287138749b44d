"""The worker loop against the real SQL job store (SQLite and PostgreSQL) with the fake runner: the
seam the worker isolates. The tiny diffusers model runs in test_worker_tiny.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from rendercost.artifacts.local import TEMP_PREFIX, LocalArtifactStore
from rendercost.artifacts.metadata import read_receipt
from rendercost.artifacts.protocol import ArtifactRef
from rendercost.batching.planner import BatchPlanner
from rendercost.domain.batch import BatchPlan
from rendercost.domain.costs import DEVICE_STAGES, PricingModel, Stage
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.money import cost_of_seconds
from rendercost.domain.runner import StepCallback
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.errors import InvalidRequest
from rendercost.execution.worker.held import HeldJobs
from rendercost.execution.worker.loop import Worker
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.execution.worker.settle import Settler, WorkerStats
from rendercost.ledger.billing import Biller
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.ledger import Ledger
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.runner import BeforeHook, FakeRunner

SPEC = RenderSpec(prompt="a lighthouse", preset="lightning", width=64, height=64)
STAGE_SECONDS = {
    Stage.TEXT_ENCODE: 0.013,
    Stage.PREPARE_LATENTS: 0.001,
    Stage.DENOISE: 0.377,
    Stage.DECODE: 0.051,
    Stage.POSTPROCESS: 0.007,
}
LINES_PER_IMAGE = len(DEVICE_STAGES) + 1  # device stages + storage


def fake_runner(before: BeforeHook | None = None) -> FakeRunner:
    """Small real PNGs (8x8) reporting ``STAGE_SECONDS``; ``before`` runs first in every call."""
    return FakeRunner(stage_seconds=STAGE_SECONDS, image_size=(8, 8), before=before)


@pytest.fixture
def store(migrated_engine: Engine) -> SqlJobStore:
    return SqlJobStore(migrated_engine, max_attempts=3, retry_backoff_seconds=0.0)


@pytest.fixture
def biller(store: SqlJobStore) -> Biller:
    return Biller(store)


@pytest.fixture
def ledger(biller: Biller) -> Ledger:
    return biller.ledger


@pytest.fixture
def pricing() -> WorkerPricing:
    return WorkerPricing(PriceCatalog.load(), "cpu", PricingModel.ON_DEMAND, "us-east-1")


@pytest.fixture
def artifacts(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def make_worker(
    store: SqlJobStore, biller: Biller, artifacts: LocalArtifactStore, pricing: WorkerPricing
) -> Iterator[Callable[..., Worker]]:
    def make(
        runner: FakeRunner, *, max_batch_size: int = 4, clock: Callable[[], float] | None = None
    ) -> Worker:
        return Worker(
            store,
            runner,
            artifacts,
            BatchPlanner(max_batch_size=max_batch_size, max_wait_ms=50),
            pricing,
            biller=biller,
            worker_id="w1",
            lease_seconds=30,
            clock=clock or time.time,
        )

    yield make


def enqueue(store: SqlJobStore, n: int = 1, *, spec: RenderSpec = SPEC, seed: int = 0) -> str:
    request = RenderRequest(spec=replace(spec, seed=seed), n=n, priority=Priority.BATCH)
    return store.enqueue("t1", request).id


def test_burst_renders_stores_and_bills_every_job(
    store: SqlJobStore, ledger: Ledger, artifacts: LocalArtifactStore, make_worker: Callable[..., Worker]
) -> None:
    sizes = [1, 2, 1, 3]
    job_ids = [enqueue(store, n, seed=100 * i) for i, n in enumerate(sizes)]
    runner = fake_runner()
    stats = make_worker(runner).run_burst()

    assert stats.jobs_succeeded == 4
    assert stats.images == sum(sizes)
    assert [plan.size for plan in runner.plans] == [4, 3]  # 1+2+1 then 3: queue order kept
    for job_id, n in zip(job_ids, sizes, strict=True):
        job = store.get(job_id)
        assert job.state is JobState.SUCCEEDED
        lines = ledger.lines_for_job(job_id)
        assert len(lines) == n * LINES_PER_IMAGE
        assert job.result is not None
        assert job.result.cost == sum(line.cost for line in lines)
        assert [image.index for image in job.result.images] == list(range(n))
        for image in job.result.images:
            data = artifacts.get(image.artifact_key)
            embedded = read_receipt(data, "image/png")
            assert embedded is not None
            assert embedded["receipt"] == image.receipt.to_dict()
            assert embedded["seed"] == image.seed
            storage = [line for line in embedded["receipt"]["lines"] if line["stage"] == "storage"]
            assert storage[0]["details"]["bytes"] == len(data)  # the receipt prices the file holding it
    assert list((artifacts.root).rglob(f"{TEMP_PREFIX}*")) == []


def test_lines_of_a_batch_sum_exactly_to_the_batch_cost(
    store: SqlJobStore, ledger: Ledger, make_worker: Callable[..., Worker], pricing: WorkerPricing
) -> None:
    small, large = enqueue(store, 1), enqueue(store, 3, seed=50)
    runner = fake_runner()
    make_worker(runner).run_burst()
    assert len(runner.plans) == 1
    lines = ledger.lines_for_job(small) + ledger.lines_for_job(large)
    usd_per_hour = pricing.catalog.device_price("cpu", PricingModel.ON_DEMAND, "us-east-1")
    for stage, seconds in STAGE_SECONDS.items():
        stage_lines = [line for line in lines if line.stage is stage]
        assert len(stage_lines) == 4
        assert sum(line.cost for line in stage_lines) == cost_of_seconds(seconds, usd_per_hour)
        assert {line.batch_size for line in stage_lines} == {4}
    small_device = sum(
        (line.cost for line in ledger.lines_for_job(small) if line.stage is not Stage.STORAGE),
        Decimal(0),
    )
    large_device = sum(
        (line.cost for line in ledger.lines_for_job(large) if line.stage is not Stage.STORAGE),
        Decimal(0),
    )
    assert abs(large_device - 3 * small_device) <= Decimal("1e-9")


def test_job_larger_than_a_batch_is_settled_once_all_images_are_in(
    store: SqlJobStore, ledger: Ledger, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(store, 6)
    seen_states: list[JobState] = []
    runner = fake_runner(before=lambda plan, _: seen_states.append(store.get(job_id).state))
    make_worker(runner).run_burst()
    assert [plan.size for plan in runner.plans] == [4, 2]
    assert seen_states == [JobState.RUNNING, JobState.RUNNING]  # not completed between its batches
    job = store.get(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.result is not None
    assert len(job.result.images) == 6
    assert list(job.result.batch_ids) == [plan.batch_id for plan in runner.plans]
    assert len(ledger.lines_for_job(job_id)) == 6 * LINES_PER_IMAGE


def test_bad_input_is_dead_lettered_at_once(
    store: SqlJobStore, ledger: Ledger, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(store)

    def refuse(plan: BatchPlan, on_step: StepCallback | None) -> None:
        raise InvalidRequest("preset 'lightning' needs a speed LoRA", param="preset")

    stats = make_worker(fake_runner(before=refuse)).run_burst()
    job = store.get(job_id)
    assert job.state is JobState.FAILED
    assert job.attempts == 1
    assert job.last_error == "preset 'lightning' needs a speed LoRA"
    assert stats.jobs_failed == 1
    assert ledger.lines_for_job(job_id) == []


def test_a_crashing_runner_is_retried_then_dead_lettered(
    store: SqlJobStore, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(store)

    def crash(plan: BatchPlan, on_step: StepCallback | None) -> None:
        raise RuntimeError("CUDA error: device-side assert")

    runner = fake_runner(before=crash)
    make_worker(runner).run_burst()  # backoff is 0: the burst worker claims the retries at once
    job = store.get(job_id)
    assert len(runner.plans) == 3
    assert job.state is JobState.FAILED
    assert job.last_error == "RuntimeError: CUDA error: device-side assert"


def test_one_failure_does_not_stop_the_loop(store: SqlJobStore, make_worker: Callable[..., Worker]) -> None:
    wide = replace(SPEC, width=128)
    bad = enqueue(store, spec=wide)
    good = enqueue(store)

    def refuse_wide(plan: BatchPlan, on_step: StepCallback | None) -> None:
        if plan.items[0].spec.width == 128:
            raise InvalidRequest("no")

    make_worker(fake_runner(before=refuse_wide)).run_burst()
    assert store.get(bad).state is JobState.FAILED
    assert store.get(good).state is JobState.SUCCEEDED


def test_cancelled_while_rendering_is_not_billed(
    store: SqlJobStore, ledger: Ledger, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(store)

    def cancel(plan: BatchPlan, on_step: StepCallback | None) -> None:
        store.cancel(job_id)

    runner = fake_runner(before=cancel)
    stats = make_worker(runner).run_burst()
    assert store.get(job_id).state is JobState.CANCELLED
    assert ledger.lines_for_job(job_id) == []
    assert stats.jobs_succeeded == 0


def test_a_job_of_a_batch_cancelled_while_it_rendered_leaves_the_others_billed(
    store: SqlJobStore, ledger: Ledger, make_worker: Callable[..., Worker]
) -> None:
    kept, cancelled, also_kept = (enqueue(store, seed=seed) for seed in (1, 2, 3))

    def cancel(plan: BatchPlan, on_step: StepCallback | None) -> None:
        store.cancel(cancelled)

    runner = fake_runner(before=cancel)
    stats = make_worker(runner).run_burst()

    assert [len(plan.items) for plan in runner.plans] == [3]  # one batch, settled in one call
    assert store.get(cancelled).state is JobState.CANCELLED and ledger.lines_for_job(cancelled) == []
    assert [store.get(job).state for job in (kept, also_kept)] == [JobState.SUCCEEDED] * 2
    assert [len(ledger.lines_for_job(job)) for job in (kept, also_kept)] == [LINES_PER_IMAGE] * 2
    assert stats.jobs_succeeded == 2


def test_a_batch_that_cannot_be_settled_at_once_is_settled_job_by_job(
    migrated_engine: Engine, artifacts: LocalArtifactStore, pricing: WorkerPricing
) -> None:
    class BatchShyBiller(Biller):
        def complete_many(self, worker_id: str, completions: Any) -> Any:
            raise OSError("statement too large")  # the one-by-one path is left

    store = SqlJobStore(migrated_engine)
    biller = BatchShyBiller(store)
    jobs = [enqueue(store, seed=seed) for seed in (1, 2)]
    planner = BatchPlanner(max_batch_size=4, max_wait_ms=0)
    worker = Worker(
        store, fake_runner(), artifacts, planner, pricing, biller=biller, worker_id="w", lease_seconds=30
    )

    stats = worker.run_burst()

    assert stats.batches == 1 and stats.jobs_succeeded == 2
    assert [store.get(job).state for job in jobs] == [JobState.SUCCEEDED] * 2
    assert [len(biller.ledger.lines_for_job(job)) for job in jobs] == [LINES_PER_IMAGE] * 2


def test_progress_is_written_while_a_batch_runs(
    store: SqlJobStore, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(store, 2)
    now = [1000.0]
    seen: list[float] = []

    def steps(plan: BatchPlan, on_step: StepCallback | None) -> None:
        assert on_step is not None
        for done in (1, 2):
            now[0] += 1.0  # more than progress_interval_s between steps
            on_step(done, 4)
            seen.append(store.get(job_id).progress)

    make_worker(fake_runner(before=steps), clock=lambda: now[0]).run_burst()
    assert seen == [pytest.approx(0.25), pytest.approx(0.5)]


def test_stop_finishes_the_batch_in_hand_and_releases_the_rest(
    store: SqlJobStore, make_worker: Callable[..., Worker]
) -> None:
    first = enqueue(store)
    wide = enqueue(store, spec=replace(SPEC, width=128))
    second = enqueue(store, seed=9)
    stop = threading.Event()
    runner = fake_runner(before=lambda plan, _: stop.set())
    make_worker(runner, max_batch_size=2).run_burst(stop)

    assert [[item.job_id for item in plan.items] for plan in runner.plans] == [[first, second]]
    assert store.get(first).state is JobState.SUCCEEDED
    assert store.get(second).state is JobState.SUCCEEDED
    released = store.get(wide)
    assert released.state is JobState.QUEUED
    assert released.attempts == 0  # giving it back did not cost it an attempt


def test_expired_leases_of_a_dead_worker_are_taken_over(
    store: SqlJobStore, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(store)
    store.claim("dead-worker", 1, lease_seconds=0.001)  # leased by a worker that died
    time.sleep(0.01)  # ... and its lease has run out
    make_worker(fake_runner()).run_burst()
    job = store.get(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.attempts == 2


def test_a_failed_settle_leaves_the_job_to_be_rendered_again(
    migrated_engine: Engine, artifacts: LocalArtifactStore, pricing: WorkerPricing
) -> None:
    class FlakyBiller(Biller):
        failures = 1

        def complete(self, job_id: str, worker_id: str, *args: Any, **kwargs: Any) -> Job:
            if FlakyBiller.failures:
                FlakyBiller.failures -= 1
                raise OSError("connection reset by peer")
            return super().complete(job_id, worker_id, *args, **kwargs)

    store = SqlJobStore(migrated_engine)
    biller = FlakyBiller(store)
    ledger = biller.ledger
    job_id = enqueue(store)

    def worker() -> Worker:
        planner = BatchPlanner(max_batch_size=4, max_wait_ms=0)
        return Worker(
            store, fake_runner(), artifacts, planner, pricing, biller=biller, worker_id="w", lease_seconds=30
        )

    worker().run_burst()  # settling fails: nothing is written, the lease is no longer kept alive
    assert store.get(job_id).state is JobState.RUNNING
    assert ledger.lines_for_job(job_id) == []
    assert store.requeue_expired(now=datetime.now(UTC) + timedelta(seconds=31)) == 1
    worker().run_burst()
    job = store.get(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.attempts == 2
    assert len(ledger.lines_for_job(job_id)) == LINES_PER_IMAGE


def test_a_failed_store_fails_the_job_and_its_retry_renders_every_image(
    store: SqlJobStore, ledger: Ledger, tmp_path: Path, pricing: WorkerPricing
) -> None:
    class FullDisk(LocalArtifactStore):
        failures = 1

        def put(self, data: bytes, *, media_type: str, suffix: str) -> ArtifactRef:
            if FullDisk.failures:
                FullDisk.failures -= 1
                raise OSError(28, "No space left on device")
            return super().put(data, media_type=media_type, suffix=suffix)

    job_id = enqueue(store, 6)  # two batches: the first one's files cannot be written
    runner = fake_runner()
    planner = BatchPlanner(max_batch_size=4, max_wait_ms=0)
    worker = Worker(
        store,
        runner,
        FullDisk(tmp_path / "a"),
        planner,
        pricing,
        biller=Biller(store),
        worker_id="w",
        lease_seconds=30,
    )
    stats = worker.run_burst()

    job = store.get(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.attempts == 2
    assert stats.jobs_failed == 1
    assert job.result is not None
    assert len(job.result.images) == 6
    assert len(ledger.lines_for_job(job_id)) == 6 * LINES_PER_IMAGE


def test_a_reclaimed_job_is_not_dropped_for_its_failed_attempt(
    store: SqlJobStore, ledger: Ledger, tmp_path: Path, pricing: WorkerPricing
) -> None:
    class FullDisk(LocalArtifactStore):
        def put(self, data: bytes, *, media_type: str, suffix: str) -> ArtifactRef:
            raise OSError(28, "No space left on device")

    stats = WorkerStats()
    held = HeldJobs(BatchPlanner(max_batch_size=4, max_wait_ms=0))
    settler = Settler(
        store, FullDisk(tmp_path / "a"), pricing, held, biller=Biller(store), worker_id="w", stats=stats
    )
    job_id = enqueue(store, 2)
    with settler:
        [job] = store.claim("w", 1, lease_seconds=30)
        assert held.claimed([job], 0.0) == []
        plan = held.plan(0.0, flush=True).plan
        assert plan is not None
        settler.submit(plan, fake_runner().run(plan), held.finished(plan.batch_id))
        settler.wait_idle()  # storing failed: the job is back in the queue and let go here
        [again] = store.claim("w", 1, lease_seconds=30)  # the same worker takes the retry at once
        assert again.id == job_id and again.attempts == 2
        assert held.claimed([again], 1.0) == []
        assert held.job_ids == [job_id]  # the new attempt is held, not dropped with the old one
        assert held.planning and held.progress(job_id, 0) == 0.0
    assert stats.jobs_failed == 1


def test_images_and_failures_of_an_old_attempt_are_not_taken_for_the_new_one(
    store: SqlJobStore, ledger: Ledger, tmp_path: Path, pricing: WorkerPricing
) -> None:
    class FullDisk(LocalArtifactStore):
        full = False

        def put(self, data: bytes, *, media_type: str, suffix: str) -> ArtifactRef:
            if FullDisk.full:
                raise OSError(28, "No space left on device")
            return super().put(data, media_type=media_type, suffix=suffix)

    stats = WorkerStats()
    held = HeldJobs(BatchPlanner(max_batch_size=1, max_wait_ms=0))
    settler = Settler(
        store, FullDisk(tmp_path / "a"), pricing, held, biller=Biller(store), worker_id="w", stats=stats,
        pipelined=False,
    )  # fmt: skip
    job_id = enqueue(store, 2)
    [job] = store.claim("w", 1, lease_seconds=30)
    held.claimed([job], 0.0)
    first, second = held.plan(0.0).plan, held.plan(0.0).plan  # one image each
    assert first is not None and second is not None
    assert held.finished(first.batch_id) == []
    [old] = held.finished(second.batch_id)
    # the lease ran out while both batches waited to settle; this worker takes the job back
    assert store.requeue_expired(now=datetime.now(UTC) + timedelta(seconds=31)) == 1
    [again] = store.claim("w", 1, lease_seconds=30)
    held.claimed([again], 1.0)
    settler.submit(first, fake_runner().run(first), [])
    settler.submit(second, fake_runner().run(second), [old])  # the old attempt's last image
    assert held.progress(job_id, 0) == 0.0  # none of the old attempt's images counts for the new one
    assert store.get(job_id).state is JobState.RUNNING and ledger.lines_for_job(job_id) == []
    FullDisk.full = True
    settler.fail([old], "the old attempt failed", retryable=True)
    running = store.get(job_id)
    assert running.state is JobState.RUNNING and running.attempts == 2  # the new attempt is not failed
    assert held.job_ids == [job_id] and stats.jobs_failed == 0
