"""Await a job's end without blocking the loop: woken by ``JobEvents`` (in-process workers, which hand
over the finished job), with a fallback poll of the store that backs off from ``poll_s`` to
``MAX_POLL_S`` (workers in other processes)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from rendercost.api.deps import ApiServices, blocking
from rendercost.domain.jobs import TERMINAL_STATES, Job
from rendercost.errors import RenderTimeout

MAX_POLL_S = 0.5


async def wait_for_job(svc: ApiServices, job_id: str, tenant: str, *, timeout_s: float, poll_s: float) -> Job:
    """The job once terminal; ``RenderTimeout`` (504) after ``timeout_s`` (the job goes on).

    A job just queued cannot be finished yet, so the first read waits for a wake-up (or ``poll_s``).
    """
    deadline = time.monotonic() + timeout_s
    delay = poll_s
    first = True
    while True:
        with svc.events.watch(job_id) as watch:
            if first:
                first = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.changed.wait(), timeout=min(delay, timeout_s))
            handed = watch.job
            if handed is not None and handed.tenant == tenant and handed.state in TERMINAL_STATES:
                return handed
            job = await blocking(lambda: svc.store.get(job_id, tenant=tenant))
            if job.state in TERMINAL_STATES:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RenderTimeout(
                    f"job {job_id} did not finish within {timeout_s:g} s; it is still {job.state}: "
                    f"poll GET /v1/jobs/{job_id}"
                )
            try:
                await asyncio.wait_for(watch.changed.wait(), timeout=min(delay, remaining))
            except TimeoutError:
                delay = min(delay * 2, MAX_POLL_S)
