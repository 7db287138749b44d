"""The exact-result cache on the async jobs API: a repeat comes back as a job that already succeeded,
never queued, holding the cached files, at $0 with the cost avoided."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from rendercost.artifacts.tables import artifacts
from rendercost.errors import NotFound
from rendercost.ledger.tables import cost_lines
from tests.unit.api.conftest import Api, ApiFactory
from tests.unit.api.test_jobs import wait_done
from tests.unit.api.test_webhooks import _dispatch

JOBS = "/v1/jobs"
BODY = {"prompt": "a lighthouse at dusk", "n": 2, "seed": 21, "size": "64x64"}


def _ledger(api: Api, job_id: str) -> list[dict[str, Any]]:
    with api.server.engine.connect() as conn:
        rows = conn.execute(select(cost_lines).where(cost_lines.c.job_id == job_id)).mappings().all()
    return [dict(row) for row in rows]


def _artifact_rows(api: Api, job_id: str) -> int:
    with api.server.engine.connect() as conn:
        query = select(func.count()).select_from(artifacts).where(artifacts.c.job_id == job_id)
        return int(conn.execute(query).scalar_one())


def _image_bytes(api: Api, job: dict[str, Any], index: int) -> bytes:
    image_id = job["results"][index]["id"]
    response = api.client.get(f"/v1/images/{image_id}", headers={**api.headers(), "Accept": "image/*"})
    assert response.status_code == 200
    return response.content


def _paid(api: Api, headers: dict[str, str] | None = None) -> dict[str, Any]:
    submitted = api.client.post(JOBS, json=BODY, headers=headers or api.headers())
    assert submitted.status_code == 202
    return wait_done(api, submitted.json()["id"])


def test_an_exact_repeat_is_answered_as_a_succeeded_job_without_queuing(api: Api) -> None:
    first = _paid(api)
    assert first["rendercost"]["cache"]["result"] == "miss" and api.runner.calls == [2]
    paid = Decimal(first["rendercost"]["cost_usd"])

    second = api.client.post(JOBS, json=BODY, headers=api.headers())
    assert second.status_code == 202
    job = second.json()
    assert job["id"] != first["id"]
    assert job["state"] == "succeeded" and job["attempts"] == 0 and job["queue_position"] is None
    assert job["rendercost"]["cache"]["result"] == "hit"
    assert Decimal(job["rendercost"]["cost_usd"]) == 0 == Decimal(job["receipt"]["total_usd"])
    assert api.runner.calls == [2]  # nothing rendered
    assert api.client.get("/v1/queue", headers=api.headers()).json()["total"] == 0
    assert [r["seed"] for r in job["results"]] == [21, 22]
    for index in (0, 1):
        assert _image_bytes(api, job, index) == _image_bytes(api, first, index)

    lines = _ledger(api, job["id"])
    assert lines and all(line["cost"] == 0 for line in lines)
    avoided = sum((line["cost_avoided"] for line in lines), Decimal(0))
    assert avoided == paid  # what the paid render cost, stage by stage
    assert sum(Decimal(str(line["cost_avoided_usd"])) for line in job["receipt"]["lines"]) == avoided
    assert _artifact_rows(api, job["id"]) == 2  # the cached files are referenced by the new job too
    assert wait_done(api, job["id"])["state"] == "succeeded"  # and it stays readable like any job


def test_no_cache_renders_again_and_no_store_never_stores(api: Api) -> None:
    _paid(api)
    no_cache = _paid(api, {**api.headers(), "Cache-Control": "no-cache"})
    assert no_cache["rendercost"]["cache"]["result"] == "bypass" and api.runner.calls == [2, 2]

    fresh = {**BODY, "seed": 500}
    no_store = {**api.headers(), "Cache-Control": "no-store"}
    first = api.client.post(JOBS, json=fresh, headers=no_store).json()
    assert wait_done(api, first["id"])["state"] == "succeeded"
    again = api.client.post(JOBS, json=fresh, headers=api.headers()).json()
    assert again["state"] == "queued"  # nothing was stored by the no-store render
    assert wait_done(api, again["id"])["rendercost"]["cache"]["result"] == "miss"


def test_a_random_seed_is_never_answered_from_the_cache(api: Api) -> None:
    body = {**BODY, "seed": -1}
    first = api.client.post(JOBS, json=body, headers=api.headers()).json()
    assert wait_done(api, first["id"])["rendercost"]["cache"]["result"] == "bypass"
    seed = first["request"]["spec"]["seed"]
    repeat = api.client.post(JOBS, json={**BODY, "seed": seed}, headers=api.headers()).json()
    assert repeat["state"] == "queued"  # the random-seed render was not stored


def test_tenants_share_cached_files_but_never_each_others_jobs(api: Api) -> None:
    first = _paid(api)
    other = api.new_key("globex")
    theirs = api.client.post(JOBS, json=BODY, headers=api.headers(other)).json()
    assert theirs["state"] == "succeeded" and theirs["rendercost"]["cache"]["result"] == "hit"
    assert api.client.get(f"/v1/jobs/{first['id']}", headers=api.headers(other)).status_code == 404
    assert api.client.get(f"/v1/jobs/{theirs['id']}", headers=api.headers()).status_code == 404
    tenants = {line["tenant"] for line in _ledger(api, theirs["id"])}
    assert tenants == {"globex"}


def test_an_idempotent_replay_returns_the_first_job_even_once_it_is_cached(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "order-99"}
    first = api.client.post(JOBS, json=BODY, headers=headers).json()
    assert first["state"] in ("queued", "running", "succeeded")
    wait_done(api, first["id"])
    replay = api.client.post(JOBS, json=BODY, headers=headers)
    assert replay.status_code == 202 and replay.json()["id"] == first["id"]
    clash = api.client.post(JOBS, json={**BODY, "prompt": "something else"}, headers=headers)
    assert clash.status_code == 409

    cached_key = {**api.headers(), "Idempotency-Key": "order-100"}
    answered = api.client.post(JOBS, json=BODY, headers=cached_key).json()
    assert answered["state"] == "succeeded" and answered["id"] != first["id"]
    again = api.client.post(JOBS, json=BODY, headers=cached_key).json()
    assert again["id"] == answered["id"]
    assert len(_ledger(api, answered["id"])) == len(answered["receipt"]["lines"])  # written once


def test_a_cached_job_still_sends_its_webhook(make_api: ApiFactory) -> None:
    api = make_api(webhooks=False)
    _paid(api)
    hooked = {**BODY, "webhook_url": "http://127.0.0.1:9/hook"}
    job = api.client.post(JOBS, json=hooked, headers=api.headers()).json()
    assert job["state"] == "succeeded"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    _dispatch(api, httpx.MockTransport(handler))
    [request] = seen
    event = json.loads(request.content)
    assert event["type"] == "job.succeeded" and event["data"]["id"] == job["id"]
    assert event["data"]["rendercost"]["cache"]["result"] == "hit"
    assert api.server.services.outbox.state(job["id"]) == "delivered"


def test_a_file_collected_between_lookup_and_answer_renders_again(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _paid(api)
    store = api.server.services.artifacts

    def collected(key: str) -> bytes:
        raise NotFound(f"artifact {key} not found")

    with monkeypatch.context() as patch:
        patch.setattr(store, "get", collected)  # exists() still says yes: the race
        submitted = api.client.post(JOBS, json=BODY, headers=api.headers())
    assert submitted.status_code == 202 and submitted.json()["state"] == "queued"
    assert wait_done(api, submitted.json()["id"])["state"] == "succeeded"
