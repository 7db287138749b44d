"""The CLI doors' queue: the settings' embedded store, its one ``Admission`` and burst workers.

``rendercost render`` and ``rendercost batch`` admit their requests through the same front door as the
HTTP API (``admission.front_door``), as tenant ``cli`` with no rate limits, budgets or queue limit,
then render them with a burst worker, so every render is priced, receipted, embedded, stored and
completed the one way the worker does it. What the worker renders fills the exact-result cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rendercost.admission.catalog import ModelCatalog
from rendercost.admission.exact_cache import ExactCache, Fingerprint, SettledHook, storing_hook
from rendercost.admission.front_door import Admission
from rendercost.admission.lifecycle import StoragePolicy
from rendercost.artifacts.factory import open_artifact_store
from rendercost.artifacts.protocol import ArtifactStore
from rendercost.caches.result_cache import ResultCache
from rendercost.ledger.billing import Biller
from rendercost.settings import Settings

if TYPE_CHECKING:
    from rendercost.domain.runner import Runner
    from rendercost.execution.worker.loop import Worker
    from rendercost.execution.worker.pricing import WorkerPricing
    from rendercost.queue.sql_store import SqlJobStore

CLI_TENANT = "cli"  # owner of the jobs the CLI queues


@dataclass(frozen=True)
class LocalQueue:
    """The settings' database and files, and the front door over them."""

    settings: Settings
    store: SqlJobStore
    artifacts: ArtifactStore
    exact: ExactCache
    biller: Biller
    admission: Admission

    def worker(
        self,
        runner: Runner,
        *,
        worker_id: str,
        pricing: WorkerPricing | None = None,
        then: SettledHook | None = None,
    ) -> Worker:
        """A worker over this queue that stores what it renders in the exact-result cache, then calls
        ``then`` (the batch's progress)."""
        from rendercost.execution.worker.setup import build_worker  # imports torch

        return build_worker(
            self.settings,
            self.store,
            runner,
            worker_id=worker_id,
            biller=self.biller,
            artifacts=self.artifacts,
            pricing=pricing,
            on_settled=storing_hook(self.exact, then=then),
        )


@contextmanager
def local_queue(settings: Settings, catalog: ModelCatalog, fingerprint: Fingerprint) -> Iterator[LocalQueue]:
    """The settings' database (migrated; disposed on exit) with its admission for tenant ``cli``."""
    from rendercost.execution.worker.setup import open_job_store  # the stores, alembic

    with open_job_store(settings) as store:
        artifacts = open_artifact_store(settings.artifacts_url, settings.resolved_artifacts_dir)
        cache = ResultCache(store.engine, settings.result_cache_ttl_seconds)
        exact = ExactCache(cache, artifacts, fingerprint)
        biller = Biller.from_settings(store, settings)
        storage = StoragePolicy.from_settings(settings)
        admission = Admission(store=store, biller=biller, catalog=catalog, exact=exact, storage=storage)
        yield LocalQueue(settings, store, artifacts, exact, biller, admission)
