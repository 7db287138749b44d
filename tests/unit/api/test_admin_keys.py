"""Key management over HTTP: an admin creates (secret shown once), lists (never secrets) and revokes
(refused at once) keys; a tenant key gets 403 on all three; bad input is 400 and creates nothing."""

from __future__ import annotations

from typing import Any

from tests.unit.api.conftest import Api


def admin_headers(api: Api) -> dict[str, str]:
    assert api.server.admin_key is not None
    return api.headers(api.server.admin_key.secret)


def create(api: Api, **body: Any) -> dict[str, Any]:
    response = api.client.post("/v1/admin/keys", json=body, headers=admin_headers(api))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_admin_creates_lists_and_revokes_a_key(api: Api) -> None:
    created = create(api, tenant="globex", name="ci runner", tags={"team": "web"})
    secret = created["key"]
    assert secret.startswith("rc_") and secret.startswith(created["prefix"])
    assert (created["tenant"], created["name"], created["admin"], created["active"]) == (
        "globex",
        "ci runner",
        False,
        True,
    )
    assert created["tags"] == {"team": "web", "name": "ci runner"}
    assert api.client.get("/v1/jobs", headers=api.headers(secret)).status_code == 200
    assert api.server.services.keys.verify(secret).tenant == "globex"

    listed = api.client.get("/v1/admin/keys", headers=admin_headers(api))
    assert listed.status_code == 200
    ids = [k["id"] for k in listed.json()["data"]]
    assert created["id"] in ids and len(ids) == 3  # the admin's, acme's and the new one
    assert secret not in listed.text and api.key not in listed.text and "key" not in listed.json()["data"][0]
    only = api.client.get("/v1/admin/keys", params={"tenant": "globex"}, headers=admin_headers(api))
    assert [k["id"] for k in only.json()["data"]] == [created["id"]]

    revoked = api.client.delete(f"/v1/admin/keys/{created['id']}", headers=admin_headers(api))
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False and revoked.json()["revoked_at"]
    refused = api.client.get("/v1/jobs", headers=api.headers(secret))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    active = api.client.get("/v1/admin/keys", params={"include_revoked": "false"}, headers=admin_headers(api))
    assert created["id"] not in [k["id"] for k in active.json()["data"]]


def test_an_admin_key_made_here_may_administer(api: Api) -> None:
    created = create(api, tenant="ops", admin=True)
    listed = api.client.get("/v1/admin/keys", headers=api.headers(created["key"]))
    assert listed.status_code == 200 and created["id"] in listed.text


def test_a_tenant_key_is_refused_with_403(api: Api) -> None:
    assert api.server.admin_key is not None
    admin_id = api.server.admin_key.key.id
    before = len(api.server.services.keys.list_keys())
    for method, path, body in (
        ("POST", "/v1/admin/keys", {"tenant": "acme", "admin": True}),
        ("GET", "/v1/admin/keys", None),
        ("DELETE", f"/v1/admin/keys/{admin_id}", None),
    ):
        response = api.client.request(method, path, json=body, headers=api.headers())
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "permission_denied"
    assert len(api.server.services.keys.list_keys()) == before  # nothing was made
    assert api.client.get("/v1/admin/keys", headers=admin_headers(api)).status_code == 200  # not revoked


def test_no_key_is_401(api: Api) -> None:
    assert api.client.get("/v1/admin/keys").status_code == 401
    assert api.client.post("/v1/admin/keys", json={"tenant": "x"}).status_code == 401


def test_bad_input_is_400_and_creates_nothing(api: Api) -> None:
    before = len(api.server.services.keys.list_keys())
    for body, param in (
        ({"tenant": "bad tenant!"}, "tenant"),
        ({"tenant": "globex", "tags": {"bad name": "x"}}, "tag"),
        ({"tenant": "globex", "secret": "rc_mine"}, "secret"),  # unknown fields are refused
        ({}, "tenant"),
    ):
        response = api.client.post("/v1/admin/keys", json=body, headers=admin_headers(api))
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["param"] == param
    missing = api.client.delete("/v1/admin/keys/key_missing", headers=admin_headers(api))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert len(api.server.services.keys.list_keys()) == before
