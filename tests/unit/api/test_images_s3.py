"""The images API on an S3 artifact store (a real moto_server), over real HTTP (uvicorn on loopback):
a render's image lands in the bucket, is fetchable through the API (key-checked) or, with presigning
on, through the presigned URL alone; its storage line is priced at the catalog's S3 prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rendercost.api.threaded_server import uvicorn_thread
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.pricing import price_storage
from tests.fixtures.s3 import S3Bucket
from tests.unit.api.conftest import ApiFactory

GEN = "/v1/images/generations"


def _storage_lines(job: dict[str, object]) -> list[dict[str, object]]:
    receipt = job["receipt"]
    assert isinstance(receipt, dict)
    return [line for line in receipt["lines"] if line["stage"] == "storage"]


@pytest.mark.slow
def test_render_is_stored_in_the_bucket_and_served_through_the_api(
    make_api: ApiFactory, s3_bucket: S3Bucket
) -> None:
    api = make_api(artifacts_url=f"s3://{s3_bucket.name}/images")
    with uvicorn_thread(api.server.app) as base, httpx.Client(base_url=base, timeout=30) as http:
        reply = http.post(GEN, json={"prompt": "a fox", "size": "64x64", "seed": 3}, headers=api.headers())
        assert reply.status_code == 200, reply.text
        url = reply.json()["data"][0]["url"]
        assert url.startswith(f"{base}/v1/images/job_")  # served through the API
        assert http.get(url, headers={"Accept": "image/png"}).status_code == 401
        raw = http.get(url, headers={**api.headers(), "Accept": "image/png"})
        assert raw.status_code == 200 and raw.content.startswith(b"\x89PNG")
        meta = http.get(url, headers=api.headers()).json()
        assert meta["url"] == url and meta["url_expires_at"] is None
        job = http.get(f"/v1/jobs/{meta['job_id']}", headers=api.headers()).json()
    (key,) = s3_bucket.object_keys()
    assert key.startswith("images/")
    stored = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
    assert stored == raw.content
    (line,) = _storage_lines(job)
    expected = price_storage(
        meta["job_id"],
        0,
        len(stored),
        catalog=PriceCatalog.load(None),
        backend="s3",
        region="us-east-1",
        retention_days=30,
        output_format="png",
    )
    assert line == expected.to_dict()
    assert line["details"]["backend"] == "s3"  # type: ignore[index]
    assert line["unit_price"] == "0.023" and line["details"]["put_price_per_1000"] == "0.005"  # type: ignore[index]


def test_presigned_urls_fetch_the_image_without_a_key(make_api: ApiFactory, s3_bucket: S3Bucket) -> None:
    api = make_api(artifacts_url=f"s3://{s3_bucket.name}", artifacts_presign_seconds=600)
    with uvicorn_thread(api.server.app) as base, httpx.Client(base_url=base, timeout=30) as http:
        reply = http.post(GEN, json={"prompt": "an owl", "size": "64x64", "seed": 4}, headers=api.headers())
        assert reply.status_code == 200, reply.text
        job_id = reply.json()["rendercost"]["job_id"]
        presigned = reply.json()["data"][0]["url"]
        before = datetime.now(UTC).replace(microsecond=0)
        meta = http.get(f"/v1/images/{job_id}-0", headers=api.headers()).json()
        after = datetime.now(UTC)
        through_api = http.get(f"/v1/images/{job_id}-0", headers={**api.headers(), "Accept": "image/png"})
        repeat = http.post(GEN, json={"prompt": "an owl", "size": "64x64", "seed": 4}, headers=api.headers())
    for url in (presigned, meta["url"]):
        assert url.startswith(f"{s3_bucket.endpoint_url}/{s3_bucket.name}/")
        assert "X-Amz-Expires=600" in url and "X-Amz-Signature=" in url
        fetched = httpx.get(url)  # no API key
        assert fetched.status_code == 200
        assert fetched.content == through_api.content
    assert repeat.json()["rendercost"]["cache"]["result"] == "hit"
    cached = repeat.json()["data"][0]["url"]  # a cache answer's URL is presigned too
    assert cached.startswith(f"{s3_bucket.endpoint_url}/{s3_bucket.name}/") and "X-Amz-Expires=600" in cached
    assert httpx.get(cached).content == through_api.content
    expires = datetime.fromisoformat(meta["url_expires_at"])
    assert before + timedelta(seconds=600) <= expires <= after + timedelta(seconds=600)
