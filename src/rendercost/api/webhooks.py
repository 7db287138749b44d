"""Webhooks: a POST to the job's ``webhook_url`` when it finishes, signed, retried for hours, sent once.

Body: ``{"type": "job.succeeded"|"job.failed"|"job.cancelled", "created": unix_seconds, "data": <job>}``
where ``<job>`` is what ``GET /v1/jobs/{id}`` returns. Two signatures of the exact body bytes, with the
submitting key's webhook secret or the deployment's (``settings.webhook_secret``, else the one kept in
the database, ``auth.signing``):

- Standard Webhooks: ``webhook-id`` (the job id), ``webhook-timestamp`` (unix seconds of this attempt)
  and ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``;
- ``X-Rendercost-Signature: sha256=<hex HMAC-SHA256 of the body>``, as before.

``X-Rendercost-Delivery`` is the job id too: deliveries are at least once, so receivers deduplicate on it.
``WebhookDispatcher.run`` claims due rows from the outbox (``api.webhook_outbox``: a lease per row, so
every server can run one) and delivers each in its own task; a network error, 429 or 5xx puts the row
back on the outbox's stored schedule, a 4xx or a refused destination fails it. Database calls run in
worker threads; nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import httpx

from rendercost.api.destinations import Resolver, check_destination, resolve_host
from rendercost.api.webhook_outbox import PENDING, Delivery, WebhookOutbox
from rendercost.auth.keys import KeyStore
from rendercost.auth.signing import standard_signature
from rendercost.domain.jobs import Job
from rendercost.observability.metrics import Metrics
from rendercost.queue.protocol import JobStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Rendercost-Signature"
EVENT_HEADER = "X-Rendercost-Event"
DELIVERY_HEADER = "X-Rendercost-Delivery"
ID_HEADER = "webhook-id"  # Standard Webhooks
TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"

PayloadBuilder = Callable[[Job, str], dict[str, Any]]  # (job, base_url) -> the job's JSON


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret`` (constant-time compare)."""
    return hmac.compare_digest(sign(secret, body), header)


class _RetryableDelivery(Exception):
    """A delivery attempt worth repeating (network error, 429, 5xx)."""


class WebhookDispatcher:
    """Delivers finished jobs' webhooks; ``run`` is a task the app's lifespan starts and stops. Many
    dispatchers (one per server) may share one outbox: each row is leased to one at a time. At most
    ``batch_size`` deliveries of one dispatcher are in flight."""

    def __init__(
        self,
        outbox: WebhookOutbox,
        store: JobStore,
        keys: KeyStore,
        payload: PayloadBuilder,
        *,
        server_secret: str,
        metrics: Metrics,
        owner: str | None = None,
        timeout_s: float = 10.0,
        poll_interval_s: float = 0.25,
        batch_size: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
        allowed_hosts: Sequence[str] = (),
        resolve: Resolver = resolve_host,
    ) -> None:
        self.outbox = outbox
        self.store = store
        self.keys = keys
        self.payload = payload
        self.server_secret = server_secret
        self.metrics = metrics
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self._transport = transport  # tests answer with a function (httpx.MockTransport)
        self._allowed_hosts = tuple(allowed_hosts)  # destinations beyond public addresses (api.destinations)
        self._resolve = resolve
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and deliver until ``stop`` is set; then wait for deliveries already started."""
        async with httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport) as client:
            while not stop.is_set():
                try:
                    await self.poll_once(client)
                except Exception:  # a database hiccup must not end the dispatcher
                    log.exception("webhook poll failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_interval_s)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def poll_once(self, client: httpx.AsyncClient) -> int:
        """Claim due rows (as many as there is room for) and start a delivery task for each; return how
        many started. A row still in flight is leased, so a later poll cannot claim it again."""
        room = self.batch_size - len(self._tasks)
        claimed = await anyio.to_thread.run_sync(lambda: self.outbox.claim(self.owner, room))
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(client, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def _secret_for(self, key_id: str | None) -> str:
        if key_id is None:
            return self.server_secret
        key = await anyio.to_thread.run_sync(self.keys.get, key_id)
        return key.webhook_secret or self.server_secret

    async def _deliver(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        error: str | None = None
        retryable = False
        try:
            body, headers = await self._request(delivery)
            await self._post_once(client, delivery.url, body, headers)
        except _RetryableDelivery as exc:
            error, retryable = str(exc), True
        except Exception as exc:  # a refused (4xx) delivery or a vanished job: record it, never crash
            error = str(exc) or type(exc).__name__
        try:
            await self._record(delivery, error, retryable=retryable)
        except Exception:  # the lease runs out and another attempt follows
            log.exception("webhook outcome not recorded", extra={"fields": {"job_id": delivery.job_id}})

    async def _request(self, delivery: Delivery) -> tuple[bytes, dict[str, str]]:
        """The signed body and headers of one attempt; refuses a destination that turned internal."""
        job = await anyio.to_thread.run_sync(self.store.get, delivery.job_id)
        timestamp = int(self.outbox.clock().timestamp())
        event = f"job.{job.state}"
        body = json.dumps(
            {"type": event, "created": timestamp, "data": self.payload(job, delivery.base_url)},
            separators=(",", ":"),
            default=str,
        ).encode()
        secret = await self._secret_for(delivery.key_id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "rendercost-webhooks",
            SIGNATURE_HEADER: sign(secret, body),
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery.job_id,
            ID_HEADER: delivery.job_id,
            TIMESTAMP_HEADER: str(timestamp),
            STANDARD_SIGNATURE_HEADER: standard_signature(secret, delivery.job_id, timestamp, body),
        }
        allowed, resolve = self._allowed_hosts, self._resolve  # a name may resolve elsewhere by now
        await anyio.to_thread.run_sync(
            lambda: check_destination(delivery.url, allowed=allowed, resolve=resolve)
        )
        return body, headers

    async def _record(self, delivery: Delivery, error: str | None, *, retryable: bool) -> None:
        state = await anyio.to_thread.run_sync(
            lambda: self.outbox.record(delivery, self.owner, error, retryable=retryable)
        )
        outcome = "superseded" if state is None else "retrying" if state == PENDING else state
        self.metrics.webhooks.labels(outcome).inc()
        if error is not None:
            fields = {"job_id": delivery.job_id, "attempt": delivery.attempts, "error": error, "state": state}
            log.warning("webhook attempt failed", extra={"fields": fields})

    @staticmethod
    async def _post_once(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _RetryableDelivery(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableDelivery(f"POST {url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise RuntimeError(f"POST {url}: HTTP {response.status_code} (not retried)")
