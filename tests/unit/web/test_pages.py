"""The pages over HTTP (no browser): sign-in redirects, the CSRF meta tag, the same-origin policy,
admin pages refused to a tenant, and assets served from the package."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from rendercost.web.pages import CONTENT_SECURITY_POLICY
from tests.unit.api.conftest import Api, ApiFactory

PAGES = ("playground", "history", "costs")
ADMIN_PAGES = ("admin", "plan")


def signed_in(api: Api, key: str) -> tuple[TestClient, str]:
    client = TestClient(api.server.app, raise_server_exceptions=False)
    answer = client.post("/v1/session", json={"api_key": key})
    assert answer.status_code == 200, answer.text
    return client, str(answer.json()["csrf_token"])


def test_every_page_redirects_to_sign_in_without_a_session(make_api: ApiFactory) -> None:
    api = make_api(workers=0)
    for path in ("/", *(f"/{page}" for page in PAGES + ADMIN_PAGES)):
        answer = api.client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/sign-in", path
    sign_in = api.client.get("/sign-in")
    assert sign_in.status_code == 200 and 'id="sign-in-form"' in sign_in.text
    api.client.cookies.set("rendercost_session", "rcs_forged")
    assert api.client.get("/history", follow_redirects=False).headers["location"] == "/sign-in"


def test_pages_carry_the_token_and_load_nothing_from_another_host(make_api: ApiFactory) -> None:
    api = make_api(workers=0)
    client, token = signed_in(api, api.key)
    for page in PAGES:
        answer = client.get(f"/{page}")
        assert answer.status_code == 200, page
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "default-src 'self'" in CONTENT_SECURITY_POLICY
        assert f'<meta name="csrf-token" content="{token}">' in answer.text
        links = re.findall(r'(?:src|href)="([^"]*)"', answer.text)
        assert links and all(link.startswith(("/", "#", "data:")) for link in links), links
        for asset in (link for link in links if link.startswith("/assets/")):
            assert client.get(asset).status_code == 200, asset
    assert client.get("/assets/js/common.js").headers["content-type"].startswith("text/javascript")


def test_admin_pages_are_refused_to_a_tenant_and_shown_to_an_admin(make_api: ApiFactory) -> None:
    api = make_api(workers=0)
    tenant, _ = signed_in(api, api.key)
    admin, _ = signed_in(api, api.new_key("ops", admin=True))
    for page in ADMIN_PAGES:
        assert tenant.get(f"/{page}").status_code == 403
        assert admin.get(f"/{page}").status_code == 200
    assert 'href="/admin"' not in tenant.get("/playground").text
    assert 'href="/admin"' in admin.get("/playground").text


def test_the_playground_offers_what_the_api_accepts(make_api: ApiFactory) -> None:
    api = make_api(workers=0, default_size="64x64")
    client, _ = signed_in(api, api.key)
    html = client.get("/playground").text
    assert 'value="64x64"' in html and 'value="1152x896"' in html
    assert re.findall(r'name="preset" value="([^"]+)"', html) == [
        "quality", "speed", "extreme-speed", "lightning", "hyper-sd"
    ]  # fmt: skip
    assert 'value="Fooocus V2"' in html
    assert f'max="{api.server.settings.max_n}"' in html
