"""Webhooks: a POST to the job's ``webhook_url`` when it finishes, signed, retried, off the loop's path.

Body: ``{"type": "job.succeeded"|"job.failed"|"job.cancelled", "created": unix_seconds, "data": <job>}``
where ``<job>`` is what ``GET /v1/jobs/{id}`` returns. Header ``X-Rendercost-Signature: sha256=<hex>``
is HMAC-SHA256 of the exact body bytes with the submitting key's webhook secret, or the server's
(``settings.webhook_secret``). ``X-Rendercost-Delivery`` is the job id: deliveries are at least once,
so receivers deduplicate on it.

The outbox row is written at submit time (``WebhookOutbox.add``); ``WebhookDispatcher.run`` polls for
rows whose job is finished and delivers each in its own task, retrying with exponential backoff
(tenacity) on network errors, 429 and 5xx. Database calls run in worker threads; nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rendercost.api.destinations import Resolver, check_destination, resolve_host
from rendercost.api.tables import webhook_deliveries as wd
from rendercost.auth.keys import KeyStore
from rendercost.domain.jobs import TERMINAL_STATES, Job
from rendercost.observability.metrics import Metrics
from rendercost.queue.protocol import JobStore
from rendercost.queue.tables import jobs

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Rendercost-Signature"
EVENT_HEADER = "X-Rendercost-Event"
DELIVERY_HEADER = "X-Rendercost-Delivery"

PayloadBuilder = Callable[[Job, str], dict[str, Any]]  # (job, base_url) -> the job's JSON


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret`` (constant-time compare)."""
    return hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True)
class Delivery:
    """One outbox row."""

    job_id: str
    tenant: str
    key_id: str | None  # whose secret signs
    url: str
    base_url: str  # for image links in the payload
    attempts: int


class _RetryableDelivery(Exception):
    """A delivery attempt worth repeating (network error, 429, 5xx)."""


class WebhookOutbox:
    """The ``webhook_deliveries`` table; blocking calls."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, job_id: str, tenant: str, key_id: str | None, url: str, base_url: str) -> None:
        """Record that ``job_id`` wants a webhook; a second add for the same job is ignored."""
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(wd).values(
                        job_id=job_id,
                        tenant=tenant,
                        key_id=key_id,
                        url=url,
                        base_url=base_url,
                        state="pending",
                        attempts=0,
                        last_error=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # idempotent resubmit of the same job

    def ready(self, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose job has finished, oldest first."""
        query = (
            select(wd)
            .join(jobs, jobs.c.id == wd.c.job_id)
            .where(wd.c.state == "pending", jobs.c.state.in_([str(s) for s in TERMINAL_STATES]))
            .order_by(wd.c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                Delivery(r.job_id, r.tenant, r.key_id, r.url, r.base_url, r.attempts)
                for r in conn.execute(query)
            ]

    def finish(self, job_id: str, *, delivered: bool, attempts: int, error: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(wd)
                .where(wd.c.job_id == job_id)
                .values(
                    state="delivered" if delivered else "failed",
                    attempts=attempts,
                    last_error=error,
                    updated_at=datetime.now(UTC),
                )
            )

    def state(self, job_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(wd.c.state).where(wd.c.job_id == job_id)).scalar_one_or_none()


class WebhookDispatcher:
    """Delivers finished jobs' webhooks; ``run`` is a task the app's lifespan starts and stops."""

    def __init__(
        self,
        outbox: WebhookOutbox,
        store: JobStore,
        keys: KeyStore,
        payload: PayloadBuilder,
        *,
        server_secret: str,
        metrics: Metrics,
        max_attempts: int = 5,
        timeout_s: float = 10.0,
        poll_interval_s: float = 0.25,
        backoff_base_s: float = 0.5,
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
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.backoff_base_s = backoff_base_s
        self._transport = transport  # tests answer with a function (httpx.MockTransport)
        self._allowed_hosts = tuple(allowed_hosts)  # destinations beyond public addresses (api.destinations)
        self._resolve = resolve
        self._in_flight: set[str] = set()
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
        """Start a delivery task for each ready row not already in flight; return how many started."""
        started = 0
        for delivery in await anyio.to_thread.run_sync(self.outbox.ready):
            if delivery.job_id in self._in_flight:
                continue
            self._in_flight.add(delivery.job_id)
            task = asyncio.create_task(self._deliver(client, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _secret_for(self, key_id: str | None) -> str:
        if key_id is None:
            return self.server_secret
        key = await anyio.to_thread.run_sync(self.keys.get, key_id)
        return key.webhook_secret or self.server_secret

    async def _deliver(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        attempts = 0
        error: str | None = None
        try:
            job = await anyio.to_thread.run_sync(self.store.get, delivery.job_id)
            event = {"type": f"job.{job.state}", "created": int(time.time())}
            body = json.dumps(
                {**event, "data": self.payload(job, delivery.base_url)},
                separators=(",", ":"),
                default=str,
            ).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "rendercost-webhooks",
                SIGNATURE_HEADER: sign(await self._secret_for(delivery.key_id), body),
                EVENT_HEADER: f"job.{job.state}",
                DELIVERY_HEADER: delivery.job_id,
            }
            allowed, resolve = self._allowed_hosts, self._resolve  # a name may resolve elsewhere by now
            await anyio.to_thread.run_sync(
                lambda: check_destination(delivery.url, allowed=allowed, resolve=resolve)
            )
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts),
                wait=wait_exponential(multiplier=self.backoff_base_s, max=60),
                retry=retry_if_exception_type(_RetryableDelivery),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    await self._post_once(client, delivery.url, body, headers)
        except _RetryableDelivery as exc:
            error = str(exc)
        except Exception as exc:  # a refused (4xx) delivery or a vanished job: record it, never crash
            error = str(exc) or type(exc).__name__
        try:
            await self._record(delivery, attempts, error)
        finally:  # in flight until its outcome is stored, or the next poll would send it again
            self._in_flight.discard(delivery.job_id)

    async def _record(self, delivery: Delivery, attempts: int, error: str | None) -> None:
        delivered = error is None
        self.metrics.webhooks.labels("delivered" if delivered else "failed").inc()
        if not delivered:
            log.warning("webhook failed", extra={"fields": {"job_id": delivery.job_id, "error": error}})
        await anyio.to_thread.run_sync(
            lambda: self.outbox.finish(delivery.job_id, delivered=delivered, attempts=attempts, error=error)
        )

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
