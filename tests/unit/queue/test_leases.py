"""Leases: heartbeats, expiry, release."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rendercost.db.clock import ManualClock
from rendercost.domain.jobs import JobState
from rendercost.errors import NotFound
from rendercost.queue.sql_store import SqlJobStore
from tests.unit.queue.conftest import LEASE_S, make_request


def test_heartbeat_extends_only_the_callers_leases(store: SqlJobStore, clock: ManualClock) -> None:
    mine = store.enqueue("acme", make_request("mine"))
    theirs = store.enqueue("acme", make_request("theirs"))
    store.claim("w1", 1, lease_seconds=LEASE_S)
    store.claim("w2", 1, lease_seconds=LEASE_S)
    clock.advance(20)
    store.heartbeat("w1", [mine.id, theirs.id], lease_seconds=LEASE_S)
    assert store.get(mine.id).lease_expires_at == clock() + timedelta(seconds=LEASE_S)
    assert store.get(theirs.id).lease_expires_at == clock() + timedelta(seconds=LEASE_S - 20)

    clock.advance(15)  # w2's lease is 5 s past; w1's heartbeat kept its job
    assert store.requeue_expired() == 1
    assert store.get(mine.id).state is JobState.RUNNING
    back = store.get(theirs.id)
    assert back.state is JobState.QUEUED
    assert back.lease_owner is None and back.lease_expires_at is None
    assert back.last_error == "lease held by w2 expired"


def test_an_unexpired_lease_is_not_requeued(store: SqlJobStore, clock: ManualClock) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("w1", 1, lease_seconds=LEASE_S)
    clock.advance(LEASE_S)  # exactly at expiry: still held
    assert store.requeue_expired() == 0
    assert store.requeue_expired(now=clock() + timedelta(seconds=1)) == 1
    assert store.get(job.id).state is JobState.QUEUED


def test_expired_lease_on_the_last_attempt_dead_letters(store: SqlJobStore, clock: ManualClock) -> None:
    job = store.enqueue("acme", make_request())
    for attempt in range(1, 4):
        (claimed,) = store.claim(f"w{attempt}", 1, lease_seconds=LEASE_S)
        assert claimed.attempts == attempt
        clock.advance(LEASE_S + 1)
        assert store.requeue_expired() == 1
    dead = store.get(job.id)
    assert dead.state is JobState.FAILED
    assert dead.last_error == "lease held by w3 expired"
    assert dead.finished_at == clock()
    assert store.claim("w4", 1, lease_seconds=LEASE_S) == []


def test_release_gives_jobs_back_without_counting_an_attempt(store: SqlJobStore) -> None:
    a = store.enqueue("acme", make_request("a"))
    b = store.enqueue("acme", make_request("b"))
    store.claim("w1", 2, lease_seconds=LEASE_S)
    store.release("w2", [a.id])  # not w2's: ignored
    assert store.get(a.id).state is JobState.RUNNING
    store.release("w1", [a.id, b.id])
    for job_id in (a.id, b.id):
        job = store.get(job_id)
        assert job.state is JobState.QUEUED
        assert job.attempts == 0
        assert job.lease_owner is None and job.started_at is None
    (again, _) = store.claim("w2", 2, lease_seconds=LEASE_S)
    assert again.id == a.id and again.attempts == 1


def test_set_progress_while_running(store: SqlJobStore) -> None:
    job = store.enqueue("acme", make_request())
    store.set_progress(job.id, 0.5)  # queued: ignored
    assert store.get(job.id).progress == 0.0
    store.claim("w1", 1, lease_seconds=LEASE_S)
    store.set_progress(job.id, 0.25)
    assert store.get(job.id).progress == 0.25
    with pytest.raises(ValueError, match="between 0 and 1"):
        store.set_progress(job.id, 1.5)
    with pytest.raises(NotFound):
        store.set_progress("job_missing", 0.5)
