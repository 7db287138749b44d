"""The sweeper over real artifact rows (SQLite and PostgreSQL) and real stores (a local folder, a moto
S3 server): a file goes once every reference to its key has expired, its rows stay with ``deleted_at``;
a shared key stays while one reference lives; a reference that arrives mid-sweep gets its bytes back."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from rendercost.artifacts.local import LocalArtifactStore
from rendercost.artifacts.maintenance import MaintenanceThread, build_maintenance
from rendercost.artifacts.protocol import ArtifactRef, ArtifactStore
from rendercost.artifacts.s3 import S3ArtifactStore, S3Location
from rendercost.artifacts.sweeper import ArtifactIndex, ArtifactSweeper
from rendercost.artifacts.tables import artifacts
from rendercost.errors import Gone
from rendercost.settings import Settings
from rendercost.testing.waiting import wait_until
from tests.fixtures.s3 import S3Bucket

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count()


def reference(engine: Engine, ref: ArtifactRef, *, days: int | None, created: datetime = T0) -> str:
    """One artifact row for ``ref`` (a job's image), kept ``days`` from ``created``; its job id."""
    job_id = f"job_{next(_ids)}"
    with engine.begin() as conn:
        conn.execute(
            insert(artifacts).values(
                key=ref.key,
                size_bytes=ref.size_bytes,
                sha256=ref.sha256,
                media_type=ref.media_type,
                job_id=job_id,
                image_index=0,
                tenant="acme",
                created_at=created,
                retention_days=days,
                expires_at=None if days is None else created + timedelta(days=days),
            )
        )
    return job_id


def deleted_at(engine: Engine, job_id: str) -> datetime | None:
    with engine.connect() as conn:
        value: datetime | None = conn.execute(
            select(artifacts.c.deleted_at).where(artifacts.c.job_id == job_id)
        ).scalar_one()
    return value


def put(store: ArtifactStore, data: bytes) -> ArtifactRef:
    return store.put(data, media_type="image/webp", suffix="webp")


def test_an_expired_file_is_deleted_and_its_row_kept(migrated_engine: Engine, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "art")
    draft = put(store, b"draft bytes")
    final = put(store, b"final bytes")
    draft_job = reference(migrated_engine, draft, days=1)
    final_job = reference(migrated_engine, final, days=30)
    sweeper = ArtifactSweeper(migrated_engine, store)

    assert sweeper.sweep(T0 + timedelta(hours=23)).files == ()  # not yet expired
    report = sweeper.sweep(T0 + timedelta(days=1))  # expires_at <= now: expired
    assert [file.key for file in report.files] == [draft.key]
    assert (report.files_deleted, report.bytes_freed, report.rows_marked) == (1, draft.size_bytes, 1)
    assert not (tmp_path / "art" / draft.key).exists()
    assert (tmp_path / "art" / final.key).exists()
    assert deleted_at(migrated_engine, draft_job) == T0 + timedelta(days=1)
    assert deleted_at(migrated_engine, final_job) is None
    assert sweeper.sweep(T0 + timedelta(days=2)).files == ()  # swept once
    with pytest.raises(Gone) as gone:
        ArtifactIndex(migrated_engine).check_not_deleted(draft_job, 0)
    assert gone.value.code == "artifact_expired" and gone.value.http_status == 410
    ArtifactIndex(migrated_engine).check_not_deleted(final_job, 0)  # still there: no error


def test_a_shared_key_stays_while_one_reference_lives(migrated_engine: Engine, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    same = put(store, b"identical pixels")
    short = reference(migrated_engine, same, days=1)
    long = reference(
        migrated_engine, put(store, b"identical pixels"), days=7, created=T0 + timedelta(hours=1)
    )
    forever = reference(migrated_engine, put(store, b"kept by hand"), days=None)
    sweeper = ArtifactSweeper(migrated_engine, store)

    assert sweeper.sweep(T0 + timedelta(days=3)).files == ()
    assert store.exists(same.key) and deleted_at(migrated_engine, short) is None
    report = sweeper.sweep(T0 + timedelta(days=8))
    assert [(file.key, file.rows) for file in report.files] == [(same.key, 2)]
    assert not store.exists(same.key)
    assert deleted_at(migrated_engine, short) == deleted_at(migrated_engine, long) == T0 + timedelta(days=8)
    assert deleted_at(migrated_engine, forever) is None  # no expiry: never swept


class ReferencedWhileDeleting(LocalArtifactStore):
    """A store whose delete lets a new reference to the key commit first (a repeat render of the
    same bytes finishing in the middle of the sweep)."""

    engine: Engine
    now: datetime

    def delete(self, key: str) -> None:
        data = self.get(key)
        reference(self.engine, ArtifactRef(key, len(data), "0" * 64, "image/webp"), days=30, created=self.now)
        super().delete(key)


def test_a_reference_made_during_the_sweep_gets_its_file_back(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    store = ReferencedWhileDeleting(tmp_path)
    store.engine, store.now = migrated_engine, T0 + timedelta(days=2)
    ref = put(store, b"raced bytes")
    old = reference(migrated_engine, ref, days=1)

    (file,) = ArtifactSweeper(migrated_engine, store).sweep(T0 + timedelta(days=2)).files
    assert file.restored and file.key == ref.key
    assert store.get(ref.key) == b"raced bytes"  # put back for the new reference
    assert deleted_at(migrated_engine, old) is not None  # the expired reference is still marked


def test_an_expired_draft_is_deleted_from_the_bucket(migrated_engine: Engine, s3_bucket: S3Bucket) -> None:
    store = S3ArtifactStore(S3Location.parse(f"s3://{s3_bucket.name}/images"))
    draft = put(store, b"draft in s3")
    final = put(store, b"final in s3")
    draft_job = reference(migrated_engine, draft, days=1)
    reference(migrated_engine, final, days=30)

    report = ArtifactSweeper(migrated_engine, store).sweep(T0 + timedelta(days=1, minutes=1))
    assert [file.key for file in report.files] == [draft.key]
    assert s3_bucket.object_keys() == [f"images/{final.key}"]
    assert deleted_at(migrated_engine, draft_job) == T0 + timedelta(days=1, minutes=1)


def test_the_maintenance_thread_sweeps_on_its_interval(migrated_engine: Engine, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ref = put(store, b"swept by the thread")
    job_id = reference(migrated_engine, ref, days=1, created=datetime.now(UTC) - timedelta(days=2))
    maintenance = build_maintenance(Settings(data_dir=tmp_path), migrated_engine, store)
    thread = MaintenanceThread(maintenance, interval_s=0.05)
    thread.start()
    try:
        wait_until(lambda: not store.exists(ref.key), what="the periodic sweep", timeout_s=30)
    finally:
        thread.stop()
    assert deleted_at(migrated_engine, job_id) is not None
    assert maintenance.reports and maintenance.reports[0].files_deleted == 1
    never = MaintenanceThread(maintenance, interval_s=0)  # 0: off
    never.start()
    never.stop()
