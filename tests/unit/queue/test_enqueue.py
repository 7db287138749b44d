"""Enqueue, read and list: idempotency keys, tenant scoping, JSON payloads."""

from __future__ import annotations

import threading
from datetime import UTC

import pytest
from sqlalchemy import Engine, select, update

from rendercost.db.clock import ManualClock
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import Priority
from rendercost.errors import InvalidRequest, NotFound
from rendercost.queue.sql_store import SqlJobStore
from rendercost.queue.tables import jobs
from tests.unit.queue.conftest import LEASE_S, make_request


def test_enqueue_stores_the_request_and_reads_it_back(store: SqlJobStore, clock: ManualClock) -> None:
    request = make_request(priority=Priority.BATCH, n=2)
    job = store.enqueue(
        "acme", request, webhook_url="http://127.0.0.1:9/hook", tags={"team": "ads"}, idempotency_key="k1"
    )
    assert job.state is JobState.QUEUED
    assert job.request == request
    assert job.priority is Priority.BATCH
    assert (job.attempts, job.max_attempts) == (0, 3)
    assert job.created_at == clock() and job.created_at.tzinfo is not None
    assert job.created_at.utcoffset() == UTC.utcoffset(None)
    assert job.tags == {"team": "ads"}
    assert job.webhook_url == "http://127.0.0.1:9/hook"
    assert store.get(job.id) == job


def test_payload_is_versioned_json(store: SqlJobStore, migrated_engine: Engine) -> None:
    job = store.enqueue("acme", make_request("a lighthouse"))
    with migrated_engine.connect() as conn:
        payload = conn.execute(select(jobs.c.payload).where(jobs.c.id == job.id)).scalar_one()
    assert payload["schema_version"] == 2
    assert payload["request"]["spec"]["prompt"] == "a lighthouse"


def test_unknown_payload_version_is_refused(store: SqlJobStore, migrated_engine: Engine) -> None:
    job = store.enqueue("acme", make_request())
    with migrated_engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(payload={"schema_version": 99}))
    with pytest.raises(ValueError, match="schema_version 99"):
        store.get(job.id)


def test_same_tenant_and_key_return_the_same_job(store: SqlJobStore) -> None:
    first = store.enqueue("acme", make_request("one"), idempotency_key="order-1")
    again = store.enqueue("acme", make_request("something else"), idempotency_key="order-1")
    other_tenant = store.enqueue("globex", make_request("one"), idempotency_key="order-1")
    no_key = [store.enqueue("acme", make_request()) for _ in range(2)]
    assert again == first
    assert other_tenant.id != first.id
    assert no_key[0].id != no_key[1].id
    assert len(store.list_jobs(tenant="acme")) == 3


def test_concurrent_enqueues_with_one_key_make_one_job(store: SqlJobStore) -> None:
    threads_n = 6
    barrier = threading.Barrier(threads_n)
    ids: list[str] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            barrier.wait()
            ids.append(store.enqueue("acme", make_request(), idempotency_key="race").id)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(ids) == threads_n
    assert len(set(ids)) == 1
    assert len(store.list_jobs(tenant="acme")) == 1


def test_bad_enqueue_input_is_refused(store: SqlJobStore) -> None:
    with pytest.raises(InvalidRequest) as too_long:
        store.enqueue("acme", make_request(), idempotency_key="k" * 256)
    assert too_long.value.param == "idempotency_key"
    with pytest.raises(InvalidRequest):
        store.enqueue("acme", make_request(), idempotency_key="")
    with pytest.raises(InvalidRequest):
        store.enqueue("acme", make_request(), tags={"n": 1})  # type: ignore[dict-item]
    assert store.list_jobs() == []


def test_get_is_scoped_to_the_tenant(store: SqlJobStore) -> None:
    job = store.enqueue("acme", make_request())
    assert store.get(job.id, tenant="acme").id == job.id
    with pytest.raises(NotFound):
        store.get(job.id, tenant="globex")
    with pytest.raises(NotFound):
        store.get("job_missing")


def test_list_jobs_newest_first_with_filters_and_paging(store: SqlJobStore, clock: ManualClock) -> None:
    created = []
    for i in range(4):
        created.append(store.enqueue("acme", make_request(f"p{i}")))
        clock.advance(1)
    store.enqueue("globex", make_request())
    store.claim("w1", 1, lease_seconds=LEASE_S)  # the oldest acme job starts running

    acme = store.list_jobs(tenant="acme")
    assert [job.id for job in acme] == [job.id for job in reversed(created)]
    assert len(store.list_jobs()) == 5
    running = store.list_jobs(tenant="acme", states=[JobState.RUNNING])
    assert [job.id for job in running] == [created[0].id]
    page = store.list_jobs(tenant="acme", limit=2)
    rest = store.list_jobs(tenant="acme", before=page[-1].created_at)
    assert [job.id for job in page + rest] == [job.id for job in acme]
    with pytest.raises(InvalidRequest):
        store.list_jobs(limit=0)


def test_paging_by_job_never_skips_jobs_created_at_the_same_time(store: SqlJobStore) -> None:
    same_time = [store.enqueue("acme", make_request(f"p{i}")) for i in range(5)]  # the clock stands still
    store.enqueue("globex", make_request())
    assert len({job.created_at for job in same_time}) == 1
    seen: list[str] = []
    page = store.list_jobs(tenant="acme", limit=2)
    while page:
        seen += [job.id for job in page]
        page = store.list_jobs(tenant="acme", limit=2, older_than=page[-1].id)
    assert seen == [job.id for job in reversed(same_time)]
    globex = store.list_jobs(tenant="globex")[0].id
    for foreign in (globex, "job_missing"):
        with pytest.raises(InvalidRequest, match="to page from"):
            store.list_jobs(tenant="acme", older_than=foreign)
