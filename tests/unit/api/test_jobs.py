"""The jobs API over the real app, store, worker and ledger (the model is the painter at its seam)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rendercost.testing.waiting import wait_for_job
from tests.unit.api.conftest import Api, ApiFactory


def wait_done(api: Api, job_id: str, key: str | None = None, timeout_s: float = 20) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        job: dict[str, Any] = api.client.get(f"/v1/jobs/{job_id}", headers=api.headers(key)).json()
        return job

    return wait_for_job(read, what=f"job {job_id}", timeout_s=timeout_s)


def test_submit_poll_and_fetch_results(api: Api) -> None:
    body = {"prompt": "a lighthouse", "n": 2, "seed": 42, "size": "64x96", "output_format": "webp"}
    submitted = api.client.post("/v1/jobs", json=body, headers=api.headers())
    assert submitted.status_code == 202
    job = wait_done(api, submitted.json()["id"])
    assert job["state"] == "succeeded"
    assert job["progress"] == 1.0
    assert [r["seed"] for r in job["results"]] == [42, 43]
    assert {r["media_type"] for r in job["results"]} == {"image/webp"}
    lines_total = sum(Decimal(line["cost_usd"]) for line in job["receipt"]["lines"])
    assert Decimal(job["receipt"]["total_usd"]) == lines_total == Decimal(job["rendercost"]["cost_usd"])
    stage_total = sum(Decimal(s["cost_usd"]) for s in job["rendercost"]["stages"])
    assert stage_total == Decimal(job["rendercost"]["cost_usd"]) > 0
    assert [s["stage"] for s in job["rendercost"]["stages"]][:2] == ["text_encode", "denoise"]
    assert job["rendercost"]["cache"] == {"result": "miss", "embedding": "off", "rewrite": "off"}

    image = job["results"][1]
    meta = api.client.get(f"/v1/images/{image['id']}", headers=api.headers())
    assert meta.status_code == 200
    assert meta.json()["job_id"] == job["id"] and meta.json()["seed"] == 43
    raw = api.client.get(f"/v1/images/{image['id']}", headers={**api.headers(), "Accept": "image/webp"})
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "image/webp"
    assert raw.content[:4] == b"RIFF" and raw.content[8:12] == b"WEBP"
    assert len(raw.content) == meta.json()["size_bytes"]


def test_tenants_never_see_each_other(api: Api) -> None:
    job_id = api.client.post("/v1/jobs", json={"prompt": "mine"}, headers=api.headers()).json()["id"]
    job = wait_done(api, job_id)
    other = api.new_key("globex")
    for path in (f"/v1/jobs/{job_id}", f"/v1/images/{job['results'][0]['id']}"):
        response = api.client.get(path, headers=api.headers(other))
        assert response.status_code == 404, path
    assert api.client.delete(f"/v1/jobs/{job_id}", headers=api.headers(other)).status_code == 404
    assert api.client.get("/v1/jobs", headers=api.headers(other)).json()["data"] == []
    # a second key of the same tenant sees it
    same = api.new_key("acme")
    assert api.client.get(f"/v1/jobs/{job_id}", headers=api.headers(same)).status_code == 200


def test_cancel_a_queued_job(make_api: ApiFactory) -> None:
    api = make_api(workers=0)
    job = api.client.post("/v1/jobs", json={"prompt": "later"}, headers=api.headers()).json()
    assert job["state"] == "queued" and job["queue_position"] == 1
    cancelled = api.client.delete(f"/v1/jobs/{job['id']}", headers=api.headers())
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=api.headers()).json()["state"] == "cancelled"


def test_idempotent_resubmit_returns_the_same_job(make_api: ApiFactory) -> None:
    api = make_api(workers=0)
    headers = {**api.headers(), "Idempotency-Key": "order-17"}
    first = api.client.post("/v1/jobs", json={"prompt": "once"}, headers=headers).json()
    again = api.client.post("/v1/jobs", json={"prompt": "once"}, headers=headers).json()
    assert again["id"] == first["id"]
    assert api.client.get("/v1/queue", headers=api.headers()).json()["total"] == 1
    clash = api.client.post("/v1/jobs", json={"prompt": "something else"}, headers=headers)
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "idempotency_conflict"
    # the same key from another tenant is another job
    other = api.new_key("globex")
    theirs = api.client.post(
        "/v1/jobs", json={"prompt": "once"}, headers={**api.headers(other), "Idempotency-Key": "order-17"}
    )
    assert theirs.json()["id"] != first["id"]


def test_list_filters_and_pages(make_api: ApiFactory) -> None:
    api = make_api(workers=0)
    ids = [
        api.client.post("/v1/jobs", json={"prompt": f"p{i}"}, headers=api.headers()).json()["id"]
        for i in range(5)
    ]
    api.client.delete(f"/v1/jobs/{ids[0]}", headers=api.headers())
    queued = api.client.get("/v1/jobs", params={"state": "queued"}, headers=api.headers()).json()
    assert [j["id"] for j in queued["data"]] == ids[:0:-1]
    page1 = api.client.get("/v1/jobs", params={"limit": 2}, headers=api.headers()).json()
    assert page1["has_more"] and len(page1["data"]) == 2
    page2 = api.client.get(
        "/v1/jobs", params={"limit": 10, "before": page1["next_before"]}, headers=api.headers()
    ).json()
    assert not page2["has_more"]
    seen = [j["id"] for j in page1["data"] + page2["data"]]
    assert seen == ids[::-1]
    assert page1["next_before"] == page1["data"][-1]["id"]  # a job cursor: equal times never skip
    since = api.client.get(
        "/v1/jobs", params={"before": page2["data"][0]["created_at"]}, headers=api.headers()
    ).json()
    assert [j["id"] for j in since["data"]] == seen[3:]  # an ISO time still works
    unknown = api.client.get("/v1/jobs", params={"before": "job_nope"}, headers=api.headers())
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "before"
    both = api.client.get("/v1/jobs", params={"state": "queued,cancelled"}, headers=api.headers()).json()
    assert len(both["data"]) == 5
    bad = api.client.get("/v1/jobs", params={"state": "lost"}, headers=api.headers())
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "state"


def test_queue_depth_by_priority_and_model(make_api: ApiFactory) -> None:
    api = make_api(workers=0)
    for priority in ("interactive", "batch", "batch"):
        api.client.post("/v1/jobs", json={"prompt": "q", "priority": priority}, headers=api.headers())
    queue = api.client.get("/v1/queue", headers=api.headers()).json()
    assert queue["total"] == 3
    depth = {(row["priority"], row["model"]): row["queued"] for row in queue["depth"]}
    assert depth == {("interactive", "default"): 1, ("batch", "default"): 2}


def test_jobs_render_the_size_asked_and_refuse_a_bad_one(api: Api) -> None:
    """The OpenAI size map is the OpenAI endpoint's only: the jobs API renders 256x256 as 256x256."""
    import io

    from PIL import Image

    body = {"prompt": "a small square", "seed": 5, "size": "256x256"}
    job = wait_done(api, api.client.post("/v1/jobs", json=body, headers=api.headers()).json()["id"])
    assert job["request"]["spec"]["width"] == job["request"]["spec"]["height"] == 256
    image = job["results"][0]
    raw = api.client.get(f"/v1/images/{image['id']}", headers={**api.headers(), "Accept": "image/png"})
    with Image.open(io.BytesIO(raw.content)) as png:
        assert png.size == (256, 256)
    refused = api.client.post("/v1/jobs", json={**body, "size": "250x250"}, headers=api.headers())
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "size"
    assert "multiples of 8" in refused.json()["error"]["message"]
