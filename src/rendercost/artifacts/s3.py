"""S3ArtifactStore: objects in an S3-compatible bucket, content-addressed like the local store.

A file with SHA-256 ``abcdef...`` and suffix ``png`` is the object ``PREFIX/ab/cd/abcdef....png``; its
key (what callers and the database see) is ``ab/cd/abcdef....png``, the same as in a local folder. A put
is one PutObject carrying the bytes' SHA-256 checksum: S3 makes an object visible whole or not at all,
and refuses a body that does not match, so there are no temp objects and nothing to sweep.

Presigned GET URLs are signed with SigV4 at the instant the store's clock gives (injectable, so the
``X-Amz-Date`` / ``X-Amz-Expires`` a URL carries can be checked; moto enforces neither).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3  # type: ignore[import-untyped]
from botocore.auth import SIGV4_TIMESTAMP, S3SigV4QueryAuth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import ClientError, NoCredentialsError  # type: ignore[import-untyped]

from rendercost.artifacts.keys import content_key, is_key
from rendercost.artifacts.protocol import ArtifactRef, PresignedUrl
from rendercost.errors import InvalidRequest, NotFound

BACKEND = "s3"  # the catalog's storage backend for this store
_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class S3Location:
    """Where the store's objects go: ``s3://bucket/prefix``."""

    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket`` or ``s3://bucket/some/prefix``; ``InvalidRequest`` for anything else."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise InvalidRequest(
                f"artifacts_url {url!r} must look like s3://bucket/prefix", param="artifacts_url"
            )
        prefix = parts.path.strip("/")
        return cls(bucket=parts.netloc, prefix=f"{prefix}/" if prefix else "")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class S3ArtifactStore:
    """An ``ArtifactStore`` over one bucket and prefix; safe to share between threads (boto3 clients
    are). Endpoint, region and credentials come from the AWS environment / boto3's chain unless given."""

    backend = BACKEND

    def __init__(
        self,
        location: S3Location,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.location = location
        self._session = boto3.session.Session(region_name=region)
        self._client: Any = self._session.client(
            "s3", endpoint_url=endpoint_url, config=Config(signature_version="s3v4")
        )
        self._clock = clock

    def put(self, data: bytes, *, media_type: str, suffix: str) -> ArtifactRef:
        """Store ``data`` under its content address with one PutObject; same bytes, same key."""
        key, digest = content_key(data, suffix)
        if not self.exists(key):
            self._client.put_object(
                Bucket=self.location.bucket,
                Key=self._object(key),
                Body=data,
                ContentType=media_type,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),  # S3 refuses a torn body
            )
        return ArtifactRef(key=key, size_bytes=len(data), sha256=digest, media_type=media_type)

    def get(self, key: str) -> bytes:
        try:
            reply = self._client.get_object(Bucket=self.location.bucket, Key=self._checked(key))
        except ClientError as error:
            if _error_code(error) in _MISSING:
                raise NotFound(f"artifact {key} not found") from None
            raise
        body: bytes = reply["Body"].read()
        return body

    def exists(self, key: str) -> bool:
        if not is_key(key):
            return False
        try:
            self._client.head_object(Bucket=self.location.bucket, Key=self._object(key))
        except ClientError as error:
            if _error_code(error) in _MISSING:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """Remove the object; deleting an absent key is not an error (S3's own rule)."""
        self._client.delete_object(Bucket=self.location.bucket, Key=self._checked(key))

    @property
    def client(self) -> Any:
        """The boto3 S3 client (bucket-level calls: ``artifacts.s3_lifecycle``)."""
        return self._client

    def set_tag(self, key: str, name: str, value: str) -> None:
        """Make ``{name: value}`` the object's tag set (the lifecycle rules match it)."""
        tag_set = {"TagSet": [{"Key": name, "Value": value}]}
        self._client.put_object_tagging(Bucket=self.location.bucket, Key=self._checked(key), Tagging=tag_set)

    def tags(self, key: str) -> dict[str, str]:
        """The object's tags."""
        reply = self._client.get_object_tagging(Bucket=self.location.bucket, Key=self._checked(key))
        return {str(tag["Key"]): str(tag["Value"]) for tag in reply.get("TagSet", [])}

    def local_path(self, key: str) -> str | None:
        """Always None: read the bytes with ``get``."""
        return None

    def presigned_url(self, key: str, lifetime_s: int) -> PresignedUrl | None:
        """A GET URL for ``key`` valid ``lifetime_s`` seconds from the store clock's now."""
        if lifetime_s <= 0:
            return None
        now = self._clock().astimezone(UTC).replace(microsecond=0)
        unsigned = self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.location.bucket, "Key": self._checked(key)},
            ExpiresIn=lifetime_s,
        )
        url = self._sign_at(unsigned, lifetime_s, now)
        return PresignedUrl(url=url, expires_at=now + timedelta(seconds=lifetime_s))

    def _sign_at(self, presigned: str, lifetime_s: int, now: datetime) -> str:
        """``presigned`` (botocore's URL: endpoint, addressing style, path) signed again at ``now``."""
        parts = urlsplit(presigned)
        request = AWSRequest(method="GET", url=urlunsplit((*parts[:3], "", "")))
        credentials = self._session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        frozen = credentials.get_frozen_credentials()
        auth = _QueryAuthAt(frozen, self._client.meta.region_name, lifetime_s, now)
        auth.add_auth(request)
        url: str = request.url
        return url

    def _checked(self, key: str) -> str:
        if not is_key(key):
            raise NotFound(f"artifact {key} not found")
        return self._object(key)

    def _object(self, key: str) -> str:
        return f"{self.location.prefix}{key}"


class _QueryAuthAt(S3SigV4QueryAuth):  # type: ignore[misc]
    """botocore's S3 query-string (presigned URL) SigV4 signer, signing at a given instant instead
    of botocore's wall clock; the steps are ``SigV4Auth.add_auth``'s."""

    def __init__(self, credentials: Any, region: str, expires: int, at: datetime) -> None:
        super().__init__(credentials, "s3", region, expires=expires)
        self._at = at

    def add_auth(self, request: Any) -> None:
        request.context["timestamp"] = self._at.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        signature = self.signature(self.string_to_sign(request, canonical), request)
        self._inject_signature_to_request(request, signature)


def _error_code(error: Any) -> str:
    code: str = error.response.get("Error", {}).get("Code", "")
    return code
