"""The artifact rows of a job's images: which stored file each image is, and until when it is kept.

``record_artifacts`` writes them in the caller's transaction (the Biller's, with the job row and its cost
lines), so an image is billed, indexed and given its expiry at once or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Connection

from rendercost.artifacts.protocol import ArtifactRef
from rendercost.artifacts.tables import artifacts
from rendercost.db.upsert import insert_ignoring_conflicts
from rendercost.domain.jobs import Job


def record_artifacts(conn: Connection, job: Job, refs: Sequence[tuple[ArtifactRef, int]]) -> None:
    """Record ``(artifact, image_index)`` rows of ``job`` in ``conn``'s transaction; a row already there
    for (job, image index) stays. Each row expires the request's granted retention
    (``RenderRequest.retention.granted_days``) after it is written, the days its storage line priced.
    ``ValueError`` for an index outside the job's images."""
    record_artifacts_of(conn, [(job, refs)])


def record_artifacts_of(
    conn: Connection, jobs: Sequence[tuple[Job, Sequence[tuple[ArtifactRef, int]]]]
) -> None:
    """``record_artifacts`` for several jobs in one statement; ``ValueError`` (nothing written) for any
    index outside its job's images."""
    rows = []
    for job, refs in jobs:
        bad = [index for _ref, index in refs if not 0 <= index < job.request.n]
        if bad:
            raise ValueError(f"artifact image indexes {bad} outside 0..{job.request.n - 1} for job {job.id}")
        created = job.finished_at or job.created_at
        days = job.request.retention.granted_days  # what the storage lines priced
        rows += [
            {
                "key": ref.key,
                "size_bytes": ref.size_bytes,
                "sha256": ref.sha256,
                "media_type": ref.media_type,
                "job_id": job.id,
                "image_index": index,
                "tenant": job.tenant,
                "created_at": created,
                "retention_days": days,
                "expires_at": created + timedelta(days=days),
            }
            for ref, index in refs
        ]
    if rows:
        conn.execute(insert_ignoring_conflicts(conn, artifacts, ("job_id", "image_index")).values(rows))
