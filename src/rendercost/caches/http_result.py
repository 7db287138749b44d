"""The exact-result cache in front of the queue: an identical request is answered from stored files.

``ResultCacheGate`` is what the HTTP API (and the worker's settle hook) use:

- ``keys(request)``: one ``result_key`` per image (seeds ``seed .. seed + n - 1``) or ``None`` when the
  request cannot be cached (no resolved seed);
- ``find(request)``: the entries when EVERY image is cached and its file is still in the ArtifactStore;
- ``lookup(request, tenant=..., tags=...)``: ``find``, then this hit's ledger lines (cost 0,
  ``cost_avoided`` = what the render that paid for the file cost, stage by stage, plus the request's
  own prompt-rewrite share, which was paid) under a fresh id ``cache-<uuid>``; the synchronous images API;
- ``answer_as_job(store, request, ...)``: ``find``, then a SUCCEEDED job holding the cached files, its
  lines and artifact rows (``JobStore.add_answered``, one transaction); the async jobs API;
- ``store(job)``: after a job succeeded, remember each of its images (``no-store`` requests are skipped).

Controls come from ``Cache-Control`` (``domain.controls.CacheMode.from_header``): ``no-cache`` skips the
read but still stores, ``no-store`` neither reads nor stores (recorded on the request's ``cache`` policy).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from rendercost.artifacts.protocol import ArtifactRef, ArtifactStore
from rendercost.caches.result_cache import CachedResult, ResultCache, result_key
from rendercost.domain.controls import CacheOutcome
from rendercost.domain.costs import CostLine, Receipt, Stage
from rendercost.domain.jobs import Job, JobState, new_job_id
from rendercost.domain.money import ZERO
from rendercost.domain.results import ImageResult, JobResult
from rendercost.domain.specs import RANDOM_SEED, RenderRequest
from rendercost.errors import NotFound
from rendercost.ledger.ledger import Ledger
from rendercost.ledger.pricing import rewrite_lines
from rendercost.queue.protocol import JobStore

HIT_PREFIX = "cache-"  # ids of cache answers (never a queued job's id)

Fingerprint = Callable[[str], str]  # model name -> weights fingerprint


@dataclass(frozen=True)
class CacheHit:
    """A request answered from the cache."""

    id: str  # "cache-<uuid>": names this answer's ledger lines
    entries: tuple[CachedResult, ...]  # one per image, in image order
    receipts: tuple[Receipt, ...]  # this answer's receipts (cost 0, cost avoided), one per image

    @property
    def cost_avoided(self) -> Decimal:
        return sum((receipt.total_avoided for receipt in self.receipts), ZERO)


class ResultCacheGate:
    """Exact-result cache + ledger + artifacts, for requests that go through the queue."""

    def __init__(
        self, cache: ResultCache, engine: Engine, artifacts: ArtifactStore, fingerprint: Fingerprint
    ) -> None:
        self.cache = cache
        self._engine = engine
        self._ledger = Ledger(engine)
        self._artifacts = artifacts
        self._fingerprint = fingerprint

    @property
    def enabled(self) -> bool:
        return self.cache.enabled

    def keys(self, request: RenderRequest) -> list[str] | None:
        """One key per image, or None when the request cannot be cached (random seed, cache off)."""
        if not self.enabled or request.spec.seed == RANDOM_SEED:
            return None
        fingerprint = self._fingerprint(request.spec.model)
        return [result_key(spec, fingerprint) for spec in request.image_specs()]

    def find(self, request: RenderRequest) -> tuple[CachedResult, ...] | None:
        """Blocking. The entries, one per image in order, when every image is cached and its file is
        still stored; else None (an entry whose file was collected is forgotten)."""
        keys = self.keys(request)
        if keys is None:
            return None
        entries: list[CachedResult] = []
        for key in keys:
            entry = self.cache.get(key)
            if entry is None:
                return None
            if not self._artifacts.exists(entry.location):
                self.cache.forget(key)  # the file was collected: render again
                return None
            entries.append(entry)
        return tuple(entries)

    def lookup(
        self, request: RenderRequest, *, tenant: str, tags: Mapping[str, str] | None = None
    ) -> CacheHit | None:
        """Blocking. The hit (ledger lines written) when every image is cached, else None."""
        entries = self.find(request)
        if entries is None:
            return None
        hit_id = f"{HIT_PREFIX}{uuid.uuid4().hex}"
        receipts = answer_receipts(request, entries, hit_id)
        lines = [line for receipt in receipts for line in receipt.lines]
        with self._engine.begin() as conn:
            self._ledger.insert_lines(conn, lines, request.attribution(tenant, tags))
        return CacheHit(id=hit_id, entries=entries, receipts=receipts)

    def answer_as_job(
        self,
        store: JobStore,
        request: RenderRequest,
        *,
        tenant: str,
        tags: dict[str, str],
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> Job | None:
        """Blocking. A SUCCEEDED job answering ``request`` from the cache (never queued; its $0 lines
        with the cost avoided, and artifact rows for the cached files, written with it), or None on a
        miss. An Idempotency-Key the tenant already used returns that job instead."""
        entries = self.find(request)
        if entries is None:
            return None
        try:
            refs = [(self._ref(entry), i) for i, entry in enumerate(entries)]
        except NotFound:  # a file was collected since find(): render again
            return None
        job_id = new_job_id()
        receipts = answer_receipts(request, entries, job_id)
        images = tuple(
            ImageResult(
                index=i,
                artifact_key=entry.location,
                media_type=entry.media_type,
                seed=int(entry.receipt.get("seed", request.spec.seed + i)),
                size_bytes=ref.size_bytes,
                receipt=receipt,
                cache_key=entry.key,
            )
            for i, (entry, receipt, (ref, _)) in enumerate(zip(entries, receipts, refs, strict=True))
        )
        result = JobResult(images)
        answered = replace(request, cache=replace(request.cache, outcome=CacheOutcome.HIT))
        return store.add_answered(
            job_id,
            tenant,
            answered,
            result=result,
            cost_lines=[line for receipt in receipts for line in receipt.lines],
            artifacts=refs,
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
            tags=tags,
        )

    def _ref(self, entry: CachedResult) -> ArtifactRef:
        data = self._artifacts.get(entry.location)
        return ArtifactRef(entry.location, len(data), hashlib.sha256(data).hexdigest(), entry.media_type)

    def store(self, job: Job) -> int:
        """Blocking. Remember a succeeded job's images; return how many were stored."""
        if job.state != JobState.SUCCEEDED or job.result is None or not job.request.cache.stores:
            return 0
        keys = self.keys(job.request)
        if keys is None:
            return 0
        stored = 0
        for image in job.result.images:
            if not 0 <= image.index < len(keys):
                continue
            payload = {"seed": image.seed, "receipt": image.receipt.to_dict()}
            self.cache.put(
                keys[image.index], location=image.artifact_key, media_type=image.media_type, receipt=payload
            )
            stored += 1
        return stored


def answer_receipts(
    request: RenderRequest, entries: tuple[CachedResult, ...], answer_id: str
) -> tuple[Receipt, ...]:
    """One receipt per image of a cache answer named ``answer_id``: this request's own prompt-rewrite
    share (paid: the rewrite ran before the lookup), then every stage of the render that paid for
    the file at $0 with its cost avoided."""
    rewrites = rewrite_lines(request, answer_id)
    return tuple(
        Receipt((*rewrites[i : i + 1], *hit_receipt(entry.receipt, answer_id, i).lines))
        for i, entry in enumerate(entries)
    )


def hit_receipt(payload: Mapping[str, Any], hit_id: str, image_index: int) -> Receipt:
    """The receipt of one image served from the cache: each render stage the paid render billed, at $0
    with its cost as ``cost_avoided``, and nothing else (a hit stores no new bytes). The paid render's
    prompt rewrite is left out: the cache does not spare it (a rewrite happens before the lookup)."""
    paid = [CostLine.from_dict(line) for line in (payload.get("receipt") or {}).get("lines", [])]
    return Receipt(
        tuple(
            replace(
                line,
                job_id=hit_id,
                image_index=image_index,
                device_seconds=0.0,
                quantity=ZERO,
                cost=ZERO,
                batch_id="",
                batch_size=1,
                cost_avoided=line.cost,
                details={"cache": "result", "paid_in_batch": line.batch_id},
            )
            for line in paid
            if line.stage != Stage.PROMPT_REWRITE
        )
    )


SettledHook = Callable[[str, Job | None, str | None], None]  # the worker's on_settled


def storing_hook(gate: ResultCacheGate, then: SettledHook | None = None) -> SettledHook:
    """A worker ``on_settled`` that stores each succeeded job's images in the cache, then calls ``then``."""

    def on_settled(job_id: str, job: Job | None, error: str | None) -> None:
        if job is not None:
            gate.store(job)
        if then is not None:
            then(job_id, job, error)

    return on_settled
