"""Storage lifecycle per request class through the real app, worker, ledger and stores (the model is
the painter at its seam): a draft is written as WebP and priced for the one day it is kept; after the
sweep its file is gone (local folder and moto S3), its row has ``deleted_at`` and fetching it is 410; a
request that asks for longer is priced for what it asked; an ask above the cap is 400, nothing queued."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from rendercost.artifacts.tables import artifacts
from rendercost.domain.money import quantize
from rendercost.ledger.catalog import PriceCatalog
from rendercost.queue.tables import jobs
from tests.fixtures.s3 import S3Bucket
from tests.unit.api.conftest import Api, ApiFactory
from tests.unit.api.test_jobs import wait_done

DRAFT = {"X-Render-Class": "draft"}


def storage_line(job: dict[str, Any]) -> dict[str, Any]:
    (line,) = [line for line in job["receipt"]["lines"] if line["stage"] == "storage"]
    return line


def expected_cost(size_bytes: int, days: int, backend: str) -> Decimal:
    """The catalog's GB-month price x bytes (GB = 2**30) x days (month = 30 days), plus one PUT."""
    prices = PriceCatalog.load(None).storage_prices(backend, "us-east-1")
    kept = Decimal(size_bytes) / Decimal(2**30) * Decimal(days) / Decimal(30) * prices.gb_month
    return quantize(kept + prices.put_per_1000 / Decimal(1000))


def artifact_row(api: Api, job_id: str) -> Any:
    with api.server.engine.connect() as conn:
        return conn.execute(select(artifacts).where(artifacts.c.job_id == job_id)).one()


def render_draft(api: Api, **body: Any) -> dict[str, Any]:
    submitted = api.client.post(
        "/v1/jobs", json={"prompt": "a draft chair", "seed": 7, **body}, headers={**api.headers(), **DRAFT}
    )
    assert submitted.status_code == 202, submitted.text
    job = wait_done(api, submitted.json()["id"])
    assert job["state"] == "succeeded"
    return job


def sweep_after(api: Api, job_id: str, delay: timedelta) -> None:
    maintenance = api.server.maintenance
    assert maintenance is not None
    maintenance.maintenance.sweeper.sweep(artifact_row(api, job_id).created_at + delay)


def check_expired_draft(api: Api, job: dict[str, Any], backend: str) -> None:
    """The draft's receipt priced one day exactly; after the sweep its file is gone and it is 410."""
    line = storage_line(job)
    image = job["results"][0]
    size = line["details"]["bytes"]
    assert line["details"]["retention_days"] == 1 and line["details"]["backend"] == backend
    assert Decimal(line["cost_usd"]) == expected_cost(size, 1, backend)
    assert image["media_type"] == "image/webp"  # the class's format: none was asked
    row = artifact_row(api, job["id"])
    assert (row.retention_days, row.size_bytes) == (1, size)
    assert row.expires_at == row.created_at + timedelta(days=1) and row.deleted_at is None
    assert api.client.get(f"/v1/images/{image['id']}", headers=api.headers()).status_code == 200

    sweep_after(api, job["id"], timedelta(days=1, seconds=1))
    assert not api.server.services.artifacts.exists(row.key)
    assert artifact_row(api, job["id"]).deleted_at is not None
    for accept in ({}, {"Accept": "image/webp"}):
        gone = api.client.get(f"/v1/images/{image['id']}", headers={**api.headers(), **accept})
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "artifact_expired"
    other = api.new_key("globex")  # another tenant learns nothing: 404, not 410
    assert api.client.get(f"/v1/images/{image['id']}", headers=api.headers(other)).status_code == 404


def test_an_expired_draft_is_swept_from_the_local_store(make_api: ApiFactory, tmp_path: Path) -> None:
    api = make_api()
    job = render_draft(api)
    key = artifact_row(api, job["id"]).key
    assert (tmp_path / "artifacts" / key).is_file()
    check_expired_draft(api, job, "local")
    assert not (tmp_path / "artifacts" / key).exists()


@pytest.mark.slow
def test_an_expired_draft_is_swept_from_the_bucket(make_api: ApiFactory, s3_bucket: S3Bucket) -> None:
    api = make_api(artifacts_url=f"s3://{s3_bucket.name}/images")
    job = render_draft(api)
    key = artifact_row(api, job["id"]).key
    assert s3_bucket.object_keys() == [f"images/{key}"]
    check_expired_draft(api, job, "s3")
    assert s3_bucket.object_keys() == []


def test_a_longer_retention_is_granted_and_priced(api: Api) -> None:
    job = render_draft(api, retention_days=90, output_format="png")
    line = storage_line(job)
    assert line["details"]["retention_days"] == 90
    assert Decimal(line["cost_usd"]) == expected_cost(line["details"]["bytes"], 90, "local")
    assert job["results"][0]["media_type"] == "image/png"  # an asked format wins over the class's
    row = artifact_row(api, job["id"])
    assert row.expires_at == row.created_at + timedelta(days=90)
    assert job["request"]["extra"]["retention_days"] == 90
    sweep_after(api, job["id"], timedelta(days=30))
    assert api.server.services.artifacts.exists(row.key)  # a draft's day does not apply


def test_requests_without_a_class_keep_the_default(api: Api) -> None:
    submitted = api.client.post("/v1/jobs", json={"prompt": "no class", "seed": 1}, headers=api.headers())
    job = wait_done(api, submitted.json()["id"])
    assert storage_line(job)["details"]["retention_days"] == 30
    assert job["results"][0]["media_type"] == "image/png"


def test_the_images_api_takes_retention_days(api: Api) -> None:
    body = {"prompt": "a final chair", "size": "64x64", "seed": 2, "retention_days": 45}
    reply = api.client.post(
        "/v1/images/generations", json=body, headers={**api.headers(), "X-Render-Class": "final"}
    )
    assert reply.status_code == 200, reply.text
    job_id = reply.json()["rendercost"]["job_id"]
    assert artifact_row(api, job_id).retention_days == 45


@pytest.mark.parametrize("days", [366, 0])
def test_a_retention_outside_the_limits_is_400_and_nothing_is_queued(api: Api, days: int) -> None:
    for path, body in (
        ("/v1/jobs", {"prompt": "forever", "retention_days": days}),
        ("/v1/images/generations", {"prompt": "forever", "size": "64x64", "retention_days": days}),
    ):
        refused = api.client.post(path, json=body, headers=api.headers())
        assert refused.status_code == 400, path
        error = refused.json()["error"]
        assert error["param"] == "retention_days"
        assert error["code"] == ("retention_too_long" if days > 365 else "invalid_request")
    with api.server.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar_one() == 0


def test_the_cap_and_the_classes_are_settings(make_api: ApiFactory) -> None:
    api = make_api(
        artifact_max_retention_days=10,
        artifact_classes={"draft": {"retention_days": 3, "output_format": "jpeg"}},
    )
    job = render_draft(api)
    assert storage_line(job)["details"]["retention_days"] == 3
    assert job["results"][0]["media_type"] == "image/jpeg"
    refused = api.client.post("/v1/jobs", json={"prompt": "x", "retention_days": 11}, headers=api.headers())
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "retention_too_long"
