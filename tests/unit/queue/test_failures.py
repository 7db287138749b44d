"""Failures: exponential backoff, dead-letter with the last error, and lease checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rendercost.db.clock import ManualClock
from rendercost.domain.jobs import JobState
from rendercost.errors import Conflict
from rendercost.queue.sql_store import SqlJobStore
from tests.unit.queue.conftest import LEASE_S, make_request


def test_retries_back_off_exponentially_then_dead_letter(store: SqlJobStore, clock: ManualClock) -> None:
    job = store.enqueue("acme", make_request())
    for attempt, backoff_s in ((1, 2.0), (2, 4.0)):
        store.claim("w1", 1, lease_seconds=LEASE_S)
        failed = store.fail(job.id, "w1", f"boom {attempt}")
        assert failed.state is JobState.QUEUED
        assert failed.attempts == attempt
        assert failed.not_before == clock() + timedelta(seconds=backoff_s)
        assert failed.last_error == f"boom {attempt}"
        assert failed.lease_owner is None
        clock.advance(backoff_s - 0.5)
        assert store.claim("w1", 1, lease_seconds=LEASE_S) == []
        clock.advance(0.5)
    store.claim("w1", 1, lease_seconds=LEASE_S)
    dead = store.fail(job.id, "w1", "boom 3")
    assert dead.state is JobState.FAILED
    assert dead.attempts == 3
    assert dead.last_error == "boom 3"
    assert dead.finished_at == clock()
    assert store.claim("w1", 1, lease_seconds=LEASE_S) == []


def test_a_non_retryable_failure_dead_letters_at_once(store: SqlJobStore) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("w1", 1, lease_seconds=LEASE_S)
    dead = store.fail(job.id, "w1", "prompt refused", retryable=False)
    assert dead.state is JobState.FAILED
    assert dead.attempts == 1
    assert dead.last_error == "prompt refused"


def test_only_the_lease_holder_can_fail_a_job(store: SqlJobStore) -> None:
    job = store.enqueue("acme", make_request())
    with pytest.raises(Conflict):
        store.fail(job.id, "w1", "not claimed yet")
    store.claim("w1", 1, lease_seconds=LEASE_S)
    with pytest.raises(Conflict) as lost:
        store.fail(job.id, "w2", "not mine")
    assert lost.value.code == "lease_lost"
    assert store.get(job.id).state is JobState.RUNNING


def test_long_errors_are_truncated(store: SqlJobStore) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("w1", 1, lease_seconds=LEASE_S)
    failed = store.fail(job.id, "w1", "x" * 20_000)
    assert failed.last_error is not None and len(failed.last_error) == 8000
