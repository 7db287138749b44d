"""Webhook signing and the dispatcher's retries (the receiver is an httpx transport function)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime

import httpx
import pytest

from rendercost.api.destinations import check_destination
from rendercost.api.views import webhook_payload
from rendercost.api.webhook_outbox import Delivery, RetrySchedule, WebhookOutbox
from rendercost.api.webhooks import SIGNATURE_HEADER, WebhookDispatcher, sign, verify_signature
from rendercost.db.clock import ManualClock
from rendercost.domain.jobs import JobState
from rendercost.errors import InvalidRequest
from rendercost.testing.waiting import wait_for_job
from tests.unit.api.conftest import Api, ApiFactory

HOOK = "http://127.0.0.1:9/hook"  # never contacted: the transport answers


def test_signature_round_trip() -> None:
    body = b'{"a":1}'
    header = sign("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("s3cret", body, header)
    assert not verify_signature("s3cret", body + b" ", header)
    assert not verify_signature("other", body, header)


def _finished_job_with_hook(api: Api, key: str | None = None) -> str:
    job_id: str = api.client.post(
        "/v1/jobs", json={"prompt": "hook", "webhook_url": HOOK}, headers=api.headers(key)
    ).json()["id"]
    wait_for_job(
        lambda: api.client.get(f"/v1/jobs/{job_id}", headers=api.headers(key)).json(),
        what=f"job {job_id}",
        states={JobState.SUCCEEDED},
        timeout_s=20,
    )
    return job_id


def _dispatch(api: Api, handler: httpx.MockTransport, secret: str = "test-secret") -> None:
    """Deliver until nothing more is due, moving a manual clock past each stored retry time."""
    svc = api.server.services
    clock = ManualClock(datetime.now(UTC))
    schedule = RetrySchedule(base_s=30, cap_s=3600, max_attempts=3)
    outbox = WebhookOutbox(svc.outbox.engine, schedule=schedule, clock=clock)
    dispatcher = WebhookDispatcher(
        outbox, svc.store, svc.keys, webhook_payload, server_secret=secret, metrics=svc.metrics,
        transport=handler, allowed_hosts=["127.0.0.1"],
    )  # fmt: skip

    async def until_idle() -> None:
        async with httpx.AsyncClient(transport=handler) as client:
            while await dispatcher.poll_once(client):
                await asyncio.gather(*dispatcher._tasks)
                clock.advance(schedule.cap_s)

    asyncio.run(until_idle())


def test_retries_server_errors_then_delivers_signed(make_api: ApiFactory) -> None:
    api = make_api(webhooks=False)
    job_id = _finished_job_with_hook(api)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) < 3 else 200)

    _dispatch(api, httpx.MockTransport(handler))
    assert len(seen) == 3
    body = seen[-1].content
    assert verify_signature("test-secret", body, seen[-1].headers[SIGNATURE_HEADER])
    event = json.loads(body)
    assert event["type"] == "job.succeeded" and event["data"]["id"] == job_id
    assert event["data"]["rendercost"]["job_id"] == job_id
    assert api.server.services.outbox.state(job_id) == "delivered"
    _dispatch(api, httpx.MockTransport(handler))  # delivered rows are not sent again
    assert len(seen) == 3


def test_client_errors_are_not_retried(make_api: ApiFactory) -> None:
    api = make_api(webhooks=False)
    job_id = _finished_job_with_hook(api)
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(410)

    _dispatch(api, httpx.MockTransport(handler))
    assert calls == [1]
    assert api.server.services.outbox.state(job_id) == "failed"


def test_a_keys_own_secret_signs_its_webhooks(make_api: ApiFactory) -> None:
    api = make_api(webhooks=False)
    key = api.new_key("acme", webhook_secret="per-key")
    _finished_job_with_hook(api, key)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    _dispatch(api, httpx.MockTransport(handler))
    assert verify_signature("per-key", seen[0].content, seen[0].headers[SIGNATURE_HEADER])


def test_a_delivery_is_not_sent_again_while_its_outcome_is_being_recorded(make_api: ApiFactory) -> None:
    """A poll that runs between the POST and the outbox update must not start a second delivery."""
    api = make_api(webhooks=False)
    job_id = _finished_job_with_hook(api)
    svc = api.server.services
    seen: list[str] = []
    handler = httpx.MockTransport(lambda request: seen.append(str(request.url)) or httpx.Response(200))
    dispatcher = WebhookDispatcher(
        svc.outbox, svc.store, svc.keys, webhook_payload, server_secret="s", metrics=svc.metrics,
        transport=handler, allowed_hosts=["127.0.0.1"],
    )  # fmt: skip
    record = svc.outbox.record
    recording = threading.Event()
    release = threading.Event()

    def slow_record(delivery: Delivery, owner: str, error: str | None, *, retryable: bool) -> str | None:
        recording.set()
        release.wait(10)
        return record(delivery, owner, error, retryable=retryable)

    svc.outbox.record = slow_record  # type: ignore[method-assign]

    async def race() -> None:
        async with httpx.AsyncClient(transport=handler) as client:
            assert await dispatcher.poll_once(client) == 1
            while not recording.is_set():  # noqa: ASYNC110  a threading.Event cannot be awaited
                await asyncio.sleep(0.01)
            assert await dispatcher.poll_once(client) == 0  # the row is still pending, but in flight
            release.set()
            await asyncio.gather(*dispatcher._tasks)
            assert await dispatcher.poll_once(client) == 0  # delivered now

    asyncio.run(race())
    assert seen == [HOOK]
    assert svc.outbox.state(job_id) == "delivered"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/hook",
        "http://localhost:9/hook",  # a name that resolves to loopback
        "http://[::ffff:127.0.0.1]/hook",
        "http://192.168.1.20/hook",
    ],
)
def test_internal_webhook_destinations_are_refused_unless_allowed(make_api: ApiFactory, url: str) -> None:
    api = make_api(workers=0, webhook_allowed_hosts=[])
    response = api.client.post("/v1/jobs", json={"prompt": "x", "webhook_url": url}, headers=api.headers())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "webhook_url_refused" and error["param"] == "webhook_url"
    assert api.client.get("/v1/jobs", headers=api.headers()).json()["data"] == []  # nothing queued


def test_an_allowlisted_network_or_host_and_public_addresses_pass() -> None:
    public = lambda _host: ["93.184.215.14"]  # noqa: E731 -- a resolver that answers as public DNS would
    check_destination("https://hooks.example.com/x", resolve=public)
    check_destination("http://10.1.2.3/x", allowed=["10.1.2.0/24"])
    check_destination("http://hooks.internal/x", allowed=["hooks.internal"], resolve=public)
    with pytest.raises(InvalidRequest):
        check_destination("http://10.1.3.3/x", allowed=["10.1.2.0/24"])
    with pytest.raises(InvalidRequest):  # a name that resolves to a private address later
        check_destination("https://hooks.example.com/x", resolve=lambda _host: ["10.0.0.5"])


def test_a_destination_that_turned_internal_is_not_delivered(make_api: ApiFactory) -> None:
    api = make_api(webhooks=False)
    job_id = _finished_job_with_hook(api)
    seen: list[httpx.Request] = []
    svc = api.server.services
    dispatcher = WebhookDispatcher(
        svc.outbox,
        svc.store,
        svc.keys,
        webhook_payload,
        server_secret="s",
        metrics=svc.metrics,
        transport=httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200)),
    )  # fmt: skip  (no allowlist here: the row's 127.0.0.1 destination is refused at delivery)

    async def once() -> None:
        async with httpx.AsyncClient() as client:
            await dispatcher.poll_once(client)
            await asyncio.gather(*dispatcher._tasks)

    asyncio.run(once())
    assert seen == []
    assert svc.outbox.state(job_id) == "failed"
