"""Claiming by priority: a worker started with ``--priorities batch`` (a spot pool) takes only batch
jobs, however long they waited (aging changes rank, not priority), and one with ``interactive`` only
interactive jobs; both engines."""

from __future__ import annotations

import pytest

from rendercost.db.clock import ManualClock
from rendercost.domain.specs import Priority
from rendercost.queue.claims import ALL_PRIORITIES, parse_priorities
from rendercost.queue.sql_store import SqlJobStore
from tests.unit.queue.conftest import LEASE_S, make_request


def test_a_batch_only_worker_never_takes_interactive_work(store: SqlJobStore) -> None:
    interactive = store.enqueue("t", make_request("now", priority=Priority.INTERACTIVE))
    batch = store.enqueue("t", make_request("later", priority=Priority.BATCH))
    claimed = store.claim("spot", 5, lease_seconds=LEASE_S, priorities={Priority.BATCH})
    assert [job.id for job in claimed] == [batch.id]
    assert store.claim("spot", 5, lease_seconds=LEASE_S, priorities={Priority.BATCH}) == []
    assert [job.id for job in store.claim("on-demand", 5, lease_seconds=LEASE_S)] == [interactive.id]


def test_an_interactive_only_worker_leaves_batch_work_even_when_aged(
    store: SqlJobStore, clock: ManualClock
) -> None:
    old_batch = store.enqueue("t", make_request("old", priority=Priority.BATCH))
    clock.advance(3600)  # aged far past aging_seconds: ranks as interactive
    fresh = store.enqueue("t", make_request("fresh", priority=Priority.INTERACTIVE))
    claimed = store.claim("on-demand", 5, lease_seconds=LEASE_S, priorities={Priority.INTERACTIVE})
    assert [job.id for job in claimed] == [fresh.id]
    both = store.claim("any", 5, lease_seconds=LEASE_S, priorities=ALL_PRIORITIES)
    assert [job.id for job in both] == [old_batch.id]


def test_no_priorities_claims_nothing(store: SqlJobStore) -> None:
    store.enqueue("t", make_request())
    assert store.claim("w", 5, lease_seconds=LEASE_S, priorities=set()) == []


def test_priorities_parse_from_the_flag() -> None:
    assert parse_priorities("interactive,batch") == ALL_PRIORITIES
    assert parse_priorities(" Batch ") == {Priority.BATCH}
    with pytest.raises(ValueError, match="unknown priority urgent; choose from batch, interactive"):
        parse_priorities("batch,urgent")
    with pytest.raises(ValueError, match="no priorities"):
        parse_priorities(" , ")
