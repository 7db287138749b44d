"""Biller.complete()/answer(): success, lines and artifact rows in one transaction, billed exactly once."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from rendercost.artifacts.protocol import ArtifactRef
from rendercost.artifacts.tables import artifacts
from rendercost.db.clock import ManualClock
from rendercost.domain.costs import Attribution
from rendercost.domain.jobs import JobState
from rendercost.errors import Conflict, NotFound
from rendercost.ledger.billing import Biller, Completion
from rendercost.ledger.ledger import Ledger
from rendercost.ledger.tables import cost_lines
from rendercost.queue.sql_store import SqlJobStore
from tests.unit.queue.conftest import LEASE_S, make_lines, make_request, make_result


def _ref(index: int) -> ArtifactRef:
    digest = f"{index:064x}"
    return ArtifactRef(
        key=f"{digest[:2]}/{digest}.png", size_bytes=1000 + index, sha256=digest, media_type="image/png"
    )


def _artifact_rows(engine: Engine, job_id: str) -> list[tuple[str, int, int, str]]:
    query = (
        select(artifacts.c.key, artifacts.c.image_index, artifacts.c.size_bytes, artifacts.c.tenant)
        .where(artifacts.c.job_id == job_id)
        .order_by(artifacts.c.image_index)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_complete_marks_success_and_writes_lines_and_artifacts(
    store: SqlJobStore, biller: Biller, ledger: Ledger, migrated_engine: Engine, clock: ManualClock
) -> None:
    job = store.enqueue("acme", make_request(n=2), tags={"team": "ads"})
    store.claim("w1", 1, lease_seconds=LEASE_S)
    clock.advance(3)
    lines = make_lines(job.id, n_images=2)
    result = make_result(2, lines=lines)
    done = biller.complete(job.id, "w1", result, artifacts=[(_ref(0), 0), (_ref(1), 1)])
    assert done.state is JobState.SUCCEEDED
    assert done.result == result
    assert done.finished_at == clock()
    assert done.progress == 1.0
    assert ledger.lines_for_job(job.id) == lines
    assert ledger.total(tenant="acme") == Decimal("0.0000012345") * 4
    c = cost_lines.c
    context = select(c.tenant, c.model, c.preset, c.request_class, c.tags, c.created_at).distinct()
    with migrated_engine.connect() as conn:
        rows = conn.execute(context).all()
    assert rows == [("acme", "default", "lightning", "interactive", {"team": "ads"}, clock())]
    assert _artifact_rows(migrated_engine, job.id) == [
        (_ref(0).key, 0, 1000, "acme"),
        (_ref(1).key, 1, 1001, "acme"),
    ]


def test_completing_twice_bills_once(
    store: SqlJobStore, biller: Biller, ledger: Ledger, migrated_engine: Engine
) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("w1", 1, lease_seconds=LEASE_S)
    first = biller.complete(
        job.id, "w1", make_result(device="first", lines=make_lines(job.id)), artifacts=[(_ref(0), 0)]
    )
    again = biller.complete(
        job.id,
        "w1",
        make_result(device="second", lines=make_lines(job.id, cost="9.0")),
        artifacts=[(_ref(0), 0)],
    )
    assert again == first
    assert ledger.count_lines(job_id=job.id) == 2
    assert ledger.total() == Decimal("0.0000024690")
    assert len(_artifact_rows(migrated_engine, job.id)) == 1


def test_a_rerun_after_a_crash_is_billed_once(
    store: SqlJobStore, biller: Biller, ledger: Ledger, migrated_engine: Engine, clock: ManualClock
) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("crashed", 1, lease_seconds=LEASE_S)
    with migrated_engine.begin() as conn:  # the crashed run's lines reached the ledger before it died
        ledger.insert_lines(conn, make_lines(job.id, cost="0.0000000007"), Attribution("acme", "m", "p"))
    clock.advance(LEASE_S + 1)
    assert store.requeue_expired() == 1
    store.claim("w2", 1, lease_seconds=LEASE_S)
    biller.complete(job.id, "w2", make_result(lines=make_lines(job.id)))
    assert ledger.count_lines() == 2
    assert ledger.total() == Decimal("0.0000000014")


def test_complete_after_the_lease_was_lost_is_a_conflict_and_writes_nothing(
    store: SqlJobStore, biller: Biller, ledger: Ledger, migrated_engine: Engine, clock: ManualClock
) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("slow", 1, lease_seconds=LEASE_S)
    clock.advance(LEASE_S + 1)
    store.requeue_expired()
    store.claim("fast", 1, lease_seconds=LEASE_S)
    with pytest.raises(Conflict) as lost:
        biller.complete(job.id, "slow", make_result(lines=make_lines(job.id)), artifacts=[(_ref(0), 0)])
    assert lost.value.code == "lease_lost"
    assert ledger.count_lines() == 0
    assert _artifact_rows(migrated_engine, job.id) == []
    running = store.get(job.id)
    assert running.state is JobState.RUNNING and running.lease_owner == "fast"


def test_a_bad_line_leaves_nothing_half_written(
    store: SqlJobStore, biller: Biller, ledger: Ledger, migrated_engine: Engine
) -> None:
    job = store.enqueue("acme", make_request())
    store.claim("w1", 1, lease_seconds=LEASE_S)
    lines = make_lines(job.id)
    lines[-1] = replace(lines[-1], cost=Decimal("0.00000000001"))  # finer than NUMERIC(20, 10)
    with pytest.raises(ValueError, match="decimal places"):
        biller.complete(job.id, "w1", make_result(lines=lines), artifacts=[(_ref(0), 0)])
    with pytest.raises(ValueError, match="cost lines of jobs"):
        biller.complete(job.id, "w1", make_result(lines=make_lines("job_other")))
    with pytest.raises(ValueError, match="image indexes"):
        biller.complete(job.id, "w1", make_result(), artifacts=[(_ref(1), 1)])
    assert store.get(job.id).state is JobState.RUNNING
    assert ledger.count_lines() == 0
    with migrated_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(artifacts)).scalar_one() == 0


def test_a_batch_completes_in_one_call_as_its_jobs_would_one_by_one(
    store: SqlJobStore, biller: Biller, ledger: Ledger, migrated_engine: Engine, clock: ManualClock
) -> None:
    jobs = [store.enqueue(tenant, make_request()) for tenant in ("acme", "acme", "globex")]
    store.claim("w1", 3, lease_seconds=LEASE_S)
    store.cancel(jobs[1].id, tenant="acme")  # cancelled while its batch ran: not ours to complete any more
    clock.advance(2)
    completions = [
        Completion(job.id, make_result(lines=make_lines(job.id)), ((_ref(i), 0),))
        for i, job in enumerate(jobs)
    ]

    outcomes = biller.complete_many("w1", completions)

    first, cancelled, third = outcomes
    assert isinstance(cancelled, Conflict) and store.get(jobs[1].id).state is JobState.CANCELLED
    assert [first.id, third.id] == [jobs[0].id, jobs[2].id]  # type: ignore[union-attr]
    assert all(store.get(job.id).state is JobState.SUCCEEDED for job in (jobs[0], jobs[2]))
    assert [ledger.count_lines(job_id=job.id) for job in jobs] == [2, 0, 2]
    assert ledger.total(tenant="acme") == ledger.total(tenant="globex") == Decimal("0.0000024690")
    assert [len(_artifact_rows(migrated_engine, job.id)) for job in jobs] == [1, 0, 1]
    assert biller.complete_many("w1", completions[::2]) == [first, third]  # again: nothing new
    assert ledger.count_lines() == 4


def test_a_batch_with_one_bad_job_writes_nothing_for_any(
    store: SqlJobStore, biller: Biller, ledger: Ledger
) -> None:
    good, bad = (store.enqueue("acme", make_request()) for _ in range(2))
    store.claim("w1", 2, lease_seconds=LEASE_S)
    lines = make_lines(bad.id)
    lines[-1] = replace(lines[-1], cost=Decimal("0.00000000001"))  # finer than NUMERIC(20, 10)
    completions = [
        Completion(good.id, make_result(lines=make_lines(good.id))),
        Completion(bad.id, make_result(lines=lines)),
    ]

    with pytest.raises(ValueError, match="decimal places"):
        biller.complete_many("w1", completions)

    assert [store.get(job.id).state for job in (good, bad)] == [JobState.RUNNING, JobState.RUNNING]
    assert ledger.count_lines() == 0


def test_complete_an_unknown_job(store: SqlJobStore, biller: Biller) -> None:
    with pytest.raises(NotFound):
        biller.complete("job_missing", "w1", make_result())


def test_an_answered_job_is_stored_succeeded_with_its_lines_and_never_queued(
    store: SqlJobStore, biller: Biller, ledger: Ledger
) -> None:
    job_id = "job_answered1"
    lines = make_lines(job_id, n_images=2, cost="0")
    refs = [(_ref(0), 0), (_ref(1), 1)]
    job = biller.answer(
        job_id, "acme", make_request(n=2), make_result(2, lines=lines), refs, tags={"api_key": "k1"}
    )
    assert job.id == job_id and job.state == JobState.SUCCEEDED and job.attempts == 0
    assert job.started_at == job.finished_at is not None and job.progress == 1.0
    assert store.depth() == {} and store.queue_position(job_id) is None
    assert store.claim("w1", 10, lease_seconds=LEASE_S) == []
    assert len(ledger.lines_for_job(job_id)) == len(lines)
    assert [row[1] for row in _artifact_rows(store.engine, job_id)] == [0, 1]


def test_an_answered_job_replayed_by_idempotency_key_writes_nothing(
    store: SqlJobStore, biller: Biller, ledger: Ledger
) -> None:
    queued = store.enqueue("acme", make_request(), idempotency_key="k-1")
    answered = biller.answer(
        "job_second", "acme", make_request(), make_result(lines=make_lines("job_second")),
        idempotency_key="k-1",
    )  # fmt: skip
    assert answered.id == queued.id and answered.state == JobState.QUEUED
    assert ledger.lines_for_job("job_second") == []


def test_answered_lines_of_another_job_are_refused_and_nothing_is_written(
    store: SqlJobStore, biller: Biller
) -> None:
    with pytest.raises(ValueError, match="cost lines of jobs"):
        biller.answer("job_a", "acme", make_request(), make_result(lines=make_lines("job_b")))
    with pytest.raises(NotFound):
        store.get("job_a")
