"""Tenancy of jobs and images, both ways: a tenant reads, lists and cancels only its own (another's is
404, and asking to list another's is 403); an admin reads, lists (all, or one tenant's) and cancels
every tenant's."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.api.conftest import ApiFactory


def _queued_job(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post("/v1/jobs", json={"prompt": "a lamp", "seed": 1}, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_a_tenant_sees_only_its_own_jobs_and_an_admin_sees_every_tenants(make_api: ApiFactory) -> None:
    api = make_api(workers=0)  # nothing renders: the jobs stay queued, so cancel works at the end
    acme = api.headers()
    globex = api.headers(api.new_key("globex"))
    admin = api.headers(api.new_key("ops", admin=True))
    acme_job = _queued_job(api.client, acme)
    globex_job = _queued_job(api.client, globex)

    assert api.client.get(f"/v1/jobs/{acme_job}", headers=globex).status_code == 404
    assert api.client.get(f"/v1/jobs/{globex_job}", headers=acme).status_code == 404
    assert api.client.delete(f"/v1/jobs/{acme_job}", headers=globex).status_code == 404
    assert api.client.get(f"/v1/images/{acme_job}-0", headers=globex).status_code == 404
    listed = api.client.get("/v1/jobs", headers=globex).json()["data"]
    assert [job["id"] for job in listed] == [globex_job]
    refused = api.client.get("/v1/jobs", params={"tenant": "acme"}, headers=globex)
    assert refused.status_code == 403, refused.text
    own = api.client.get("/v1/jobs", params={"tenant": "globex"}, headers=globex).json()["data"]
    assert [job["id"] for job in own] == [globex_job]

    assert api.client.get(f"/v1/jobs/{acme_job}", headers=admin).status_code == 200
    everyone = {job["id"] for job in api.client.get("/v1/jobs", headers=admin).json()["data"]}
    assert {acme_job, globex_job} <= everyone
    only_acme = api.client.get("/v1/jobs", params={"tenant": "acme"}, headers=admin).json()["data"]
    assert [job["id"] for job in only_acme] == [acme_job]
    cancelled = api.client.delete(f"/v1/jobs/{globex_job}", headers=admin)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled", cancelled.text
