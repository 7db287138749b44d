"""``/metrics`` on the API lists tenants: with ``metrics_token`` it needs that bearer token, with
``metrics_bind`` it is served only on that address; either way it carries process and build-info
metrics and no ``_created`` twins."""

from __future__ import annotations

import httpx

from rendercost import __version__
from rendercost.cli.serve import _metrics_endpoint
from tests.unit.api.conftest import Api, ApiFactory


def test_a_metrics_token_is_required_when_set(make_api: ApiFactory) -> None:
    api = make_api(metrics_token="scrape-me")
    api.client.post("/v1/images/generations", json={"prompt": "m"}, headers=api.headers())
    for headers in ({}, {"Authorization": "Bearer wrong"}, api.headers(), {"Authorization": "scrape-me"}):
        refused = api.client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_metrics_token"
        assert "acme" not in refused.text
    allowed = api.client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert allowed.status_code == 200
    assert 'tenant="acme"' in allowed.text


def test_without_a_token_metrics_stay_open(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 200


def test_metrics_carry_build_info_and_process_metrics_without_created_series(make_api: ApiFactory) -> None:
    api = make_api()
    api.client.post("/v1/jobs", json={"prompt": "x"}, headers=api.headers())
    text = api.client.get("/metrics").text
    assert f'rendercost_build_info{{component="api",version="{__version__}"}} 1.0' in text
    assert "process_resident_memory_bytes" in text
    assert "python_info" in text
    assert "rendercost_http_requests_total" in text
    assert "_created" not in text


def test_a_metrics_bind_moves_metrics_off_the_api_port(make_api: ApiFactory) -> None:
    api = make_api(metrics_bind="127.0.0.1:0")
    api.client.post("/v1/images/generations", json={"prompt": "m"}, headers=api.headers())
    moved = api.client.get("/metrics")
    assert moved.status_code == 404
    ops = _metrics_endpoint(api.server)
    assert ops is not None
    try:
        served = httpx.get(f"http://127.0.0.1:{ops.port}/metrics", timeout=5)
        assert served.status_code == 200
        assert 'rendercost_render_cost_usd_count{model="default"' in served.text
        assert httpx.get(f"http://127.0.0.1:{ops.port}/healthz", timeout=5).status_code == 404
    finally:
        ops.close()
