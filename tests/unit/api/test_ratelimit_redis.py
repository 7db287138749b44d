"""Rate limits counted in a real Redis: one limit per key and per tenant across API servers, and a
Redis outage that fails open (admits, logged once, counted) or closed (503) as the settings say."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from rendercost.admission.ratelimit import UNAVAILABLE, LimitsUnavailable, RateLimiter
from rendercost.caches.outage import Outage
from tests.fixtures.redis import RedisServer
from tests.unit.api.conftest import ApiFactory, api_settings

pytestmark = pytest.mark.integration

OUTAGE_LOGGER = "rendercost.caches.outage"


def _limiter(tmp_path: Path, url: str, **overrides: object) -> RateLimiter:
    return RateLimiter.from_settings(api_settings(tmp_path, redis_url=url, **overrides))


def test_two_servers_on_one_redis_enforce_one_limit_per_key_and_tenant(
    tmp_path: Path, redis_url: str
) -> None:
    server_a = _limiter(tmp_path, redis_url, rate_limit_key_requests_per_minute=3)
    server_b = _limiter(tmp_path, redis_url, rate_limit_key_requests_per_minute=3)

    admitted = [server.check("k1", "t").refused is None for server in (server_a, server_b) * 3]
    assert admitted == [True, True, True, False, False, False]  # 3 in all, not 3 per server
    refused = server_a.check("k1", "t")
    assert refused.scope == "key_requests" and refused.headers["RateLimit-Remaining"] == "0"
    assert refused.refused is not None and 0 < refused.refused.retry_after <= 60
    assert server_b.check("k2", "t").headers["RateLimit-Remaining"] == "2"  # another key, its own budget

    images_a = _limiter(tmp_path, redis_url, rate_limit_tenant_images_per_minute=5)
    images_b = _limiter(tmp_path, redis_url, rate_limit_tenant_images_per_minute=5)
    assert images_a.check("k1", "acme", images=3).refused is None
    assert images_b.check("k2", "acme", images=3).scope == "tenant_images"  # same tenant, other server
    assert images_b.check("k2", "acme", images=2).refused is None  # the refusal charged nothing


def test_concurrent_servers_never_admit_past_the_limit(tmp_path: Path, redis_url: str) -> None:
    servers = [_limiter(tmp_path, redis_url, rate_limit_key_requests_per_minute=10) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        decisions = list(pool.map(lambda i: servers[i % 2].check("k1", "t"), range(60)))
    assert sum(d.refused is None for d in decisions) == 10  # exactly the limit, both servers together


def test_the_memory_default_counts_per_process(tmp_path: Path) -> None:
    settings = api_settings(tmp_path, rate_limit_key_requests_per_minute=1)
    server_a, server_b = RateLimiter.from_settings(settings), RateLimiter.from_settings(settings)
    assert server_a.check("k1", "t").refused is None and server_b.check("k1", "t").refused is None


def test_two_api_servers_share_the_limit_over_http(make_api: ApiFactory, redis_url: str) -> None:
    api_a = make_api(workers=0, redis_url=redis_url, rate_limit_key_requests_per_minute=2)
    api_b = make_api(workers=0, redis_url=redis_url, rate_limit_key_requests_per_minute=2)  # same database
    first = api_a.client.get("/v1/jobs", headers=api_a.headers())
    assert first.status_code == 200 and first.headers["RateLimit-Remaining"] == "1"
    second = api_b.client.get("/v1/jobs", headers=api_a.headers())  # the same key on the other server
    assert second.status_code == 200 and second.headers["RateLimit-Remaining"] == "0"
    refused = api_a.client.post("/v1/jobs", json={"prompt": "a"}, headers=api_a.headers())
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["RateLimit-Remaining"] == "0"


def _unavailable(registry: CollectorRegistry, outcome: str) -> float:
    value = registry.get_sample_value("rendercost_rate_limit_unavailable_total", {"outcome": outcome})
    return value or 0.0


def test_an_outage_fails_open_by_default_logged_once_and_counted(
    tmp_path: Path, redis_factory: Callable[[], RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_factory()
    registry = CollectorRegistry()
    settings = api_settings(tmp_path, redis_url=server.url, rate_limit_key_requests_per_minute=1)
    limiter = RateLimiter.from_settings(settings, registry)
    limiter.outage = Outage("redis (rate limits)", cooldown_s=0.0)  # probe on every call
    assert limiter.check("k1", "t").refused is None
    assert limiter.check("k1", "t").refused is not None  # the limit holds while Redis is up

    server.stop()
    caplog.set_level(logging.WARNING, logger=OUTAGE_LOGGER)
    started = time.monotonic()
    decisions = [limiter.check("k1", "t", images=1) for _ in range(10)]
    assert time.monotonic() - started < 1.0
    assert all(d.refused is None and d.headers == {} for d in decisions)  # admitted, no RateLimit-*
    assert len([r for r in caplog.records if r.name == OUTAGE_LOGGER]) == 1
    assert "redis (rate limits) unavailable" in caplog.records[0].getMessage()
    assert _unavailable(registry, "admitted") == 10 and _unavailable(registry, "refused") == 0

    server.start()  # empty: the counters start again
    assert limiter.check("k1", "t").refused is None and not limiter.outage.down
    assert limiter.check("k1", "t").scope == "key_requests"


def test_an_outage_fails_closed_with_503_when_asked(
    tmp_path: Path, redis_factory: Callable[[], RedisServer]
) -> None:
    server = redis_factory()
    registry = CollectorRegistry()
    settings = api_settings(tmp_path, redis_url=server.url, rate_limit_fail_open=False)
    limiter = RateLimiter.from_settings(settings, registry)
    assert limiter.check("k1", "t").refused is None
    server.stop()
    decision = limiter.check("k1", "t")
    assert decision.scope == UNAVAILABLE and isinstance(decision.refused, LimitsUnavailable)
    assert decision.refused.http_status == 503 and decision.refused.code == "rate_limit_unavailable"
    assert _unavailable(registry, "refused") == 1


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_admission_over_http_during_an_outage(
    make_api: ApiFactory, redis_factory: Callable[[], RedisServer], fail_open: bool
) -> None:
    server = redis_factory()
    api = make_api(workers=0, redis_url=server.url, rate_limit_fail_open=fail_open)
    assert api.client.get("/v1/jobs", headers=api.headers()).headers["RateLimit-Limit"] == "600"
    server.stop()
    listed = api.client.get("/v1/jobs", headers=api.headers())
    submitted = api.client.post("/v1/jobs", json={"prompt": "a lighthouse"}, headers=api.headers())
    if fail_open:
        assert (listed.status_code, submitted.status_code) == (200, 202)
        assert "RateLimit-Limit" not in submitted.headers
        assert (
            'rendercost_rate_limit_unavailable_total{outcome="admitted"} 2.0'
            in api.client.get("/metrics").text
        )
        return
    for refused in (listed, submitted):
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "rate_limit_unavailable"
        assert int(refused.headers["Retry-After"]) >= 1
    assert 'scope="unavailable"' in api.client.get("/metrics").text
