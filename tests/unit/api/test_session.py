"""Web sign-in sessions over HTTP: the cookie's flags, CSRF on unsafe methods, sign-out server-side,
and tenant boundaries seen through a session (both ways)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rendercost.auth.sessions import SESSION_COOKIE, SessionStore
from rendercost.auth.tables import web_sessions
from rendercost.domain.jobs import JobState
from rendercost.errors import AuthenticationFailed
from rendercost.testing.waiting import wait_for_job
from tests.unit.api.conftest import Api

BODY = {"prompt": "a red fox", "size": "64x64", "n": 1}


def browser(api: Api) -> TestClient:
    """A second client on the same app, with its own cookie jar (another browser)."""
    client = TestClient(api.server.app, raise_server_exceptions=False)
    return client


def sign_in(client: TestClient, key: str) -> str:
    """Sign ``client`` in with ``key``; the CSRF token the page would echo."""
    response = client.post("/v1/session", json={"api_key": key})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def test_sign_in_sets_an_http_only_strict_cookie_secure_only_over_tls(api: Api) -> None:
    plain = browser(api).post("/v1/session", json={"api_key": api.key})
    assert plain.status_code == 200, plain.text
    cookie = plain.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=rcs_")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert plain.json()["tenant"] == "acme" and plain.json()["admin"] is False
    proxied = browser(api).post(
        "/v1/session", json={"api_key": api.key}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "Secure" in proxied.headers["set-cookie"]


def test_only_the_hash_of_the_session_is_stored(api: Api) -> None:
    client = browser(api)
    sign_in(client, api.key)
    secret = client.cookies[SESSION_COOKIE]
    with api.server.engine.connect() as conn:
        rows = conn.execute(select(web_sessions)).all()
    assert len(rows) == 1
    assert secret not in [str(value) for value in rows[0]]


def test_a_bad_key_opens_no_session_and_a_form_cannot_sign_in(api: Api) -> None:
    client = browser(api)
    assert client.post("/v1/session", json={"api_key": "rc_nope"}).status_code == 401
    form = client.post("/v1/session", data={"api_key": api.key})  # a cross-site HTML form
    assert form.status_code == 400
    assert SESSION_COOKIE not in client.cookies
    with api.server.engine.connect() as conn:
        assert conn.execute(select(web_sessions)).all() == []


def test_the_cookie_reads_but_an_unsafe_method_needs_the_csrf_token(api: Api) -> None:
    client = browser(api)
    token = sign_in(client, api.key)
    assert client.get("/v1/jobs").status_code == 200
    refused = client.post("/v1/jobs", json=BODY)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_token_invalid"
    wrong = client.post("/v1/jobs", json=BODY, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert api.server.services.store.list_jobs(tenant="acme", limit=10) == []  # nothing queued
    accepted = client.post("/v1/jobs", json=BODY, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 202, accepted.text


def test_a_cross_site_form_post_without_the_token_is_refused(api: Api) -> None:
    client = browser(api)
    token = sign_in(client, api.key)
    attack = {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}
    refused = client.post("/v1/budgets/acme/override", content="until=2999-01-01", headers=attack)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_token_invalid"
    assert client.request("DELETE", "/v1/session", content="x=1", headers=attack).status_code == 403
    # a same-site form carrying the token in its hidden field is accepted as the header is
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    signed_out = client.request("DELETE", "/v1/session", content=f"csrf_token={token}", headers=form)
    assert signed_out.status_code == 204


def test_sign_out_ends_the_session_server_side(api: Api) -> None:
    client = browser(api)
    token = sign_in(client, api.key)
    stolen = client.cookies[SESSION_COOKIE]
    assert client.delete("/v1/session").status_code == 403  # sign-out needs the token too
    out = client.delete("/v1/session", headers={"X-CSRF-Token": token})
    assert out.status_code == 204
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    thief = browser(api)
    thief.cookies.set(SESSION_COOKIE, stolen)
    refused = thief.get("/v1/jobs")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


def test_a_revoked_key_ends_its_sessions(api: Api) -> None:
    client = browser(api)
    sign_in(client, api.key)
    key_id = api.server.services.keys.verify(api.key).id
    api.server.services.keys.revoke(key_id)
    assert client.get("/v1/jobs").status_code == 401


def test_an_expired_session_is_refused(api: Api) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = SessionStore(api.server.engine, ttl=timedelta(minutes=5), clock=lambda: now[0])
    opened = store.open(api.server.services.keys.verify(api.key))
    assert store.resolve(opened.secret).key.tenant == "acme"
    now[0] += timedelta(minutes=5)
    with pytest.raises(AuthenticationFailed):
        store.resolve(opened.secret)


def _render(api: Api, client: TestClient, token: str) -> str:
    response = client.post("/v1/jobs", json=BODY, headers={"X-CSRF-Token": token})
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])
    job = wait_for_job(lambda: api.server.services.store.get(job_id), what=job_id, timeout_s=20)
    assert job.state == JobState.SUCCEEDED
    return job_id


def test_a_tenant_session_sees_only_its_own_jobs_images_and_costs_admin_sees_all(api: Api) -> None:
    acme, other, admin = browser(api), browser(api), browser(api)
    acme_job = _render(api, acme, sign_in(acme, api.key))
    other_job = _render(api, other, sign_in(other, api.new_key("globex")))
    sign_in(admin, api.new_key("ops", admin=True))
    for mine, theirs, client in ((acme_job, other_job, acme), (other_job, acme_job, other)):
        assert client.get(f"/v1/jobs/{mine}").status_code == 200
        assert client.get(f"/v1/jobs/{theirs}").status_code == 404
        assert client.get(f"/v1/images/{mine}-0").status_code == 200
        assert client.get(f"/v1/images/{theirs}-0").status_code == 404
        assert [job["id"] for job in client.get("/v1/jobs").json()["data"]] == [mine]
    acme_costs = acme.get("/v1/costs", params={"by": "tenant"}).json()
    assert [row["tenant"] for row in acme_costs["rows"]] == ["acme"]
    every = admin.get("/v1/costs", params={"by": "tenant"}).json()
    assert sorted(row["tenant"] for row in every["rows"]) == ["acme", "globex"]
    assert acme.get("/v1/costs/export/focus").status_code == 403
    assert admin.get("/v1/costs/export/focus").status_code == 200
