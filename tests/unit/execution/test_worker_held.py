"""HeldJobs: one record of a worker's jobs, one method per transition (jobs claimed from a real store)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from rendercost.batching.planner import BatchPlanner
from rendercost.domain.jobs import Job
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.execution.worker.held import HeldJobs
from rendercost.queue.sql_store import SqlJobStore

SPEC = RenderSpec(prompt="a lighthouse", preset="lightning", width=64, height=64)


@pytest.fixture
def store(migrated_engine: Engine) -> SqlJobStore:
    return SqlJobStore(migrated_engine)


def _claim(store: SqlJobStore, *sizes: int) -> list[Job]:
    for n in sizes:
        store.enqueue("t1", RenderRequest(spec=SPEC, n=n, priority=Priority.BATCH))
    return store.claim("w", len(sizes), lease_seconds=30)


def test_a_job_is_held_from_claim_until_settled(store: SqlJobStore) -> None:
    held = HeldJobs(BatchPlanner(max_batch_size=2, max_wait_ms=0))
    small, large = _claim(store, 1, 2)
    assert held.claimed([small, large], 0.0) == []
    assert held.job_ids == sorted([small.id, large.id]) and held.count == 2 and held.planning
    first = held.plan(0.0).plan
    assert first is not None and [item.job_id for item in first.items] == [small.id, large.id]
    [done] = held.finished(first.batch_id)
    assert done.job_id == small.id
    assert set(held.attempts_in(first.batch_id)) == {small.id, large.id}
    assert held.attempts_in(first.batch_id) == {}  # a batch is settled once
    held.settled(done)
    assert held.job_ids == [large.id] and held.assembly(done) is None
    assert held.progress(large.id, 1) == 0.5  # one of its two images in flight, none stored


def test_a_failed_batch_lets_its_jobs_go_once_their_failure_is_recorded(store: SqlJobStore) -> None:
    held = HeldJobs(BatchPlanner(max_batch_size=4, max_wait_ms=0))
    [job] = _claim(store, 3)
    held.claimed([job], 0.0)
    plan = held.plan(0.0).plan
    assert plan is not None
    [attempt] = held.batch_failed(plan.batch_id)
    assert not held.planning and held.job_ids == [job.id]  # still leased until the failure is recorded
    held.failed(attempt)
    assert held.job_ids == [] and not held.holds(attempt)


def test_claiming_a_held_job_again_supersedes_its_old_attempt(store: SqlJobStore) -> None:
    held = HeldJobs(BatchPlanner(max_batch_size=4, max_wait_ms=0))
    [job] = _claim(store, 2)
    held.claimed([job], 0.0)
    old_plan = held.plan(0.0).plan
    assert old_plan is not None
    [old] = held.finished(old_plan.batch_id)
    held.claimed([job], 1.0)  # e.g. its lease ran out and this worker took it back
    assert not held.holds(old) and held.assembly(old) is None
    assert held.attempts_in(old_plan.batch_id) == {}  # the old attempt's images are not the new one's
    held.settled(old)  # letting the old attempt go leaves the new one held
    assert held.job_ids == [job.id] and held.planning
    new_plan = held.plan(1.0).plan
    assert new_plan is not None and len(new_plan.items) == 2


def test_unstarted_jobs_are_taken_back_for_release(store: SqlJobStore) -> None:
    held = HeldJobs(BatchPlanner(max_batch_size=1, max_wait_ms=0))
    started, unstarted = _claim(store, 1, 1)
    held.claimed([started, unstarted], 0.0)
    assert held.plan(0.0).plan is not None
    assert held.take_unstarted() == [unstarted.id]
    assert held.job_ids == [started.id]
