"""Settling: what happens to a batch after the runner returns, off the worker's render loop.

For each rendered image: price it (its job's prompt-rewrite share, its share of the batch's device
time, plus storage), embed that receipt in the file, store the file. For each job whose images are all
in: ``Biller.complete`` writes the result, its receipts' cost lines and the artifact rows in ONE
transaction. Failed batches are recorded with ``store.fail``.

``Settler`` does this on one background thread, in submission order, so the device renders the next
batch while the database and the disk take the last one (``pipelined=False`` does it inline). The queue
holds at most ``max_pending`` batches: a slow database slows the loop down instead of piling up work.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from types import TracebackType
from typing import Any

from rendercost.artifacts.metadata import embed_receipt
from rendercost.artifacts.protocol import ArtifactRef, ArtifactStore
from rendercost.domain.batch import BatchPlan, RenderedImage, RenderResult
from rendercost.domain.costs import CostLine, Receipt
from rendercost.domain.jobs import Job
from rendercost.domain.money import ZERO
from rendercost.domain.specs import OutputFormat
from rendercost.errors import Conflict, NotFound
from rendercost.execution.worker.assembly import JobAssembly, StoredImage
from rendercost.execution.worker.leases import LeaseKeeper
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.ledger.billing import Biller
from rendercost.ledger.pricing import rewrite_lines
from rendercost.ledger.receipts import receipt_payload
from rendercost.queue.protocol import JobStore

logger = logging.getLogger(__name__)

EMBED_ROUNDS = 4  # fixed-point rounds for a receipt whose storage line prices the file that holds it

Embedder = Callable[[bytes, str, dict[str, Any]], bytes]  # (file, media type, receipt payload) -> file
SettledHook = Callable[[str, Job | None, str | None], None]  # (job id, job if succeeded, error if failed)


@dataclass
class WorkerStats:
    """What one worker did since it started."""

    jobs_succeeded: int = 0
    jobs_failed: int = 0  # failed attempts (the job may be retried)
    batches: int = 0  # pipeline calls that returned
    images: int = 0  # images rendered in them
    device_seconds: float = 0.0  # whole-batch device time, all stages
    cost: Decimal = ZERO  # USD billed for the settled jobs

    def fill_ratio(self, max_batch_size: int) -> float:
        """Images per pipeline call over ``max_batch_size``."""
        return self.images / self.batches / max_batch_size if self.batches else 0.0


@dataclass(frozen=True)
class _Rendered:
    plan: BatchPlan
    result: RenderResult
    complete: tuple[str, ...]  # jobs whose last image is in this batch


@dataclass(frozen=True)
class _Failed:
    job_ids: tuple[str, ...]
    message: str
    retryable: bool


class Settler:
    """Stores, prices and settles rendered batches for one worker; see the module docstring."""

    def __init__(
        self,
        store: JobStore,
        artifacts: ArtifactStore,
        pricing: WorkerPricing,
        leases: LeaseKeeper,
        *,
        biller: Biller,
        worker_id: str,
        stats: WorkerStats,
        embed: Embedder = embed_receipt,
        on_settled: SettledHook | None = None,
        pipelined: bool = True,
        max_pending: int = 1,
    ) -> None:
        self._store = store
        self._biller = biller
        self._artifacts = artifacts
        self._pricing = pricing
        self._leases = leases
        self._worker_id = worker_id
        self._stats = stats
        self._embed = embed
        self._on_settled = on_settled
        self._pipelined = pipelined
        self._lock = threading.Lock()  # guards the dicts, the dropped list and the stats
        self._assemblies: dict[str, JobAssembly] = {}
        self._images_of: dict[str, int] = {}  # job id -> images it asks for
        self._dropped: list[str] = []  # jobs failed here that the planner must forget
        self._queue: queue.Queue[_Rendered | _Failed | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None

    # -- the worker loop's side -------------------------------------------------------------------

    def open(self, job: Job) -> None:
        """Start gathering the images of a claimed job."""
        with self._lock:
            charged = {line.image_index: line for line in rewrite_lines(job.request, job.id)}
            self._assemblies[job.id] = JobAssembly(job.id, charged_before=charged)
            self._images_of[job.id] = job.request.n
        self._leases.hold([job.id])

    def progress(self, job_id: str, images_in_flight: float) -> float | None:
        """Fraction of ``job_id`` done when ``images_in_flight`` more of its images are rendered."""
        with self._lock:
            assembly, images = self._assemblies.get(job_id), self._images_of.get(job_id)
            if assembly is None or not images:
                return None
            return min((assembly.count + images_in_flight) / images, 1.0)

    def submit(self, plan: BatchPlan, result: RenderResult, complete: Sequence[str]) -> None:
        """Store ``result``'s images, then settle the ``complete`` jobs (blocks while the queue is full)."""
        self._put(_Rendered(plan, result, tuple(complete)))

    def fail(self, job_ids: Sequence[str], message: str, *, retryable: bool) -> None:
        """Record that ``job_ids`` failed (after what was submitted before)."""
        self._put(_Failed(tuple(job_ids), message, retryable))

    def forget(self, job_ids: Sequence[str]) -> None:
        """Stop tracking (and heartbeating) jobs given back to the queue."""
        with self._lock:
            for job_id in job_ids:
                self._assemblies.pop(job_id, None)
                self._images_of.pop(job_id, None)
        self._leases.release(job_ids)

    def supersede(self, job_ids: Sequence[str], *, held: Sequence[str] = ()) -> set[str]:
        """Of ``job_ids`` (just claimed), those an earlier attempt of which is still known here: failed
        while settling and not yet taken by ``take_dropped``, or still ``held`` by the planner. For
        those, wait until every batch already submitted is handled (they may hold that attempt's images,
        which must not be taken for the new attempt's) and withdraw the pending drop; the caller drops
        the old attempt from the planner."""
        with self._lock:
            stale = set(job_ids) & (set(self._dropped) | set(held))
        if stale:
            self.wait_idle()
            with self._lock:
                self._dropped = [job_id for job_id in self._dropped if job_id not in stale]
        return stale

    def take_dropped(self) -> list[str]:
        """Jobs failed while settling (store errors); the planner should drop their other images."""
        with self._lock:
            dropped, self._dropped = self._dropped, []
        return dropped

    def wait_idle(self) -> None:
        """Return once everything submitted has been handled."""
        if self._pipelined:
            self._queue.join()

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._images_of)

    def start(self) -> None:
        if self._pipelined and self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name=f"settler-{self._worker_id}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Finish what was submitted, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Settler:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the settling thread ----------------------------------------------------------------------

    def _put(self, work: _Rendered | _Failed) -> None:
        if self._pipelined:
            self._queue.put(work)
        else:
            self._handle(work)

    def _serve(self) -> None:
        while (work := self._queue.get()) is not None:
            try:
                self._handle(work)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _handle(self, work: _Rendered | _Failed) -> None:
        try:
            if isinstance(work, _Failed):
                self._record_failure(work.job_ids, work.message, work.retryable)
                return
            try:
                self._store_images(work.plan, work.result)
            except Exception as exc:  # disk full, pricing gap: the batch's jobs fail and are retried
                jobs = tuple(dict.fromkeys(item.job_id for item in work.plan.items))
                logger.exception("storing a batch failed", extra={"fields": {"batch_id": work.plan.batch_id}})
                with self._lock:
                    self._dropped.extend(jobs)
                self._record_failure(jobs, f"{type(exc).__name__}: {exc}", retryable=True)
                return
            for job_id in work.complete:
                self._settle(job_id)
        except Exception:  # never let the settling thread die: its jobs' leases run out and they rerun
            logger.exception("settling failed")

    def _store_images(self, plan: BatchPlan, result: RenderResult) -> None:
        device_lines = self._pricing.device_lines(plan, result)
        for rendered, lines in zip(result.images, device_lines, strict=True):
            with self._lock:
                opened = self._assemblies.get(rendered.item.job_id)
                if opened is None:  # failed or cancelled meanwhile
                    continue
                before = opened.charged_before.get(rendered.item.image_index)
            ref, receipt = self._store_one(rendered, (*((before,) if before else ()), *lines))
            image = StoredImage(
                rendered.item.image_index, ref, rendered.seed, receipt, plan.batch_id, result.device
            )
            with self._lock:
                assembly = self._assemblies.get(rendered.item.job_id)
                if assembly is not None:
                    assembly.add(image)

    def _store_one(
        self, rendered: RenderedImage, priced_lines: tuple[CostLine, ...]
    ) -> tuple[ArtifactRef, Receipt]:
        """Store one image with its receipt (``priced_lines`` and a storage line) embedded. The storage
        line prices the stored file, which holds the receipt, so the size is iterated to a fixed point
        (it settles in two rounds)."""
        size = len(rendered.data)
        spec = replace(rendered.item.spec, seed=rendered.seed)
        for _ in range(EMBED_ROUNDS):
            receipt = Receipt((*priced_lines, self._pricing.storage_line(rendered.item, size)))
            data = self._embed(rendered.data, rendered.media_type, receipt_payload(spec, receipt))
            if len(data) == size:
                break
            size = len(data)
        suffix = OutputFormat.from_media_type(rendered.media_type).suffix
        return self._artifacts.put(data, media_type=rendered.media_type, suffix=suffix), receipt

    def _settle(self, job_id: str) -> None:
        """Complete one job: result, cost lines and artifact rows in one transaction."""
        with self._lock:
            assembly = self._assemblies.get(job_id)
        if assembly is None:  # failed meanwhile
            return
        try:
            job = self._biller.complete(job_id, self._worker_id, assembly.result(), assembly.artifacts)
        except (Conflict, NotFound) as exc:  # cancelled, or the lease went to another worker
            logger.warning("job not completed: %s", exc.message, extra={"fields": {"job_id": job_id}})
            self.forget([job_id])
            self._notify(job_id, None, exc.message)
            return
        except Exception:  # nothing was written; once its lease runs out the job is rendered again
            logger.exception("completing a job failed", extra={"fields": {"job_id": job_id}})
            self.forget([job_id])
            return
        with self._lock:
            self._stats.jobs_succeeded += 1
            self._stats.cost += assembly.cost
        self.forget([job_id])
        self._notify(job_id, job, None)

    def _record_failure(self, job_ids: Sequence[str], message: str, retryable: bool) -> None:
        for job_id in job_ids:
            try:
                self._store.fail(job_id, self._worker_id, message, retryable=retryable)
            except (Conflict, NotFound):
                pass  # no longer ours to fail
            except Exception:  # its lease runs out and it is retried like a crashed worker's job
                logger.exception("recording a failure failed", extra={"fields": {"job_id": job_id}})
            with self._lock:
                self._stats.jobs_failed += 1
            self.forget([job_id])
            self._notify(job_id, None, message)

    def _notify(self, job_id: str, job: Job | None, error: str | None) -> None:
        if self._on_settled is not None:
            self._on_settled(job_id, job, error)
