"""`rendercost worker` as a process: SIGTERM mid-batch on a spot worker, and `--devices cpu,cpu`.

1. A worker renders one long job (256 px, 60 steps); once its progress shows the batch is mid-denoise
   it gets SIGTERM with ``worker_drain_seconds = 0``: the batch is cut short, the job goes back to the
   queue with no attempt lost, and the device time it had used is one ``interrupted`` line. A second
   worker renders it: it succeeds once; the ledger is its receipt plus the interrupted line, exactly.
2. `--devices cpu,cpu --metrics-bind 127.0.0.1:P` supervises two workers (health and metrics on P and
   P+1); one is SIGKILLed and comes back; the queue is rendered; SIGTERM stops everything, exit 0.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import Engine

from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.domain.costs import DEVICE_STAGES, Stage
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.ledger.ledger import Ledger
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.waiting import wait_until
from tests.integration.worker_helpers import POLL_S, RENDERCOST, child_env, run_burst_worker, write_config

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def free_port_pair() -> int:
    """A port P with P and P+1 both free (a moment ago)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports")


def sqlite_store(tmp_path: Path) -> tuple[str, Engine, SqlJobStore]:
    url = f"sqlite:///{tmp_path / 'rendercost.db'}"
    engine = create_db_engine(url)
    migrate(engine)
    return url, engine, SqlJobStore(engine)


def config_for(tmp_path: Path, tiny_model_dir: Path, url: str, extra: str = "") -> Path:
    config = write_config(
        tmp_path / "rendercost.toml",
        data_dir=tmp_path / "data",
        model_dir=tiny_model_dir,
        database_url=url,
        lease_seconds=30,
    )
    text = config.read_text()
    head, _, models = text.partition("\n[models.default]")
    config.write_text(f"{head}{extra}\n[models.default]{models}")
    return config


def test_sigterm_mid_batch_books_the_lost_device_time_and_the_job_succeeds_once(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    url, engine, store = sqlite_store(tmp_path)
    spec = RenderSpec(prompt="a long render", preset="quality", width=256, height=256, seed=3)
    job_id = store.enqueue("acme", RenderRequest(spec=spec, priority=Priority.BATCH)).id
    config = config_for(tmp_path, tiny_model_dir, url, 'worker_drain_seconds = 0\npricing_model = "spot"\n')
    env = child_env(tmp_path)
    spot = subprocess.Popen(
        [RENDERCOST, "--config", str(config), "worker", "--worker-id", "spot", "--priorities", "batch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: store.get(job_id).progress > 0, what="the batch mid-denoise", timeout_s=600)
        spot.send_signal(signal.SIGTERM)
        stdout, stderr = spot.communicate(timeout=120)
    finally:
        if spot.poll() is None:
            spot.kill()
    assert spot.returncode == 0, stderr[-2000:]
    assert json.loads(stdout.strip().splitlines()[-1])["jobs_succeeded"] == 0
    released = store.get(job_id)
    assert released.state is JobState.QUEUED and released.attempts == 0
    ledger = Ledger(engine)
    (interrupted,) = ledger.lines_for_job(job_id)
    assert interrupted.stage is Stage.INTERRUPTED and interrupted.device_seconds > 0
    assert interrupted.cost > 0 and str(interrupted.pricing_model) == "spot"

    run_burst_worker(config, env)
    done = store.get(job_id)
    assert done.state is JobState.SUCCEEDED and done.attempts == 1 and done.result is not None
    lines = ledger.lines_for_job(job_id)
    assert len(lines) == len(DEVICE_STAGES) + 1 + 1  # its receipt once, plus the interruption
    assert ledger.total(tenant="acme") == done.result.cost + interrupted.cost
    engine.dispose()


def children_of(process: subprocess.Popen[bytes]) -> set[int]:
    return {child.pid for child in psutil.Process(process.pid).children()}


def test_devices_supervises_one_worker_per_device_and_restarts_a_dead_one(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    url, engine, store = sqlite_store(tmp_path)
    config = config_for(tmp_path, tiny_model_dir, url)
    port = free_port_pair()
    supervisor = subprocess.Popen(
        [
            RENDERCOST,
            "--config",
            str(config),
            "worker",
            "--devices",
            "cpu,cpu",
            "--metrics-bind",
            f"127.0.0.1:{port}",
        ],
        env=child_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for p in (port, port + 1):
            wait_until(lambda p=p: _healthy(p), what=f"a healthy worker on port {p}", timeout_s=300)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert (
            'rendercost_build_info{component="worker"' in scraped and "process_cpu_seconds_total" in scraped
        )
        first = children_of(supervisor)
        assert len(first) == 2
        victim = min(first)
        psutil.Process(victim).send_signal(signal.SIGKILL)
        wait_until(
            lambda: len(children_of(supervisor) - first) == 1 and victim not in children_of(supervisor),
            what="the killed worker restarted",
            timeout_s=60,
            interval_s=POLL_S,
        )
        spec = RenderSpec(prompt="supervised", preset="lightning", width=64, height=64)
        ids = [store.enqueue("t", RenderRequest(spec=replace(spec, seed=i))).id for i in range(6)]
        wait_until(
            lambda: all(store.get(i).state is JobState.SUCCEEDED for i in ids),
            what="the queue rendered",
            timeout_s=300,
            interval_s=POLL_S,
        )
        workers = children_of(supervisor)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=120) == 0
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in workers)
        assert {store.get(i).lease_owner for i in ids} <= {
            job.lease_owner for job in store.list_jobs(limit=100)
        }
    finally:
        if supervisor.poll() is None:
            orphans = psutil.Process(supervisor.pid).children()
            supervisor.kill()
            for child in orphans:
                child.kill()
        engine.dispose()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
