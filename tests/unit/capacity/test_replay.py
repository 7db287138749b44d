"""The replay on hand-sized workloads whose waits, batches and sessions can be worked out on paper."""

from __future__ import annotations

import pytest

from rendercost.capacity.replay import Fleet, ReplayJobs, replay


def jobs(
    at: list[float],
    *,
    shape: list[int] | None = None,
    images: list[int] | None = None,
    batch: list[bool] | None = None,
    hit: list[bool] | None = None,
    fixed: tuple[float, ...] = (1.0,),
    per_image: tuple[float, ...] = (0.0,),
) -> ReplayJobs:
    count = len(at)
    return ReplayJobs(
        at_s=tuple(at),
        shape=tuple(shape or [0] * count),
        images=tuple(images or [1] * count),
        batch_priority=tuple(batch or [False] * count),
        hit=tuple(hit or [False] * count),
        fixed_s=fixed,
        per_image_s=per_image,
    )


def test_one_worker_serves_jobs_in_order_and_each_waits_for_the_one_before() -> None:
    result = replay(jobs([0.0, 0.0, 0.0]), Fleet(workers=1, max_batch=1), span_s=10.0)
    assert result.wait_s == (0.0, 1.0, 2.0)
    assert result.latency_s == (1.0, 2.0, 3.0)
    assert result.busy_s == 3.0 and result.calls == 3
    assert [(s.start, s.end) for s in result.sessions] == [(0.0, 10.0)]


def test_compatible_jobs_share_a_call_and_incompatible_ones_do_not() -> None:
    work = jobs([0.0, 0.0, 0.0, 0.0], shape=[0, 1, 0, 0], fixed=(1.0, 1.0), per_image=(0.5, 0.5))
    result = replay(work, Fleet(workers=1, max_batch=4), span_s=1.0)
    # shape 0 (jobs 0, 2, 3) in one call of 1 + 3 * 0.5 s, then job 1 alone in 1.5 s
    assert result.calls == 2
    assert result.latency_s == (2.5, 4.0, 2.5, 2.5)
    assert result.shape_busy_s == (2.5, 1.5)


def test_a_call_that_is_not_full_waits_max_wait_for_more_work() -> None:
    result = replay(jobs([0.0, 0.3]), Fleet(workers=1, max_batch=2, max_wait_s=0.5), span_s=1.0)
    assert result.calls == 1
    assert result.wait_s[0] == pytest.approx(0.3)
    assert result.wait_s[1] == 0.0


def test_interactive_work_goes_before_batch_work_until_it_ages() -> None:
    work = jobs([0.0, 0.0, 0.1, 0.2], batch=[False, True, False, False])
    result = replay(work, Fleet(workers=1, max_batch=1, aging_s=100.0), span_s=1.0)
    assert result.latency_s[1] == pytest.approx(4.0)  # the batch job runs last
    aged = replay(work, Fleet(workers=1, max_batch=1, aging_s=0.5), span_s=1.0)
    assert aged.latency_s[1] == pytest.approx(2.0)  # aged by the time the first call ends


def test_cache_hits_never_queue() -> None:
    result = replay(jobs([0.0, 0.0], hit=[False, True]), Fleet(workers=1, max_batch=1), span_s=1.0)
    assert result.calls == 1 and result.latency_s == (1.0, 0.0)


def test_autoscale_starts_cold_workers_on_depth_and_removes_them_after_the_idle_tail() -> None:
    fleet = Fleet(
        autoscale=True, min_workers=0, max_workers=2, jobs_per_worker=1, cold_start_s=5.0, idle_tail_s=10.0,
        max_batch=1,
    )  # fmt: skip
    result = replay(jobs([0.0, 0.0]), fleet, span_s=1.0)
    assert result.peak_workers == 2
    assert result.wait_s == (5.0, 5.0)
    assert sorted((s.start, s.end, s.cold_s) for s in result.sessions) == [(0.0, 16.0, 5.0), (0.0, 16.0, 5.0)]


def test_a_spot_interruption_loses_the_running_call_and_the_work_is_done_again() -> None:
    fleet = Fleet(workers=1, max_batch=1, interruptions_per_hour=3600.0 * 10, replacement_s=1.0, seed=3)
    result = replay(jobs([0.0], fixed=(1.0,)), fleet, span_s=0.5)
    assert result.interruptions >= 1
    assert result.wasted_s > 0
    assert result.calls == 1 and result.busy_s == 1.0  # the job still completes once
    assert result.latency_s[0] > 1.0


def test_the_replay_is_deterministic() -> None:
    work = jobs([i * 0.1 for i in range(200)], shape=[i % 3 for i in range(200)], fixed=(1.0, 2.0, 0.5),
                per_image=(0.1, 0.1, 0.1))  # fmt: skip
    fleet = Fleet(workers=3, max_batch=4, max_wait_s=0.2, interruptions_per_hour=50.0, seed=9)
    assert replay(work, fleet, span_s=30.0) == replay(work, fleet, span_s=30.0)
