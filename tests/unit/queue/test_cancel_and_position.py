"""Cancelling, queue positions and depth."""

from __future__ import annotations

import pytest

from rendercost.db.clock import ManualClock
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import Priority
from rendercost.errors import Conflict, NotFound
from rendercost.ledger.billing import Biller
from rendercost.queue.sql_store import SqlJobStore
from tests.unit.queue.conftest import LEASE_S, make_lines, make_request, make_result


def test_cancel_a_queued_job(store: SqlJobStore, clock: ManualClock) -> None:
    job = store.enqueue("acme", make_request())
    with pytest.raises(NotFound):
        store.cancel(job.id, tenant="globex")
    cancelled = store.cancel(job.id, tenant="acme")
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.finished_at == clock()
    assert store.claim("w1", 1, lease_seconds=LEASE_S) == []


def test_cancel_a_running_job_then_its_worker_cannot_complete_it(store: SqlJobStore, biller: Biller) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("w1", 1, lease_seconds=LEASE_S)
    assert store.cancel(job.id).state is JobState.CANCELLED
    with pytest.raises(Conflict):
        biller.complete(job.id, "w1", make_result(lines=make_lines(job.id)))
    assert biller.ledger.count_lines(job_id=job.id) == 0
    assert store.get(job.id).state is JobState.CANCELLED


def test_cancel_a_finished_job_is_a_conflict(store: SqlJobStore, biller: Biller) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("w1", 1, lease_seconds=LEASE_S)
    biller.complete(job.id, "w1", make_result())
    with pytest.raises(Conflict):
        store.cancel(job.id)
    cancelled = store.cancel(store.enqueue("acme", make_request()).id)
    with pytest.raises(Conflict):
        store.cancel(cancelled.id)
    assert store.get(job.id).state is JobState.SUCCEEDED


def test_queue_position_follows_claim_order(store: SqlJobStore, clock: ManualClock) -> None:
    batch = store.enqueue("acme", make_request(priority=Priority.BATCH))
    clock.advance(1)
    first = store.enqueue("acme", make_request())
    second = store.enqueue("acme", make_request())
    assert [store.queue_position(j.id) for j in (first, second, batch)] == [1, 2, 3]
    store.claim("w1", 1, lease_seconds=LEASE_S)
    assert store.queue_position(first.id) is None
    assert [store.queue_position(j.id) for j in (second, batch)] == [1, 2]
    with pytest.raises(NotFound):
        store.queue_position("job_missing")


def test_depth_counts_queued_jobs_by_priority_and_model(store: SqlJobStore) -> None:
    assert store.depth() == {}
    for model, priority in [("default", Priority.INTERACTIVE)] * 2 + [
        ("default", Priority.BATCH),
        ("sdxl", Priority.BATCH),
        ("sdxl", Priority.INTERACTIVE),
    ]:
        store.enqueue("acme", make_request(model=model, priority=priority))
    store.claim("w1", 1, lease_seconds=LEASE_S)  # one interactive "default" leaves the queue
    assert store.depth() == {
        (Priority.INTERACTIVE, "default"): 1,
        (Priority.INTERACTIVE, "sdxl"): 1,
        (Priority.BATCH, "default"): 1,
        (Priority.BATCH, "sdxl"): 1,
    }
