"""Webhook signing and the dispatcher's retries (the receiver is an httpx transport function)."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx

from rendercost.api.views import webhook_payload
from rendercost.api.webhooks import SIGNATURE_HEADER, WebhookDispatcher, sign, verify_signature
from rendercost.domain.jobs import JobState
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
    svc = api.server.services
    dispatcher = WebhookDispatcher(
        svc.outbox, svc.store, svc.keys, webhook_payload, server_secret=secret, metrics=svc.metrics,
        max_attempts=3, backoff_base_s=0.01, transport=handler,
    )  # fmt: skip

    async def once() -> None:
        async with httpx.AsyncClient(transport=handler) as client:
            await dispatcher.poll_once(client)
            await asyncio.gather(*dispatcher._tasks)

    asyncio.run(once())


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
        transport=handler,
    )  # fmt: skip
    finish = svc.outbox.finish
    recording = threading.Event()
    release = threading.Event()

    def slow_finish(job: str, *, delivered: bool, attempts: int, error: str | None) -> None:
        recording.set()
        release.wait(10)
        finish(job, delivered=delivered, attempts=attempts, error=error)

    svc.outbox.finish = slow_finish  # type: ignore[method-assign]

    async def race() -> None:
        async with httpx.AsyncClient(transport=handler) as client:
            assert await dispatcher.poll_once(client) == 1
            while not recording.is_set():
                await asyncio.sleep(0.01)
            assert await dispatcher.poll_once(client) == 0  # the row is still pending, but in flight
            release.set()
            await asyncio.gather(*dispatcher._tasks)
            assert await dispatcher.poll_once(client) == 0  # delivered now

    asyncio.run(race())
    assert seen == [HOOK]
    assert svc.outbox.state(job_id) == "delivered"
