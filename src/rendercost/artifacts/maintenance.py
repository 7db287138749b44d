"""Artifact upkeep in a running process: sweep expired files and, on S3, tag new objects for the
bucket's lifecycle rules (``artifacts.s3_lifecycle``), every ``artifact_sweep_interval_s``.

``build_maintenance(settings, engine, store)`` assembles it; ``MaintenanceThread`` runs it on a daemon
thread in ``rendercost serve`` and ``rendercost worker`` (interval 0: never).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine

from rendercost.artifacts.protocol import ArtifactStore
from rendercost.artifacts.sweeper import ArtifactSweeper, SweepReport
from rendercost.db.clock import Clock, utcnow
from rendercost.settings import Settings

logger = logging.getLogger(__name__)

TAG_LOOKBACK = timedelta(days=1)  # a process that starts tags the references of the last day


class Tagger(Protocol):
    """What tags the objects of new references (``artifacts.s3_lifecycle.S3Tagger``)."""

    def tag_new_references(self, now: datetime) -> int: ...


@dataclass
class Maintenance:
    """One pass: sweep, then tag (S3 only)."""

    sweeper: ArtifactSweeper
    tagger: Tagger | None = None  # an S3Tagger, when the store is S3
    clock: Clock = utcnow
    reports: list[SweepReport] = field(default_factory=list)  # the last few sweeps, newest last

    def run_once(self) -> SweepReport:
        """Blocking. Sweep what expired by now, then tag the objects referenced since the last pass."""
        now = self.clock()
        report = self.sweeper.sweep(now)
        if self.tagger is not None:
            self.tagger.tag_new_references(now)
        self.reports = [*self.reports[-9:], report]
        return report


def build_maintenance(
    settings: Settings, engine: Engine, store: ArtifactStore, *, clock: Clock = utcnow
) -> Maintenance:
    """The upkeep of ``store`` over ``engine``'s artifact rows, as the settings configure it."""
    tagger: Tagger | None = None
    if store.backend == "s3":
        from rendercost.artifacts.s3 import S3ArtifactStore  # boto3: only when S3 is used
        from rendercost.artifacts.s3_lifecycle import S3Tagger, rule_days

        if isinstance(store, S3ArtifactStore):
            rules = rule_days(settings.artifact_class_days, settings.artifact_lifecycle_grace_days)
            tagger = S3Tagger(engine, store, rules, since=clock() - TAG_LOOKBACK)
    return Maintenance(ArtifactSweeper(engine, store, clock=clock), tagger, clock)


class MaintenanceThread:
    """A daemon thread that runs ``maintenance`` every ``interval_s`` until stopped (0: never)."""

    def __init__(self, maintenance: Maintenance, interval_s: float) -> None:
        self.maintenance = maintenance
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="artifact-maintenance", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.maintenance.run_once()
            except Exception:  # the database is down: try again next interval
                logger.exception("artifact maintenance failed")
