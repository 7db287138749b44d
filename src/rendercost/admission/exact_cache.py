"""Admission's exact-result cache step: an identical request is answered from stored files.

``ExactCache`` joins the cache's storage (``caches.result_cache``), the artifact store and the model
fingerprint; it writes no ledger line (the ``Biller`` does):

- ``keys(request)``: one ``result_key`` per image (seeds ``seed .. seed + n - 1``) or ``None`` when the
  request cannot be cached (random seed, cache off);
- ``find(request)``: the entries when EVERY image is cached and its file is still in the ArtifactStore;
- ``answer(request, answer_id)``: ``find``, then the ``JobResult`` of an answer named ``answer_id``
  (receipts priced by ``ledger.answers``) and the artifact rows of its files;
- ``store(job)``: after a job succeeded, remember each of its images (``no-store`` requests are skipped);
  ``storing_hook`` makes that a worker's ``on_settled``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from rendercost.artifacts.protocol import ArtifactRef, ArtifactStore
from rendercost.caches.result_cache import CachedResult, ResultCache, result_key
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.results import ImageResult, JobResult
from rendercost.domain.specs import RANDOM_SEED, RenderRequest
from rendercost.errors import NotFound
from rendercost.ledger.answers import answer_receipts

Fingerprint = Callable[[str], str]  # model name -> weights fingerprint


@dataclass(frozen=True)
class CacheAnswer:
    """A request answered from the cache: the result (receipts at $0 with the cost avoided, plus the
    request's own rewrite share) and the artifact rows of the cached files, with their entries."""

    entries: tuple[CachedResult, ...]  # one per image, in image order
    result: JobResult
    artifacts: tuple[tuple[ArtifactRef, int], ...]  # (file, image index)


class ExactCache:
    """Exact-result cache entries + the files they name + the weights fingerprint."""

    def __init__(self, cache: ResultCache, artifacts: ArtifactStore, fingerprint: Fingerprint) -> None:
        self.cache = cache
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

    def answer(self, request: RenderRequest, answer_id: str) -> CacheAnswer | None:
        """Blocking. The answer named ``answer_id`` when every image is cached, else None."""
        entries = self.find(request)
        if entries is None:
            return None
        try:
            refs = tuple((self._ref(entry), i) for i, entry in enumerate(entries))
        except NotFound:  # a file was collected since find(): render again
            return None
        receipts = answer_receipts(request, [entry.receipt for entry in entries], answer_id)
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
        return CacheAnswer(entries, JobResult(images), refs)

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


SettledHook = Callable[[str, Job | None, str | None], None]  # the worker's on_settled


def storing_hook(cache: ExactCache, then: SettledHook | None = None) -> SettledHook:
    """A worker ``on_settled`` that stores each succeeded job's images in the cache, then calls ``then``."""

    def on_settled(job_id: str, job: Job | None, error: str | None) -> None:
        if job is not None:
            cache.store(job)
        if then is not None:
            then(job_id, job, error)

    return on_settled
