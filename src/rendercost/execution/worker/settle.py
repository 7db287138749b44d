"""Settling: what happens to a batch after the runner returns, off the worker's render loop.

For each rendered image: price it (its job's prompt-rewrite share, its share of the batch's device
time, plus storage), embed that receipt in the file, store the file. For each job whose images are all
in: ``Biller.complete`` writes the result, its receipts' cost lines and the artifact rows in ONE
transaction. Failed batches are recorded with ``store.fail``.

The jobs and their images live in the worker's ``HeldJobs``; the settler reads and transitions them.
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
from rendercost.execution.worker.held import Attempt, HeldJobs
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.ledger.billing import Biller, Completion
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
    complete: tuple[Attempt, ...]  # attempts whose last image is in this batch


@dataclass(frozen=True)
class _Failed:
    attempts: tuple[Attempt, ...]
    message: str
    retryable: bool


class Settler:
    """Stores, prices and settles rendered batches for one worker; see the module docstring."""

    def __init__(
        self,
        store: JobStore,
        artifacts: ArtifactStore,
        pricing: WorkerPricing,
        held: HeldJobs,
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
        self._held = held
        self._worker_id = worker_id
        self._stats = stats
        self._embed = embed
        self._on_settled = on_settled
        self._pipelined = pipelined
        self._stats_lock = threading.Lock()  # the loop reads the stats while this thread adds to them
        self._queue: queue.Queue[_Rendered | _Failed | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None

    # -- the worker loop's side -------------------------------------------------------------------

    def submit(self, plan: BatchPlan, result: RenderResult, complete: Sequence[Attempt]) -> None:
        """Store ``result``'s images, then settle the ``complete`` attempts (blocks while the queue is
        full)."""
        self._put(_Rendered(plan, result, tuple(complete)))

    def fail(self, attempts: Sequence[Attempt], message: str, *, retryable: bool) -> None:
        """Record that ``attempts`` failed (after what was submitted before)."""
        self._put(_Failed(tuple(attempts), message, retryable))

    def wait_idle(self) -> None:
        """Return once everything submitted has been handled."""
        if self._pipelined:
            self._queue.join()

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
                self._record_failure(work.attempts, work.message, work.retryable)
                return
            attempts = self._held.attempts_in(work.plan.batch_id)
            try:
                self._store_images(work.plan, work.result, attempts)
            except Exception as exc:  # disk full, pricing gap: the batch's jobs fail and are retried
                logger.exception("storing a batch failed", extra={"fields": {"batch_id": work.plan.batch_id}})
                self._record_failure(tuple(attempts.values()), f"{type(exc).__name__}: {exc}", retryable=True)
                return
            self._settle_all(work.complete)
        except Exception:  # never let the settling thread die: its jobs' leases run out and they rerun
            logger.exception("settling failed")

    def _store_images(self, plan: BatchPlan, result: RenderResult, attempts: dict[str, Attempt]) -> None:
        device_lines = self._pricing.device_lines(plan, result)
        for rendered, lines in zip(result.images, device_lines, strict=True):
            attempt = attempts.get(rendered.item.job_id)
            if attempt is None:  # failed, cancelled or claimed again meanwhile
                continue
            before = self._held.charged_before(attempt, rendered.item.image_index)
            days = attempt.job.request.retention.granted_days
            priced = (*((before,) if before else ()), *lines)
            ref, receipt = self._store_one(rendered, priced, days, result.weights_sha256)
            image = StoredImage(
                rendered.item.image_index, ref, rendered.seed, receipt, plan.batch_id, result.device
            )
            self._held.image_stored(attempt, image)

    def _store_one(
        self,
        rendered: RenderedImage,
        priced_lines: tuple[CostLine, ...],
        retention_days: int,
        weights_sha256: str,
    ) -> tuple[ArtifactRef, Receipt]:
        """Store one image with its receipt (``priced_lines`` and a storage line) embedded. The storage
        line prices the stored file, which holds the receipt, kept ``retention_days``, so the size is
        iterated to a fixed point (it settles in two rounds)."""
        size = len(rendered.data)
        spec = replace(rendered.item.spec, seed=rendered.seed)
        output_format = OutputFormat.from_media_type(rendered.media_type)
        for _ in range(EMBED_ROUNDS):
            storage = self._pricing.storage_line(rendered.item, size, retention_days, output_format)
            receipt = Receipt((*priced_lines, storage))
            data = self._embed(
                rendered.data,
                rendered.media_type,
                receipt_payload(spec, receipt, weights_sha256=weights_sha256),
            )
            if len(data) == size:
                break
            size = len(data)
        ref = self._artifacts.put(data, media_type=rendered.media_type, suffix=output_format.suffix)
        return ref, receipt

    def _settle_all(self, attempts: Sequence[Attempt]) -> None:
        """Complete the jobs one batch finished, in one transaction (``Biller.complete_many``): fewer
        statements, so less of the GIL the next render needs. Job by job when that fails, so one bad
        job leaves the others completed."""
        ready = [
            (attempt, found) for attempt in attempts if (found := self._held.assembly(attempt)) is not None
        ]
        if len(ready) < 2:
            for attempt, _ in ready:
                self._settle(attempt)
            return
        completions = [
            Completion(a.job_id, assembly.result(), tuple(assembly.artifacts)) for a, assembly in ready
        ]
        try:
            outcomes = self._biller.complete_many(self._worker_id, completions)
        except Exception:  # nothing was written: find the job at fault one by one
            logger.warning("completing a batch at once failed; completing its jobs one by one", exc_info=True)
            for attempt, _ in ready:
                self._settle(attempt)
            return
        for (attempt, assembly), outcome in zip(ready, outcomes, strict=True):
            self._completed(attempt, assembly, outcome)

    def _settle(self, attempt: Attempt) -> None:
        """Complete one job: result, cost lines and artifact rows in one transaction."""
        assembly = self._held.assembly(attempt)
        if assembly is None:  # failed meanwhile
            return
        job_id = attempt.job_id
        try:
            outcome: Job | Conflict | NotFound = self._biller.complete(
                job_id, self._worker_id, assembly.result(), assembly.artifacts
            )
        except (Conflict, NotFound) as exc:
            outcome = exc
        except Exception:  # nothing was written; once its lease runs out the job is rendered again
            logger.exception("completing a job failed", extra={"fields": {"job_id": job_id}})
            self._held.settled(attempt)
            return
        self._completed(attempt, assembly, outcome)

    def _completed(self, attempt: Attempt, assembly: JobAssembly, outcome: Job | Conflict | NotFound) -> None:
        job_id = attempt.job_id
        if isinstance(outcome, (Conflict, NotFound)):  # cancelled, or the lease went to another worker
            logger.warning("job not completed: %s", outcome.message, extra={"fields": {"job_id": job_id}})
            self._held.settled(attempt)
            self._notify(job_id, None, outcome.message)
            return
        with self._stats_lock:
            self._stats.jobs_succeeded += 1
            self._stats.cost += assembly.cost
        self._held.settled(attempt)
        self._notify(job_id, outcome, None)

    def _record_failure(self, attempts: Sequence[Attempt], message: str, retryable: bool) -> None:
        for attempt in attempts:
            if not self._held.holds(attempt):  # let go meanwhile: the job may be another attempt's now
                continue
            try:
                self._store.fail(attempt.job_id, self._worker_id, message, retryable=retryable)
            except (Conflict, NotFound):
                pass  # no longer ours to fail
            except Exception:  # its lease runs out and it is retried like a crashed worker's job
                logger.exception("recording a failure failed", extra={"fields": {"job_id": attempt.job_id}})
            with self._stats_lock:
                self._stats.jobs_failed += 1
            self._held.failed(attempt)
            self._notify(attempt.job_id, None, message)

    def _notify(self, job_id: str, job: Job | None, error: str | None) -> None:
        if self._on_settled is not None:
            self._on_settled(job_id, job, error)
