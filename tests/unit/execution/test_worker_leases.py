"""LeaseKeeper against the real job store: heartbeats extend exactly the leases it holds."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import Engine

from rendercost.batching.planner import BatchPlanner
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.execution.worker.held import HeldJobs
from rendercost.execution.worker.leases import LeaseKeeper
from rendercost.queue.sql_store import SqlJobStore

REQUEST = RenderRequest(spec=RenderSpec(prompt="a kite", width=64, height=64))


def test_heartbeat_extends_held_leases_only(migrated_engine: Engine) -> None:
    store = SqlJobStore(migrated_engine)
    a, b = store.enqueue("t", REQUEST), store.enqueue("t", REQUEST)
    claimed = store.claim("w", 2, lease_seconds=5)
    before = {job.id: job.lease_expires_at for job in claimed}
    held = HeldJobs(BatchPlanner())
    keeper = LeaseKeeper(store, "w", held, lease_seconds=600)
    held.claimed([job for job in claimed if job.id == b.id], 0.0)
    assert held.take_unstarted() == [b.id]  # given back: no longer held
    held.claimed([job for job in claimed if job.id == a.id], 0.0)
    keeper.beat_once()
    after_a, after_b = store.get(a.id).lease_expires_at, store.get(b.id).lease_expires_at
    before_a = before[a.id]
    assert after_a is not None and before_a is not None
    assert after_a - before_a > timedelta(seconds=500)
    assert after_b == before[b.id]
    assert held.job_ids == [a.id]


def test_heartbeat_thread_beats_until_stopped(migrated_engine: Engine) -> None:
    store = SqlJobStore(migrated_engine)
    job = store.enqueue("t", REQUEST)
    store.claim("w", 1, lease_seconds=5)
    first = store.get(job.id).lease_expires_at
    held = HeldJobs(BatchPlanner())
    with LeaseKeeper(store, "w", held, lease_seconds=600, interval_s=0.01):
        held.claimed([store.get(job.id)], 0.0)
        time.sleep(0.2)  # a few ticks of the keeper's thread
    extended = store.get(job.id).lease_expires_at
    assert first is not None and extended is not None
    assert extended - first > timedelta(seconds=500)


def test_a_failing_store_does_not_kill_the_keeper(migrated_engine: Engine) -> None:
    class Broken(SqlJobStore):
        calls = 0

        def heartbeat(self, worker_id: str, job_ids: object, *, lease_seconds: float) -> None:
            Broken.calls += 1
            raise ConnectionError("database went away")

    store = SqlJobStore(migrated_engine)
    store.enqueue("t", REQUEST)
    held = HeldJobs(BatchPlanner())
    held.claimed(store.claim("w", 1, lease_seconds=5), 0.0)
    keeper = LeaseKeeper(Broken(migrated_engine), "w", held, lease_seconds=1)
    keeper.beat_once()
    keeper.beat_once()
    assert Broken.calls == 2
