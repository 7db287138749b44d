"""Rate limits per key and per tenant, on requests and images."""

from __future__ import annotations

from rendercost.admission.ratelimit import RateLimiter
from tests.unit.api.conftest import ApiFactory, api_settings


def test_key_request_limit_refuses_with_headers(tmp_path: object) -> None:
    settings = api_settings(tmp_path, rate_limit_key_requests_per_minute=2)  # type: ignore[arg-type]
    limiter = RateLimiter(settings)

    first = limiter.check("k1", "t")
    assert first.refused is None and first.headers["RateLimit-Remaining"] == "1"
    assert limiter.check("k1", "t").refused is None
    third = limiter.check("k1", "t")
    assert third.refused is not None and third.scope == "key_requests"
    assert third.headers["RateLimit-Remaining"] == "0"
    assert 0 < third.refused.retry_after <= 60
    assert limiter.check("k2", "t").refused is None  # another key has its own budget


def test_images_count_n_and_tenants_share(tmp_path: object) -> None:
    settings = api_settings(tmp_path, rate_limit_tenant_images_per_minute=5)  # type: ignore[arg-type]
    limiter = RateLimiter(settings)

    assert limiter.check("k1", "t", images=3).refused is None
    refused = limiter.check("k2", "t", images=3)  # same tenant, other key: 3 + 3 > 5
    assert refused.refused is not None and refused.scope == "tenant_images"
    assert limiter.check("k2", "t", images=2).refused is None  # a refusal charged nothing
    assert limiter.check("k3", "other", images=5).refused is None


def test_http_429_with_retry_after_and_ratelimit_headers(make_api: ApiFactory) -> None:
    api = make_api(workers=0, rate_limit_key_requests_per_minute=2)
    ok = api.client.get("/v1/jobs", headers=api.headers())
    assert ok.headers["RateLimit-Limit"] == "2" and ok.headers["RateLimit-Remaining"] == "1"
    api.client.get("/v1/jobs", headers=api.headers())
    refused = api.client.get("/v1/jobs", headers=api.headers())
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 'scope="key_requests"' in api.client.get("/metrics").text


def test_images_per_minute_counts_n_over_http(make_api: ApiFactory) -> None:
    api = make_api(workers=0, rate_limit_key_images_per_minute=3)
    assert api.client.post("/v1/jobs", json={"prompt": "a", "n": 3}, headers=api.headers()).status_code == 202
    refused = api.client.post("/v1/jobs", json={"prompt": "a", "n": 1}, headers=api.headers())
    assert refused.status_code == 429


def test_a_job_submission_counts_once_against_the_request_limit(make_api: ApiFactory) -> None:
    api = make_api(workers=0, rate_limit_key_requests_per_minute=2)
    first = api.client.post("/v1/jobs", json={"prompt": "a"}, headers=api.headers())
    assert first.status_code == 202 and first.headers["RateLimit-Remaining"] == "1"
    assert api.client.post("/v1/jobs", json={"prompt": "b"}, headers=api.headers()).status_code == 202
    assert api.client.post("/v1/jobs", json={"prompt": "c"}, headers=api.headers()).status_code == 429
