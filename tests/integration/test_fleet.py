"""The fleet on loopback: 2 API servers and 3 worker processes on one PostgreSQL, one Redis and a moto
S3 bucket, rendering on the tiny model.

200 jobs from 4 tenants go in through both servers, a quarter of them with a webhook to a loopback
receiver on the ``webhook_allowed_hosts`` allowlist. Once rendering is under way one worker is
SIGKILLed (its leases run out and others take its jobs) and another gets SIGTERM (drain time 0: its
batch is cut short and released, its device time booked as ``interrupted``); one replacement starts.
Then: every job succeeded exactly once; the ledger is the receipts plus the interrupted lines, per
tenant, exactly; every webhook event arrived exactly once with a valid Standard Webhooks signature
(under the deployment secret both servers read from the database); every image is fetchable from
either server, byte-identical; and a per-key limit of 30 requests a minute holds across both servers:
45 rapid requests alternating between them get exactly 30 answers and 15 refusals.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from rendercost.auth.keys import KeyStore
from rendercost.auth.signing import SigningSecrets
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.domain.costs import Stage
from rendercost.domain.jobs import JobState
from rendercost.ledger.ledger import Ledger
from rendercost.queue.sql_store import SqlJobStore
from rendercost.testing.waiting import wait_until
from tests.fixtures.databases import _create_pg_database
from tests.fixtures.s3 import S3Bucket
from tests.integration.fleet_helpers import (
    KEY_LIMIT_PER_MINUTE,
    Delivery,
    KeyPool,
    Processes,
    fleet_config,
    webhook_receiver,
)
from tests.integration.worker_helpers import child_env

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TENANTS = ["acme", "globex", "initech", "umbrella"]
JOBS = 200
WEBHOOK_EVERY = 4  # one job in four asks for a webhook


def test_a_fleet_renders_every_job_once_and_bills_it_once(
    postgres_server: str, redis_url: str, s3_bucket: S3Bucket, tiny_model_dir: Path, tmp_path: Path
) -> None:
    database_url = next(_create_pg_database(postgres_server))
    engine = create_db_engine(database_url)
    migrate(engine)
    store, ledger = SqlJobStore(engine), Ledger(engine)
    keys = KeyPool(KeyStore(engine), TENANTS, per_tenant=12)  # keys exist: no server makes an admin key
    config = fleet_config(
        tmp_path / "fleet.toml",
        model_dir=tiny_model_dir,
        database_url=database_url,
        redis_url=redis_url,
        bucket=s3_bucket.name,
    )
    fleet = Processes(child_env(tmp_path), config, tmp_path)
    try:
        with webhook_receiver() as receiver:
            receiver.secret = SigningSecrets(engine).ensure()  # the deployment's, as both servers read it
            workers = [fleet.worker(f"worker-{i}") for i in range(3)]
            servers = [fleet.api_server("api-a"), fleet.api_server("api-b")]
            clients = [httpx.Client(base_url=url, timeout=60) for url in servers]
            job_ids, hooked = submit(clients, keys, receiver.url)

            wait_until(
                lambda: succeeded(store) >= 20, what="rendering under way", timeout_s=600, interval_s=0.1
            )
            workers[0].send_signal(signal.SIGKILL)
            wait_until(
                lambda: running_on(store, "worker-1"),
                what="worker-1 mid-batch",
                timeout_s=300,
                interval_s=0.02,
            )
            workers[1].send_signal(signal.SIGTERM)
            fleet.worker("worker-3")
            assert workers[1].wait(timeout=120) == 0
            wait_until(
                lambda: succeeded(store) == JOBS, what="every job succeeded", timeout_s=900, interval_s=0.2
            )
            wait_until(lambda: len(receiver.deliveries) >= len(hooked), what="every webhook", timeout_s=120)
            time.sleep(2.0)  # a second delivery of any event would arrive in this time

            check_jobs_and_ledger(store, ledger, job_ids)
            check_webhooks(receiver.deliveries, hooked)
            check_images(store, clients, keys, job_ids)
            check_rate_limit_across_servers(clients, KeyStore(engine))
    finally:
        fleet.stop_all()
        engine.dispose()


def submit(clients: list[httpx.Client], keys: KeyPool, hook_url: str) -> tuple[dict[str, str], set[str]]:
    """POST the jobs from 8 threads, alternating servers and tenants, so they arrive faster than one
    client could send them; (job id -> tenant, the ids with a webhook)."""

    def one(i: int) -> tuple[str, str, bool]:
        tenant = TENANTS[i % len(TENANTS)]
        body: dict[str, object] = {"prompt": f"fleet {i}", "preset": "lightning", "size": "64x64", "seed": i}
        body["priority"] = "batch" if i % 2 else "interactive"
        hooked = i % WEBHOOK_EVERY == 0
        if hooked:
            body["webhook_url"] = hook_url
        answer = clients[i % 2].post("/v1/jobs", json=body, headers=keys.headers(tenant))
        assert answer.status_code == 202, answer.text
        return answer.json()["id"], tenant, hooked

    with ThreadPoolExecutor(max_workers=8) as pool:
        submitted = list(pool.map(one, range(JOBS)))
    return {job_id: tenant for job_id, tenant, _ in submitted}, {job_id for job_id, _, h in submitted if h}


def succeeded(store: SqlJobStore) -> int:
    return len(store.list_jobs(states=[JobState.SUCCEEDED], limit=1000))


def running_on(store: SqlJobStore, worker: str) -> bool:
    return any(job.lease_owner == worker for job in store.list_jobs(states=[JobState.RUNNING], limit=1000))


def check_jobs_and_ledger(store: SqlJobStore, ledger: Ledger, job_ids: dict[str, str]) -> None:
    interrupted_cost: dict[str, Decimal] = dict.fromkeys(TENANTS, Decimal(0))
    interrupted_lines = 0
    for job_id, tenant in job_ids.items():
        job = store.get(job_id)
        assert job.state is JobState.SUCCEEDED and job.tenant == tenant
        assert job.result is not None and len(job.result.images) == 1
        lines = ledger.lines_for_job(job_id)
        billed = [line for line in lines if line.stage != Stage.INTERRUPTED]
        receipt_lines = [line for image in job.result.images for line in image.receipt.lines]
        assert sorted((line.stage, line.cost) for line in billed) == sorted(
            (line.stage, line.cost) for line in receipt_lines
        ), f"job {job_id} is not billed exactly its receipt"
        for line in lines:
            if line.stage == Stage.INTERRUPTED:
                assert line.device_seconds > 0
                interrupted_cost[tenant] += line.cost
                interrupted_lines += 1
    for tenant in TENANTS:
        mine = [store.get(j) for j, t in job_ids.items() if t == tenant]
        total = sum((job.result.cost for job in mine if job.result is not None), Decimal(0))
        assert ledger.total(tenant=tenant) == total + interrupted_cost[tenant]
    print(f"fleet: {interrupted_lines} interrupted lines")


def check_webhooks(deliveries: list[Delivery], hooked: set[str]) -> None:
    by_job = Counter(delivery.job_id for delivery in deliveries)
    assert set(by_job) == hooked
    assert all(count == 1 for count in by_job.values()), {j: c for j, c in by_job.items() if c > 1}
    assert len({delivery.webhook_id for delivery in deliveries}) == len(deliveries)
    assert all(delivery.signed for delivery in deliveries), "a webhook without a valid signature"
    assert {delivery.state for delivery in deliveries} == {"succeeded"}


def check_images(
    store: SqlJobStore, clients: list[httpx.Client], keys: KeyPool, job_ids: dict[str, str]
) -> None:
    for job_id, tenant in job_ids.items():
        job = store.get(job_id)
        assert job.result is not None
        image = job.result.images[0]
        bodies = []
        for client in clients:
            fetched = client.get(
                f"/v1/images/{job_id}-0", headers={**keys.headers(tenant), "Accept": "image/png"}
            )
            assert fetched.status_code == 200, fetched.text
            bodies.append(fetched.content)
        assert bodies[0] == bodies[1] and len(bodies[0]) == image.size_bytes


def check_rate_limit_across_servers(clients: list[httpx.Client], keys: KeyStore) -> None:
    headers = {"Authorization": f"Bearer {keys.create('limited').secret}"}
    statuses = Counter(clients[i % 2].get("/v1/queue", headers=headers).status_code for i in range(45))
    assert statuses == {200: KEY_LIMIT_PER_MINUTE, 429: 45 - KEY_LIMIT_PER_MINUTE}
