"""The sweeper: delete stored files whose every reference has expired; keep their rows, dated.

An ``artifacts`` row is one reference to a content-addressed key (two images with equal bytes share a
key), kept until its ``expires_at``. A key is expired when it has a row not yet deleted and none of
its rows is live (not deleted, and ``expires_at`` NULL or later than now). For each expired key, in
key order:

1. read the file's bytes (to put back in step 4 if needed);
2. in one transaction, set ``deleted_at`` on the key's rows, on condition that still no row is live
   (a reference that arrived since the key was listed keeps the file: nothing is marked);
3. delete the file from the store (local folder or S3);
4. look again: a reference that committed between steps 2 and 3 (a repeat render of the same bytes,
   an exact-cache answer) is live and names a file just deleted, so the bytes are put back.

A writer stores its file (a cache answer: reads it) before it writes its row, so the one order these
steps cannot see is a writer that found the file still there before step 3 and whose row commits after
step 4 (the milliseconds of steps 3-4); nothing repairs that file, and ``GET`` of the image is 404.

The sweeper never touches the ledger: what a file cost was priced when it was stored (for the days
granted). ``artifacts.maintenance`` runs a sweep every ``artifact_sweep_interval_s`` in a server or
worker process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from rendercost.artifacts.protocol import ArtifactStore
from rendercost.artifacts.tables import artifacts
from rendercost.db.clock import Clock, utcnow
from rendercost.errors import Gone, NotFound

logger = logging.getLogger(__name__)

BATCH = 200  # keys looked up per query


@dataclass(frozen=True)
class SweptFile:
    """One file the sweeper deleted (or put back)."""

    key: str
    size_bytes: int
    rows: int  # references marked deleted
    restored: bool = False  # a reference arrived during the sweep: the bytes were put back


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    at: datetime  # the sweep's "now"
    files: tuple[SweptFile, ...]

    @property
    def files_deleted(self) -> int:
        return sum(1 for file in self.files if not file.restored)

    @property
    def bytes_freed(self) -> int:
        return sum(file.size_bytes for file in self.files if not file.restored)

    @property
    def rows_marked(self) -> int:
        return sum(file.rows for file in self.files)

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "files_deleted": self.files_deleted,
            "bytes_freed": self.bytes_freed,
            "rows_marked": self.rows_marked,
            "restored": sum(1 for file in self.files if file.restored),
        }


def _live(key: ColumnElement[str], now: datetime) -> ColumnElement[bool]:
    """A row of ``key`` that still keeps its file."""
    ref = artifacts.alias("ref")
    return exists(
        select(ref.c.id).where(
            ref.c.key == key,
            ref.c.deleted_at.is_(None),
            or_(ref.c.expires_at.is_(None), ref.c.expires_at > now),
        )
    )


class ArtifactSweeper:
    """Deletes expired files from one store; safe to run in several processes at once (each key's
    rows are marked by one conditional UPDATE; deleting an absent file is not an error)."""

    def __init__(self, engine: Engine, store: ArtifactStore, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._store = store
        self._clock = clock

    def expired_keys(self, now: datetime, *, after: str = "", limit: int = BATCH) -> list[str]:
        """Up to ``limit`` expired keys greater than ``after``, in key order."""
        query = (
            select(artifacts.c.key)
            .where(
                artifacts.c.key > after,
                artifacts.c.deleted_at.is_(None),
                artifacts.c.expires_at <= now,
                ~_live(artifacts.c.key, now),
            )
            .group_by(artifacts.c.key)
            .order_by(artifacts.c.key)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def sweep(self, now: datetime | None = None) -> SweepReport:
        """Blocking. Delete every file expired at ``now`` (default: the clock's now). A key whose
        store call fails is logged and left for the next sweep."""
        at = now or self._clock()
        swept: list[SweptFile] = []
        after = ""
        while keys := self.expired_keys(at, after=after):
            for key in keys:
                try:
                    file = self._sweep_key(key, at)
                except Exception:  # the store is down: the rows stay unmarked, the next sweep retries
                    logger.exception("sweeping an artifact failed", extra={"fields": {"key": key}})
                    continue
                if file is not None:
                    swept.append(file)
            after = keys[-1]
        report = SweepReport(at, tuple(swept))
        if swept:
            logger.info("artifacts swept", extra={"fields": report.to_dict()})
        return report

    def _sweep_key(self, key: str, now: datetime) -> SweptFile | None:
        data = self._read(key)
        with self._engine.begin() as conn:
            size, media_type = _size_and_type(conn, key)
            rows = conn.execute(
                update(artifacts)
                .where(artifacts.c.key == key, artifacts.c.deleted_at.is_(None), ~_live(artifacts.c.key, now))
                .values(deleted_at=now)
            ).rowcount
        if not rows:
            return None  # a reference arrived: the file stays
        self._store.delete(key)
        if not self._is_live(key, now):
            return SweptFile(key, size, rows)
        if data is not None:
            self._store.put(data, media_type=media_type, suffix=_suffix(key))
        logger.warning("an artifact was referenced while it was swept", extra={"fields": {"key": key}})
        return SweptFile(key, size, rows, restored=data is not None)

    def _read(self, key: str) -> bytes | None:
        try:
            return self._store.get(key)
        except NotFound:
            return None

    def _is_live(self, key: str, now: datetime) -> bool:
        with self._engine.connect() as conn:
            found = conn.execute(select(_live(artifacts.c.key, now)).where(artifacts.c.key == key)).first()
        return found is not None and bool(found[0])


def _size_and_type(conn: Connection, key: str) -> tuple[int, str]:
    size, media_type = func.max(artifacts.c.size_bytes), func.max(artifacts.c.media_type)
    row = conn.execute(select(size, media_type).where(artifacts.c.key == key)).one()
    return int(row[0] or 0), str(row[1] or "application/octet-stream")


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return name.partition(".")[2]


class ArtifactIndex:
    """Reads of the artifact rows' lifecycle for the routes that serve images."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def check_not_deleted(self, job_id: str, image_index: int) -> None:
        """Blocking. ``Gone`` (410 ``artifact_expired``) when the sweeper deleted this image's file."""
        with self._engine.connect() as conn:
            deleted = conn.execute(
                select(artifacts.c.deleted_at).where(
                    and_(artifacts.c.job_id == job_id, artifacts.c.image_index == image_index)
                )
            ).scalar_one_or_none()
        if deleted is not None:
            raise Gone(
                f"image {image_index} of job {job_id} was deleted on {deleted.date().isoformat()}: its "
                "retention ran out (ask for a longer retention_days when rendering)",
                param="image_id",
            )
