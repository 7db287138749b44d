"""The exact-result cache through the real HTTP app: repeats served without queuing, at $0."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from rendercost.domain.controls import CacheMode
from rendercost.ledger.tables import cost_lines
from tests.unit.api.conftest import Api, ApiFactory

GEN = "/v1/images/generations"
BODY = {"prompt": "a lighthouse", "size": "64x64", "seed": 11, "response_format": "b64_json"}


def _jobs(api: Api) -> int:
    return len(api.client.get("/v1/jobs", headers=api.headers()).json()["data"])


def _ledger(api: Api, job_id: str) -> list[dict[str, Any]]:
    with api.server.engine.connect() as conn:
        rows = conn.execute(select(cost_lines).where(cost_lines.c.job_id == job_id)).mappings().all()
    return [dict(row) for row in rows]


def test_cache_control_parsing() -> None:
    assert CacheMode.from_header(None) == "default"
    assert CacheMode.from_header("max-age=0, No-Cache") == "no-cache"
    assert CacheMode.from_header("no-cache, no-store") == "no-store"


def test_exact_repeat_is_served_from_cache_without_a_job(api: Api) -> None:
    first = api.client.post(GEN, json=BODY, headers=api.headers()).json()
    assert first["rendercost"]["cache"]["result"] == "miss"
    paid = Decimal(first["rendercost"]["cost_usd"])
    assert paid > 0 and _jobs(api) == 1

    second = api.client.post(GEN, json=BODY, headers=api.headers()).json()
    info = second["rendercost"]
    assert info["cache"]["result"] == "hit" and info["job_id"].startswith("cache-")
    assert Decimal(info["cost_usd"]) == 0
    assert base64.b64decode(second["data"][0]["b64_json"]) == base64.b64decode(first["data"][0]["b64_json"])
    assert _jobs(api) == 1 and api.runner.calls == [1]  # nothing queued, nothing rendered
    lines = _ledger(api, info["job_id"])
    assert lines and all(line["cost"] == 0 for line in lines)
    device_paid = sum(
        Decimal(s["cost_usd"]) for s in first["rendercost"]["stages"] if s["stage"] != "storage"
    )
    avoided = sum((line["cost_avoided"] for line in lines if line["stage"] != "storage"), Decimal(0))
    assert avoided == device_paid > 0
    metrics = api.client.get("/metrics").text
    assert 'rendercost_cache_lookups_total{cache="result",outcome="miss"} 1.0' in metrics
    assert 'rendercost_cache_lookups_total{cache="result",outcome="hit"} 1.0' in metrics


def test_hit_url_serves_the_cached_bytes(api: Api) -> None:
    body = {**BODY, "response_format": "url"}
    api.client.post(GEN, json=body, headers=api.headers())
    url = api.client.post(GEN, json=body, headers=api.headers()).json()["data"][0]["url"]
    assert "/v1/cached-images/" in url
    assert api.client.get(url).status_code == 401
    raw = api.client.get(url, headers=api.headers())
    assert raw.status_code == 200 and raw.content.startswith(b"\x89PNG")


def test_no_cache_skips_the_read_but_stores(api: Api) -> None:
    no_cache = {**api.headers(), "Cache-Control": "no-cache"}
    assert (
        api.client.post(GEN, json=BODY, headers=no_cache).json()["rendercost"]["cache"]["result"] == "bypass"
    )
    assert (
        api.client.post(GEN, json=BODY, headers=no_cache).json()["rendercost"]["cache"]["result"] == "bypass"
    )
    assert api.runner.calls == [1, 1]
    assert (
        api.client.post(GEN, json=BODY, headers=api.headers()).json()["rendercost"]["cache"]["result"]
        == "hit"
    )


def test_no_store_neither_reads_nor_stores(api: Api) -> None:
    no_store = {**api.headers(), "Cache-Control": "no-store"}
    api.client.post(GEN, json=BODY, headers=no_store)
    assert (
        api.client.post(GEN, json=BODY, headers=api.headers()).json()["rendercost"]["cache"]["result"]
        == "miss"
    )
    assert api.runner.calls == [1, 1]


def test_random_seed_is_never_cached_and_ttl_zero_is_off(make_api: ApiFactory) -> None:
    api = make_api()
    body = {k: v for k, v in BODY.items() if k != "seed"}
    for _ in range(2):
        assert (
            api.client.post(GEN, json=body, headers=api.headers()).json()["rendercost"]["cache"]["result"]
            == "bypass"
        )
    off = make_api(result_cache_ttl_seconds=0)
    assert (
        off.client.post(GEN, json=BODY, headers=off.headers()).json()["rendercost"]["cache"]["result"]
        == "off"
    )
