"""BatchPlanner, exercised the way vLLM tests its scheduler: add jobs, plan, settle, plan again."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from rendercost.batching.planner import BatchPlanner, PlannableJob
from rendercost.batching.policies import Fifo, PriorityWithAging, create_policy
from rendercost.domain.batch import BatchPlan
from rendercost.domain.specs import LoraRef, Priority, RenderSpec

BASE = RenderSpec(prompt="a red fox", preset="lightning", width=64, height=64)


def job(
    job_id: str,
    n: int = 1,
    *,
    spec: RenderSpec = BASE,
    priority: Priority = Priority.INTERACTIVE,
    submitted_at: float = 0.0,
) -> PlannableJob:
    specs = tuple(replace(spec, seed=spec.seed + i) for i in range(n))
    return PlannableJob(job_id=job_id, specs=specs, priority=priority, submitted_at=submitted_at)


def planner(max_batch_size: int = 4, max_wait_ms: float = 100.0, aging_seconds: float = 30.0) -> BatchPlanner:
    ids = (f"b{i}" for i in itertools.count())
    return BatchPlanner(
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        policy=PriorityWithAging(aging_seconds),
        new_batch_id=lambda: next(ids),
    )


def items(plan: BatchPlan | None) -> list[tuple[str, int]]:
    assert plan is not None
    return [(item.job_id, item.image_index) for item in plan.items]


def run_now(p: BatchPlanner, now: float = 0.0) -> BatchPlan:
    decision = p.plan(now, flush=True)
    assert decision.plan is not None
    return decision.plan


def test_empty_planner_is_idle() -> None:
    decision = planner().plan(0.0)
    assert decision.idle
    assert decision.plan is None


def test_full_batch_runs_at_once_in_queue_order() -> None:
    p = planner()
    for name in "abcde":
        p.add(job(name), now=0.0)
    decision = p.plan(0.0)
    assert items(decision.plan) == [("a", 0), ("b", 0), ("c", 0), ("d", 0)]
    assert p.waiting_images == 1


def test_partial_batch_waits_until_deadline_then_runs() -> None:
    p = planner(max_wait_ms=100)
    p.add(job("a"), now=10.0)
    decision = p.plan(10.05)
    assert decision.plan is None
    assert decision.wait_until == pytest.approx(10.1)
    p.add(job("b"), now=10.06)
    assert p.plan(10.09).plan is None  # still before the oldest image's deadline
    late = p.plan(10.1)
    assert items(late.plan) == [("a", 0), ("b", 0)]


def test_flush_runs_a_partial_batch_without_waiting() -> None:
    p = planner()
    p.add(job("a"), now=0.0)
    assert items(p.plan(0.0, flush=True).plan) == [("a", 0)]


def test_job_larger_than_max_splits_across_consecutive_batches() -> None:
    p = planner(max_batch_size=4)
    p.add(job("big", n=6), now=0.0)
    p.add(job("small"), now=0.0)
    first = run_now(p)
    assert items(first) == [("big", i) for i in range(4)]
    assert p.finish(first.batch_id) == []  # big is not complete yet
    second = run_now(p)
    assert items(second) == [("big", 4), ("big", 5), ("small", 0)]
    assert p.finish(second.batch_id) == ["big", "small"]
    assert p.job_ids == []


def test_incompatible_job_is_set_aside_and_keeps_its_place() -> None:
    p = planner()
    wide = replace(BASE, width=128)
    p.add(job("a"), now=0.0)
    p.add(job("w1", spec=wide), now=0.0)
    p.add(job("b"), now=0.0)
    p.add(job("w2", spec=wide), now=0.0)
    p.add(job("c"), now=0.0)
    first = run_now(p)
    assert items(first) == [("a", 0), ("b", 0), ("c", 0)]
    assert p.finish(first.batch_id) == ["a", "b", "c"]
    p.add(job("d"), now=1.0)  # arrives later; the set-aside wide jobs go first
    second = run_now(p, now=1.0)
    assert items(second) == [("w1", 0), ("w2", 0)]
    assert items(run_now(p, now=1.0)) == [("d", 0)]


@pytest.mark.parametrize(
    "other",
    [
        replace(BASE, model="other"),
        replace(BASE, preset="speed"),
        replace(BASE, height=128),
        replace(BASE, loras=(LoraRef("ink"),)),
        replace(BASE, loras=(LoraRef("", 0.5),)),
    ],
)
def test_specs_differing_in_batch_key_never_share_a_batch(other: RenderSpec) -> None:
    p = planner()
    p.add(job("a"), now=0.0)
    p.add(job("x", spec=other), now=0.0)
    assert items(run_now(p)) == [("a", 0)]
    assert items(run_now(p)) == [("x", 0)]


def test_prompt_and_seed_differences_still_batch() -> None:
    p = planner()
    p.add(job("a"), now=0.0)
    p.add(job("b", spec=replace(BASE, prompt="a blue heron", seed=99, negative_prompt="blur")), now=0.0)
    assert items(run_now(p)) == [("a", 0), ("b", 0)]


def test_interactive_is_planned_before_older_batch_work() -> None:
    p = planner(max_batch_size=2)
    p.add(job("bulk1", priority=Priority.BATCH, submitted_at=0.0), now=1.0)
    p.add(job("bulk2", priority=Priority.BATCH, submitted_at=0.0), now=1.0)
    p.add(job("person", submitted_at=1.0), now=1.0)
    assert items(run_now(p, now=1.0)) == [("person", 0), ("bulk1", 0)]


def test_aged_batch_work_is_planned_as_interactive() -> None:
    p = planner(max_batch_size=1, aging_seconds=30.0)
    p.add(job("bulk", priority=Priority.BATCH, submitted_at=0.0), now=0.0)
    p.add(job("person", submitted_at=20.0), now=20.0)
    assert items(run_now(p, now=20.0)) == [("person", 0)]  # bulk is 20 s old: not aged yet
    p.add(job("person2", submitted_at=31.0), now=31.0)
    # bulk is now 31 s old: it ranks as interactive and, being older, goes first.
    assert items(run_now(p, now=31.0)) == [("bulk", 0)]
    assert items(run_now(p, now=31.0)) == [("person2", 0)]


def test_batch_work_is_not_starved_by_a_stream_of_interactive_jobs() -> None:
    p = planner(max_batch_size=1, aging_seconds=5.0)
    p.add(job("bulk", priority=Priority.BATCH, submitted_at=0.0), now=0.0)
    ran: list[str] = []
    for second in range(10):
        p.add(job(f"i{second}", submitted_at=float(second)), now=float(second))
        plan = run_now(p, now=float(second))
        ran.append(plan.items[0].job_id)
        p.finish(plan.batch_id)
    assert "bulk" in ran
    assert ran.index("bulk") <= 6


def test_fill_uses_only_what_is_compatible_with_the_head() -> None:
    p = planner(max_batch_size=4)
    p.add(job("a", n=3), now=0.0)
    assert p.wanted(0.0) == 1
    p.add(job("w", spec=replace(BASE, width=128)), now=0.0)
    assert p.wanted(0.0) == 1  # the wide job does not help fill a's batch
    p.add(job("b", n=2), now=0.0)
    assert p.wanted(0.0) == 0
    assert items(p.plan(0.0).plan) == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]


def test_failed_batch_drops_its_jobs_including_their_waiting_images() -> None:
    p = planner(max_batch_size=2)
    p.add(job("a", n=3), now=0.0)
    p.add(job("b"), now=0.0)
    first = run_now(p)
    assert items(first) == [("a", 0), ("a", 1)]
    assert p.fail(first.batch_id) == ["a"]
    assert items(run_now(p)) == [("b", 0)]
    assert p.job_ids == ["b"]


def test_dropped_job_in_flight_is_not_reported_complete() -> None:
    p = planner()
    p.add(job("a"), now=0.0)
    p.add(job("b"), now=0.0)
    plan = run_now(p)
    p.drop("a")
    assert p.finish(plan.batch_id) == ["b"]


def test_take_unstarted_returns_only_jobs_with_nothing_planned() -> None:
    p = planner(max_batch_size=2)
    p.add(job("a", n=3), now=0.0)
    p.add(job("b"), now=0.0)
    p.add(job("c"), now=0.0)
    run_now(p)  # a0, a1
    assert p.take_unstarted() == ["b", "c"]
    assert p.job_ids == ["a"]
    assert items(run_now(p)) == [("a", 2)]


def test_adding_a_job_twice_is_refused() -> None:
    p = planner()
    p.add(job("a"), now=0.0)
    with pytest.raises(ValueError, match="already"):
        p.add(job("a"), now=0.0)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        BatchPlanner(max_batch_size=0)
    with pytest.raises(ValueError):
        BatchPlanner(max_wait_ms=-1)


def test_policy_factory() -> None:
    assert isinstance(create_policy("fifo", aging_seconds=1), Fifo)
    assert create_policy("priority", aging_seconds=7) == PriorityWithAging(7)
    with pytest.raises(ValueError, match="choose one of"):
        create_policy("lottery", aging_seconds=1)


def test_fifo_policy_ignores_priority() -> None:
    p = BatchPlanner(max_batch_size=1, policy=Fifo())
    p.add(job("bulk", priority=Priority.BATCH, submitted_at=0.0), now=0.0)
    p.add(job("person", submitted_at=1.0), now=1.0)
    assert items(run_now(p, now=1.0)) == [("bulk", 0)]
