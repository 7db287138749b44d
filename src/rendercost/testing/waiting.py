"""Waiting for something another thread or process does: poll with a deadline, fail naming what."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from rendercost.domain.jobs import TERMINAL_STATES, Job, JobState

T = TypeVar("T")
J = TypeVar("J", Job, Mapping[str, Any])  # a job from a store, or a job's JSON from the API


def wait_until(
    probe: Callable[[], T | None], *, what: str, timeout_s: float = 20.0, interval_s: float = 0.02
) -> T:
    """Call ``probe`` every ``interval_s`` until it returns a truthy value, and return that value.

    After ``timeout_s`` raise ``AssertionError("timed out after N s waiting for WHAT")``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def wait_for_job(
    read: Callable[[], J],
    *,
    what: str = "the job",
    states: Collection[JobState] = TERMINAL_STATES,
    timeout_s: float = 20.0,
    interval_s: float = 0.02,
) -> J:
    """Re-read a job with ``read`` until its state is one of ``states`` (default: finished); return it.

    ``read`` returns a ``Job`` (e.g. ``lambda: store.get(job_id)``) or the API's JSON for one (its
    ``"state"`` key). On timeout the ``AssertionError`` names ``what``, the states and the last state.
    """
    last: list[J] = []

    def settled() -> J | None:
        job = read()
        last[:] = [job]
        return job if _state(job) in states else None

    wanted = " or ".join(sorted(str(state) for state in states))
    try:
        return wait_until(settled, what=f"{what} to be {wanted}", timeout_s=timeout_s, interval_s=interval_s)
    except AssertionError as exc:
        seen = _state(last[0]) if last else "never read"
        raise AssertionError(f"{exc} (last state: {seen})") from None


def _state(job: Job | Mapping[str, Any]) -> JobState:
    return job.state if isinstance(job, Job) else JobState(job["state"])
