"""kill -9 a worker mid-batch: after a restart every job succeeds exactly once, billed exactly once.

A `rendercost worker` child renders 40 small jobs; once some have succeeded it is SIGKILLed. Its leases
(2 s, heartbeated while it lived) expire; a second worker in burst mode requeues them and finishes the
rest. The ledger must then hold one set of lines per job (images x stages, never two), and the artifact
folder no temp file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rendercost.artifacts.local import TEMP_PREFIX
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.domain.costs import DEVICE_STAGES
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.ledger.idle import IDLE_TENANT
from rendercost.ledger.ledger import Ledger
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.waiting import wait_until
from tests.integration.worker_helpers import POLL_S, RENDERCOST, child_env, run_burst_worker, write_config

pytestmark = [pytest.mark.slow, pytest.mark.integration]

JOBS = 40
LEASE_SECONDS = 2.0
LINES_PER_JOB = len(DEVICE_STAGES) + 1  # one image: each device stage + storage


def count(store: SqlJobStore, state: JobState) -> int:
    return len(store.list_jobs(states=[state], limit=1000))


def test_sigkill_mid_batch_then_restart_bills_each_job_once(
    migrated_engine: Engine, db_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    store = SqlJobStore(migrated_engine)
    spec = RenderSpec(prompt="crash test", preset="lightning", width=64, height=64)
    job_ids = [
        store.enqueue("t", RenderRequest(spec=replace(spec, seed=i), priority=Priority.BATCH)).id
        for i in range(JOBS)
    ]
    config = write_config(
        tmp_path / "rendercost.toml",
        data_dir=tmp_path / "data",
        model_dir=tiny_model_dir,
        database_url=db_url,
        lease_seconds=LEASE_SECONDS,
    )
    env = child_env(tmp_path)
    victim = subprocess.Popen(
        [RENDERCOST, "--config", str(config), "worker", "--worker-id", "victim"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: count(store, JobState.SUCCEEDED) >= 4,
            what="the first batch",
            timeout_s=600,
            interval_s=POLL_S,
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    succeeded_before = count(store, JobState.SUCCEEDED)
    assert succeeded_before < JOBS, "the worker finished before it could be killed; the test proved nothing"
    orphaned = store.list_jobs(states=[JobState.RUNNING], limit=1000)
    assert all(job.lease_owner == "victim" for job in orphaned)

    expiry = max((job.lease_expires_at for job in orphaned if job.lease_expires_at), default=None)
    if expiry is not None:  # wait out the dead worker's leases (at most LEASE_SECONDS)
        time.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 0.2)
    run_burst_worker(config, env)

    jobs = [store.get(job_id) for job_id in job_ids]
    assert [job.state for job in jobs] == [JobState.SUCCEEDED] * JOBS
    for job in jobs:
        assert Ledger(store.engine).count_lines(job_id=job.id) == LINES_PER_JOB
        assert job.result is not None and len(job.result.images) == 1
    # exactly one set of lines per job, nothing else billed to the tenant; the workers' idle time is
    # the machine's own lines (tenant IDLE_TENANT), not a job's
    assert {job.tenant for job in jobs} == {jobs[0].tenant}
    assert Ledger(store.engine).count_lines(tenant=jobs[0].tenant) == JOBS * LINES_PER_JOB
    assert Ledger(store.engine).count_lines(tenant=IDLE_TENANT) >= 1
    for job in (store.get(j.id) for j in orphaned):
        assert job.lease_owner == "rescuer"
        assert job.attempts == 2
    artifacts = tmp_path / "data" / "artifacts"
    assert list(artifacts.rglob(f"{TEMP_PREFIX}*")) == []
    for job in jobs:
        assert job.result is not None
        assert (artifacts / job.result.images[0].artifact_key).is_file()


def test_sigterm_drains_and_exits_cleanly(tiny_model_dir: Path, tmp_path: Path) -> None:
    """SIGTERM: the batch in hand finishes, nothing stays leased, the process exits 0."""
    url = f"sqlite:///{tmp_path / 'rendercost.db'}"
    config = write_config(
        tmp_path / "rendercost.toml",
        data_dir=tmp_path / "data",
        model_dir=tiny_model_dir,
        database_url=url,
        lease_seconds=30,
    )
    engine = create_db_engine(url)
    migrate(engine)
    store = SqlJobStore(engine)
    spec = RenderSpec(prompt="drain test", preset="lightning", width=64, height=64)
    for i in range(12):
        store.enqueue("t", RenderRequest(spec=replace(spec, seed=i), priority=Priority.BATCH))
    worker = subprocess.Popen(
        [RENDERCOST, "--config", str(config), "worker", "--worker-id", "draining"],
        env=child_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_until(
            lambda: count(store, JobState.SUCCEEDED) >= 1,
            what="a first job",
            timeout_s=600,
            interval_s=POLL_S,
        )
        worker.send_signal(signal.SIGTERM)
        stdout, _ = worker.communicate(timeout=300)
    finally:
        if worker.poll() is None:
            worker.kill()
        engine.dispose()
    assert worker.returncode == 0
    assert json.loads(stdout.strip().splitlines()[-1])["worker_id"] == "draining"
    assert count(store, JobState.RUNNING) == 0  # finished or given back
    for job in store.list_jobs(states=[JobState.QUEUED], limit=100):
        assert job.attempts == 0  # released jobs lost no attempt
    assert count(store, JobState.SUCCEEDED) + count(store, JobState.QUEUED) == 12
