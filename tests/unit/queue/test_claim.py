"""Claiming: order, limits, backoff windows, leases, and no double claims under concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from rendercost.db.clock import ManualClock
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import Priority
from rendercost.queue.sql_store import SqlJobStore
from tests.unit.queue.conftest import LEASE_S, make_request


def test_claim_takes_interactive_first_then_oldest(store: SqlJobStore, clock: ManualClock) -> None:
    old_batch = store.enqueue("acme", make_request("old batch", priority=Priority.BATCH))
    clock.advance(1)
    first = store.enqueue("acme", make_request("first"))
    second = store.enqueue("acme", make_request("second"))  # same timestamp: insertion order decides
    clock.advance(1)
    new_batch = store.enqueue("acme", make_request("new batch", priority=Priority.BATCH))

    claimed = store.claim("w1", 3, lease_seconds=LEASE_S)
    assert [job.id for job in claimed] == [first.id, second.id, old_batch.id]
    assert [job.id for job in store.claim("w1", 3, lease_seconds=LEASE_S)] == [new_batch.id]
    assert store.claim("w1", 3, lease_seconds=LEASE_S) == []


def test_claim_sets_the_lease_and_counts_an_attempt(store: SqlJobStore, clock: ManualClock) -> None:
    job = store.enqueue("acme", make_request())
    clock.advance(5)
    (claimed,) = store.claim("w1", 1, lease_seconds=LEASE_S)
    assert claimed.state is JobState.RUNNING
    assert claimed.attempts == 1
    assert claimed.lease_owner == "w1"
    assert claimed.lease_expires_at == clock() + timedelta(seconds=LEASE_S)
    assert claimed.started_at == clock()
    assert store.get(job.id) == claimed


def test_claim_limit_zero_claims_nothing(store: SqlJobStore) -> None:
    store.enqueue("acme", make_request())
    assert store.claim("w1", 0, lease_seconds=LEASE_S) == []
    assert store.get(store.list_jobs()[0].id).state is JobState.QUEUED


def test_claim_skips_jobs_waiting_out_a_backoff(store: SqlJobStore, clock: ManualClock) -> None:
    backing_off = store.enqueue("acme", make_request("flaky"))
    store.claim("w1", 1, lease_seconds=LEASE_S)
    store.fail(backing_off.id, "w1", "CUDA out of memory")  # not before now + 2 s
    clock.advance(1)
    later = store.enqueue("acme", make_request("later"))
    assert [job.id for job in store.claim("w2", 5, lease_seconds=LEASE_S)] == [later.id]
    clock.advance(1)
    retried = store.claim("w2", 5, lease_seconds=LEASE_S)
    assert [job.id for job in retried] == [backing_off.id]
    assert retried[0].attempts == 2
    assert retried[0].not_before is None


def test_concurrent_workers_never_claim_the_same_job(store: SqlJobStore) -> None:
    jobs_n, workers_n = 24, 4
    for i in range(jobs_n):
        store.enqueue("acme", make_request(f"p{i}"))
    barrier = threading.Barrier(workers_n)
    claimed: dict[str, list[str]] = {f"w{i}": [] for i in range(workers_n)}
    errors: list[BaseException] = []

    def work(worker_id: str) -> None:
        try:
            barrier.wait()
            while batch := store.claim(worker_id, 2, lease_seconds=LEASE_S):
                claimed[worker_id].extend(job.id for job in batch)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker_id,)) for worker_id in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    all_ids = [job_id for ids in claimed.values() for job_id in ids]
    assert len(all_ids) == jobs_n
    assert len(set(all_ids)) == jobs_n
    for worker_id, ids in claimed.items():
        assert all(store.get(job_id).lease_owner == worker_id for job_id in ids)


def test_a_lease_must_have_a_length(store: SqlJobStore) -> None:
    job = store.enqueue("acme", make_request())
    with pytest.raises(ValueError, match="lease_seconds"):
        store.claim("w1", 1, lease_seconds=0)
    with pytest.raises(ValueError, match="lease_seconds"):
        store.heartbeat("w1", [job.id], lease_seconds=-1)
    assert store.get(job.id).state is JobState.QUEUED


def test_aged_batch_work_is_claimed_before_newer_interactive_work(
    store: SqlJobStore, clock: ManualClock
) -> None:
    batch = store.enqueue("acme", make_request("bulk", priority=Priority.BATCH))
    clock.advance(29)
    early = store.enqueue("acme", make_request("early interactive"))
    assert [job.id for job in store.claim("w1", 1, lease_seconds=LEASE_S)] == [early.id]

    clock.advance(1)  # the batch job has now waited aging_seconds (30 s)
    late = store.enqueue("acme", make_request("late interactive"))
    assert [job.id for job in store.claim("w1", 2, lease_seconds=LEASE_S)] == [batch.id, late.id]
