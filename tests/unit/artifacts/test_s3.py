"""S3ArtifactStore against a real moto_server on loopback: content addressing (the local store's keys),
one-PutObject atomic puts, presigned GET URLs signed at the store's clock, and the store factory."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from rendercost.artifacts.factory import open_artifact_store
from rendercost.artifacts.local import LocalArtifactStore
from rendercost.artifacts.s3 import S3ArtifactStore, S3Location
from rendercost.errors import InvalidRequest, NotFound
from tests.fixtures.s3 import REGION, S3Bucket

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_store(bucket: S3Bucket, prefix: str = "renders", **kwargs: object) -> S3ArtifactStore:
    return S3ArtifactStore(S3Location.parse(f"s3://{bucket.name}/{prefix}"), **kwargs)  # type: ignore[arg-type]


def test_round_trip_with_the_local_stores_keys_under_the_prefix(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    store = make_store(s3_bucket)
    ref = store.put(b"pixels", media_type="image/png", suffix=".PNG")
    digest = hashlib.sha256(b"pixels").hexdigest()
    assert ref.key == f"{digest[:2]}/{digest[2:4]}/{digest}.png"
    assert ref.key == LocalArtifactStore(tmp_path).put(b"pixels", media_type="image/png", suffix="png").key
    assert (ref.sha256, ref.size_bytes, ref.media_type) == (digest, 6, "image/png")
    assert s3_bucket.object_keys() == [f"renders/{ref.key}"]
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=f"renders/{ref.key}")
    assert head["ContentType"] == "image/png"
    assert store.get(ref.key) == b"pixels"
    assert store.exists(ref.key)
    assert store.local_path(ref.key) is None
    assert store.backend == "s3"


def test_same_bytes_same_object_different_bytes_different_keys(s3_bucket: S3Bucket) -> None:
    store = make_store(s3_bucket, prefix="")
    first = store.put(b"a", media_type="image/png", suffix="png")
    assert store.put(b"a", media_type="image/png", suffix="png") == first
    other = store.put(b"b", media_type="image/png", suffix="png")
    assert other.key != first.key
    assert s3_bucket.object_keys() == sorted([first.key, other.key])


def test_missing_and_malformed_keys_are_not_found(s3_bucket: S3Bucket) -> None:
    store = make_store(s3_bucket)
    with pytest.raises(NotFound):
        store.get("00/00/" + "0" * 64 + ".png")
    with pytest.raises(NotFound):
        store.get("../../etc/passwd")
    assert not store.exists("00/00/" + "0" * 64 + ".png")
    assert not store.exists("../x")


def test_delete_removes_and_tolerates_absence(s3_bucket: S3Bucket) -> None:
    store = make_store(s3_bucket)
    ref = store.put(b"x", media_type="image/png", suffix="png")
    store.delete(ref.key)
    assert not store.exists(ref.key)
    assert s3_bucket.object_keys() == []
    store.delete(ref.key)


def test_bad_suffix_and_bad_url_are_refused(s3_bucket: S3Bucket) -> None:
    with pytest.raises(InvalidRequest):
        make_store(s3_bucket).put(b"x", media_type="image/png", suffix="../png")
    for url in ("http://bucket/prefix", "s3:///prefix", "s3://bucket/p?x=1"):
        with pytest.raises(InvalidRequest):
            S3Location.parse(url)
    assert S3Location.parse("s3://b") == S3Location("b", "")
    assert S3Location.parse("s3://b/a/c/") == S3Location("b", "a/c/")


class CuttingProxy:
    """A loopback TCP proxy to the S3 server that forwards only the first ``limit`` bytes a client
    sends on each connection, then drops it: an upload that fails part-way through its body."""

    def __init__(self, target_port: int, limit: int) -> None:
        self.target_port, self.limit = target_port, limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._cut, args=(client,), daemon=True).start()

    def _cut(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._answer, args=(upstream, client), daemon=True).start()
        sent = 0
        with client, upstream:
            while sent < self.limit:
                chunk = client.recv(min(65536, self.limit - sent))
                if not chunk:
                    break
                upstream.sendall(chunk)
                sent += len(chunk)

    @staticmethod
    def _answer(upstream: socket.socket, client: socket.socket) -> None:
        """The server's replies go back whole (a HEAD, say, is answered as usual)."""
        try:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def cutting_proxy(s3_bucket: S3Bucket) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(int(urlsplit(s3_bucket.endpoint_url).port or 0), limit=16384)
    yield proxy
    proxy.close()


def test_an_upload_cut_mid_body_leaves_no_object(s3_bucket: S3Bucket, cutting_proxy: CuttingProxy) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: the proxy passes the headers and a part of the body
    broken = make_store(s3_bucket, endpoint_url=f"http://127.0.0.1:{cutting_proxy.port}")
    with pytest.raises(Exception):  # noqa: B017 - whatever botocore raises for a dropped connection
        broken.put(data, media_type="image/png", suffix="png")
    assert cutting_proxy.connections >= 1
    assert s3_bucket.object_keys() == []  # no partial object, no temp object
    ref = make_store(s3_bucket).put(data, media_type="image/png", suffix="png")
    assert make_store(s3_bucket).get(ref.key) == data


def test_presigned_url_says_the_lifetime_from_the_stores_clock(s3_bucket: S3Bucket) -> None:
    store = make_store(s3_bucket, clock=lambda: NOW)
    ref = store.put(b"signed pixels", media_type="image/png", suffix="png")
    link = store.presigned_url(ref.key, 900)
    assert link is not None
    assert link.expires_at == NOW + timedelta(seconds=900)
    parts = urlsplit(link.url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert parts.path == f"/{s3_bucket.name}/renders/{ref.key}"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Date"] == "20260102T030405Z"
    assert query["X-Amz-Expires"] == "900"
    assert query["X-Amz-Credential"] == f"testing/20260102/{REGION}/s3/aws4_request"
    assert len(query["X-Amz-Signature"]) == 64
    reply = httpx.get(link.url)  # no API key, no AWS credentials: the URL alone
    assert reply.status_code == 200
    assert reply.content == b"signed pixels"
    assert store.presigned_url(ref.key, 0) is None


def test_presigned_url_is_botocores_signature_at_that_instant(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing at our clock gives exactly the URL botocore itself signs when its clock reads the same."""
    import boto3
    import botocore.auth
    from botocore.config import Config

    store = make_store(s3_bucket, clock=lambda: NOW + timedelta(microseconds=123))
    ref = store.put(b"same signature", media_type="image/png", suffix="png")
    ours = store.presigned_url(ref.key, 3600)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    client = boto3.client("s3", config=Config(signature_version="s3v4"))
    theirs = client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket.name, "Key": f"renders/{ref.key}"}, ExpiresIn=3600
    )
    assert ours is not None
    assert ours.url == theirs


def test_local_store_has_no_presigned_urls(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ref = store.put(b"x", media_type="image/png", suffix="png")
    assert store.presigned_url(ref.key, 900) is None
    assert store.backend == "local"


def test_factory_opens_the_configured_store(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    local = open_artifact_store(None, tmp_path / "artifacts")
    assert isinstance(local, LocalArtifactStore)
    assert local.root == tmp_path / "artifacts"
    remote = open_artifact_store(f"s3://{s3_bucket.name}/p", tmp_path / "unused")
    assert isinstance(remote, S3ArtifactStore)
    ref = remote.put(b"via factory", media_type="image/png", suffix="png")
    assert s3_bucket.object_keys() == [f"p/{ref.key}"]
    assert not (tmp_path / "unused").exists()


def test_settings_refuse_a_url_that_is_not_s3_and_a_lifetime_sigv4_cannot_sign(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from rendercost.settings import Settings

    assert (
        Settings(data_dir=tmp_path, artifacts_url="s3://my-bucket/a/b").artifacts_url == "s3://my-bucket/a/b"
    )
    for bad in (
        {"artifacts_url": "/srv/images"},
        {"artifacts_url": "s3://"},
        {"artifacts_presign_seconds": -1},
    ):
        with pytest.raises(ValidationError):
            Settings(data_dir=tmp_path, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, artifacts_presign_seconds=7 * 24 * 3600 + 1)
