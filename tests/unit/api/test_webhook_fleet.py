"""Webhooks across a fleet: the Standard Webhooks signature, the stored retry schedule on a manual clock,
leases between dispatchers, the admin redeliver endpoint, and the deployment secret in the database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
from datetime import UTC, datetime, timedelta

import httpx
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine, text

from rendercost.api.app import resolve_webhook_secret
from rendercost.api.threaded_server import uvicorn_thread
from rendercost.api.views import webhook_payload
from rendercost.api.webhook_outbox import Delivery, RetrySchedule, WebhookOutbox
from rendercost.api.webhooks import SIGNATURE_HEADER, WebhookDispatcher, verify_signature
from rendercost.auth.keys import KeyStore
from rendercost.auth.signing import standard_secret, standard_signature, verify_standard
from rendercost.db.clock import ManualClock
from rendercost.db.engine import create_db_engine
from rendercost.db.metadata import metadata
from rendercost.db.migrate import load_table_modules, migrate
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.observability.metrics import Metrics
from rendercost.queue.sql_store import SqlJobStore
from rendercost.settings import Settings
from rendercost.testing.waiting import wait_for_job, wait_until
from tests.unit.api.conftest import Api, ApiFactory
from tests.unit.queue.test_migrations import _diff_tables

HOOK = "http://127.0.0.1:9/hook"  # never contacted: the transport answers

# The Standard Webhooks libraries' published example (libraries/python/tests/test_webhooks.py)
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec_verify(whsec: str, headers: httpx.Headers, body: bytes) -> bool:
    """The spec's verification, written out: HMAC-SHA256 keyed with base64-decoded secret over
    ``id.timestamp.body``, base64, compared with each ``v1,`` entry of the header."""
    key = base64.b64decode(whsec.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1) for part in headers["webhook-signature"].split()]
    return any(version == "v1" and hmac.compare_digest(sig, expected) for version, sig in offered)


def test_the_standard_signature_matches_the_specs_example() -> None:
    assert standard_signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP)}
    valid = {**headers, "webhook-signature": f"v1,bm90IGl0 {SPEC_SIGNATURE}"}  # several signatures
    assert verify_standard(SPEC_SECRET, valid, SPEC_BODY, now=SPEC_TIMESTAMP + 299)
    assert not verify_standard(SPEC_SECRET, valid, SPEC_BODY + b" ", now=SPEC_TIMESTAMP)
    assert not verify_standard(SPEC_SECRET, valid, SPEC_BODY, now=SPEC_TIMESTAMP + 301)  # stale
    assert not verify_standard(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)  # no signature
    tampered = {**headers, "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="}
    assert not verify_standard(SPEC_SECRET, tampered, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_a_plain_secret_signs_with_its_bytes_and_has_a_whsec_form() -> None:
    whsec = standard_secret("hook-secret")
    assert whsec == "whsec_" + base64.b64encode(b"hook-secret").decode()
    assert standard_signature("hook-secret", "j", 1, b"{}") == standard_signature(whsec, "j", 1, b"{}")
    assert standard_secret(SPEC_SECRET) == SPEC_SECRET


def _finished_job_with_hook(api: Api) -> str:
    job_id: str = api.client.post(
        "/v1/jobs", json={"prompt": "hook", "webhook_url": HOOK}, headers=api.headers()
    ).json()["id"]
    wait_for_job(
        lambda: api.client.get(f"/v1/jobs/{job_id}", headers=api.headers()).json(),
        what=f"job {job_id}",
        states={JobState.SUCCEEDED},
        timeout_s=20,
    )
    return job_id


class Fleet:
    """A dispatcher on a manual clock over the app's database, stepped by hand."""

    def __init__(self, api: Api, handler: httpx.MockTransport, schedule: RetrySchedule) -> None:
        svc = api.server.services
        self.clock = ManualClock(datetime.now(UTC))
        self.outbox = WebhookOutbox(svc.outbox.engine, schedule=schedule, clock=self.clock)
        self.handler = handler
        self.dispatcher = WebhookDispatcher(
            self.outbox, svc.store, svc.keys, webhook_payload, server_secret="test-secret",
            metrics=svc.metrics, transport=handler, allowed_hosts=["127.0.0.1"],
        )  # fmt: skip

    def poll(self) -> int:
        async def once() -> int:
            async with httpx.AsyncClient(transport=self.handler) as client:
                started = await self.dispatcher.poll_once(client)
                await asyncio.gather(*self.dispatcher._tasks)
                return started

        return asyncio.run(once())


def test_delivered_webhooks_carry_standard_webhooks_headers(make_api: ApiFactory) -> None:
    api = make_api(webhooks=False)
    job_id = _finished_job_with_hook(api)
    seen: list[httpx.Request] = []
    handler = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(204))  # type: ignore[func-returns-value]
    fleet = Fleet(api, handler, RetrySchedule())
    assert fleet.poll() == 1
    request = seen[0]
    assert request.headers["webhook-id"] == job_id
    assert int(request.headers["webhook-timestamp"]) == int(fleet.clock().timestamp())
    assert spec_verify(standard_secret("test-secret"), request.headers, request.content)
    assert not spec_verify(standard_secret("other"), request.headers, request.content)
    assert verify_signature("test-secret", request.content, request.headers[SIGNATURE_HEADER])


def test_a_failing_receiver_is_retried_on_the_stored_schedule_then_failed_then_redelivered(
    make_api: ApiFactory,
) -> None:
    api = make_api(webhooks=False)
    job_id = _finished_job_with_hook(api)
    answers = [503, 503, 503, 503, 200]
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(answers[len(seen) - 1])

    fleet = Fleet(api, httpx.MockTransport(handler), RetrySchedule(base_s=30, cap_s=60, max_attempts=4))
    start = fleet.clock()
    assert fleet.poll() == 1 and len(seen) == 1
    for wait_s in (30, 60, 60):  # doubling from 30 s, capped at 60 s
        status = fleet.outbox.status(job_id)
        assert status is not None and status.state == "pending"
        assert status.next_attempt_at == fleet.clock() + timedelta(seconds=wait_s)
        fleet.clock.advance(wait_s - 1)
        assert fleet.poll() == 0  # not due yet
        fleet.clock.advance(1)
        assert fleet.poll() == 1
    assert len(seen) == 4 and fleet.clock() == start + timedelta(seconds=150)
    status = fleet.outbox.status(job_id)
    assert status is not None and status.state == "failed" and status.attempts == 4
    assert status.last_error is not None and "503" in status.last_error
    fleet.clock.advance(3600)
    assert fleet.poll() == 0  # failed rows stay failed

    admin = api.headers(api.server.admin_key.secret if api.server.admin_key else "")
    response = api.client.post(f"/v1/admin/webhooks/{job_id}/redeliver", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "pending" and response.json()["attempts"] == 0
    assert fleet.poll() == 1 and len(seen) == 5
    assert fleet.outbox.state(job_id) == "delivered"


def test_the_admin_webhook_endpoints_need_an_admin_key(make_api: ApiFactory) -> None:
    api = make_api(webhooks=False)
    job_id = _finished_job_with_hook(api)
    assert api.server.admin_key is not None
    admin = api.headers(api.server.admin_key.secret)
    shown = api.client.get(f"/v1/admin/webhooks/{job_id}", headers=admin)
    assert shown.status_code == 200 and shown.json()["job_id"] == job_id
    for method, path in (
        ("GET", f"/v1/admin/webhooks/{job_id}"),
        ("POST", f"/v1/admin/webhooks/{job_id}/redeliver"),
    ):
        refused = api.client.request(method, path, headers=api.headers())  # tenant acme's key
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
        assert api.client.request(method, path).status_code == 401
    unknown = api.client.post("/v1/admin/webhooks/job_nope/redeliver", headers=admin)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert api.server.services.outbox.state(job_id) == "pending"  # the tenant's attempt changed nothing


def test_a_crashed_senders_lease_runs_out_and_another_takes_the_row(migrated_engine: Engine) -> None:
    store = SqlJobStore(migrated_engine)
    job = store.enqueue("acme", RenderRequest(spec=RenderSpec(prompt="x")))
    store.cancel(job.id)
    clock = ManualClock(datetime.now(UTC))
    first, second = (WebhookOutbox(migrated_engine, lease_s=60, clock=clock) for _ in range(2))
    first.add(job.id, "acme", None, HOOK, "http://api")
    (held,) = first.claim("server-a")
    assert held.attempts == 1
    assert second.claim("server-b") == []  # leased
    clock.advance(61)  # server-a died mid-send
    (taken,) = second.claim("server-b")
    assert taken.attempts == 2 and taken.first_attempt_at == held.first_attempt_at
    assert first.record(held, "server-a", None, retryable=False) is None  # fenced: no longer its row
    assert first.state(job.id) == "pending"
    assert second.record(taken, "server-b", None, retryable=False) == "delivered"
    assert first.claim("server-a") == []


def test_two_app_builds_on_one_database_sign_with_the_same_deployment_secret(make_api: ApiFactory) -> None:
    one = make_api(workers=0, webhook_secret=None)
    two = make_api(workers=0, webhook_secret=None)
    first, second = one.server.services.webhook_secret, two.server.services.webhook_secret
    assert first == second and first.startswith("whsec_") and len(base64.b64decode(first[6:])) == 32
    assert not (one.server.settings.data_dir / "webhook-secret").exists()  # no per-server file
    assert one.server.admin_key is not None
    shown = two.client.get("/v1/admin/webhook-secret", headers=two.headers(one.server.admin_key.secret))
    assert shown.json() == {"secret": first, "standard_secret": first}
    assert two.client.get("/v1/admin/webhook-secret", headers=two.headers()).status_code == 403
    assert make_api(workers=0, webhook_secret="explicit").server.services.webhook_secret == "explicit"


def test_servers_starting_together_agree_on_the_secret(migrated_engine: Engine) -> None:
    settings = Settings(webhook_secret=None)
    found: list[str] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        found.append(resolve_webhook_secret(settings, migrated_engine))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4 and len(set(found)) == 1


JOBS = 20


def _serve_dispatcher(db_url: str, name: str, stop: threading.Event, sent: list[str]) -> None:
    """One 'server': its own engine and event loop, a dispatcher until ``stop``."""
    engine = create_db_engine(db_url)
    outbox = WebhookOutbox(engine)
    dispatcher = WebhookDispatcher(
        outbox, SqlJobStore(engine), KeyStore(engine), webhook_payload, server_secret="fleet-secret",
        metrics=Metrics(), owner=name, poll_interval_s=0.01, batch_size=3, allowed_hosts=["127.0.0.1"],
    )  # fmt: skip
    record = outbox.record

    def counted(delivery: Delivery, owner: str, error: str | None, *, retryable: bool) -> str | None:
        sent.append(delivery.job_id)
        return record(delivery, owner, error, retryable=retryable)

    outbox.record = counted  # type: ignore[method-assign]

    async def main() -> None:
        done = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(done))
        while not stop.is_set():  # noqa: ASYNC110  a threading.Event cannot be awaited
            await asyncio.sleep(0.01)
        done.set()
        await task

    try:
        asyncio.run(main())
    finally:
        engine.dispose()


def test_two_dispatchers_on_one_database_deliver_each_event_once(
    migrated_engine: Engine, db_url: str
) -> None:
    received: list[tuple[str, bytes, httpx.Headers]] = []
    lock = threading.Lock()
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> Response:
        body = await request.body()
        with lock:
            received.append((request.headers["webhook-id"], body, httpx.Headers(request.headers)))
        return Response(status_code=204)

    store = SqlJobStore(migrated_engine)
    outbox = WebhookOutbox(migrated_engine)
    with uvicorn_thread(receiver) as url:
        ids = []
        for n in range(JOBS):
            job = store.enqueue("acme", RenderRequest(spec=RenderSpec(prompt=f"job {n}")))
            outbox.add(job.id, "acme", None, f"{url}/hook", "http://api")
            store.cancel(job.id)  # finished: its webhook is due
            ids.append(job.id)
        stop = threading.Event()
        sent: dict[str, list[str]] = {"a": [], "b": []}
        servers = [
            threading.Thread(target=_serve_dispatcher, args=(db_url, name, stop, sent[name])) for name in sent
        ]
        for server in servers:
            server.start()
        wait_until(
            lambda: all(outbox.state(i) == "delivered" for i in ids), what="every webhook", timeout_s=60
        )
        stop.set()
        for server in servers:
            server.join(30)
    assert sorted(job_id for job_id, _, _ in received) == sorted(ids)  # each exactly once
    assert sorted(sent["a"] + sent["b"]) == sorted(ids)
    whsec = standard_secret("fleet-secret")
    assert all(spec_verify(whsec, headers, body) for _, body, headers in received)


def test_the_migration_matches_the_webhook_tables(migrated_engine: Engine) -> None:
    load_table_modules()
    with migrated_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert _diff_tables(diff) & {"webhook_deliveries", "signing_secrets"} == set(), diff


def test_a_row_written_before_the_migration_is_due_after_it(db_url: str) -> None:
    migrate(db_url, "0005_rewrite_cache")
    engine = create_db_engine(db_url)
    try:
        written = datetime(2026, 11, 30, 12, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (job_id, tenant, url, base_url, state, attempts, "
                    "created_at, updated_at) VALUES ('job_old', 'acme', :url, 'http://api', 'pending', 0, "
                    ":at, :at)"
                ),
                {
                    "url": HOOK,
                    "at": written if engine.dialect.name != "sqlite" else written.replace(tzinfo=None),
                },
            )
        migrate(engine)
        status = WebhookOutbox(engine).status("job_old")
        assert status is not None and status.state == "pending" and status.next_attempt_at == written
    finally:
        engine.dispose()
