"""Open the configured artifact store: an ``s3://bucket/prefix`` URL, else the local folder."""

from __future__ import annotations

from pathlib import Path

from rendercost.artifacts.local import LocalArtifactStore
from rendercost.artifacts.protocol import ArtifactStore


def open_artifact_store(artifacts_url: str | None, local_dir: Path) -> ArtifactStore:
    """The store ``artifacts_url`` names (``s3://...``: S3, endpoint/region/credentials from the AWS
    environment), or a ``LocalArtifactStore`` at ``local_dir`` when it is None or empty.
    ``InvalidRequest`` for a URL of another scheme."""
    if not artifacts_url:
        return LocalArtifactStore(local_dir)
    from rendercost.artifacts.s3 import S3ArtifactStore, S3Location  # boto3: only when S3 is used

    return S3ArtifactStore(S3Location.parse(artifacts_url))
