"""Request ids, JSON logs and Prometheus metrics."""

from __future__ import annotations

import io
import json
import logging

from rendercost.observability.logging import JsonFormatter, request_id_var
from tests.unit.api.conftest import Api


def test_request_id_is_returned_and_kept_when_sane(api: Api) -> None:
    fresh = api.client.get("/healthz")
    assert len(fresh.headers["X-Request-ID"]) == 32
    kept = api.client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert kept.headers["X-Request-ID"] == "trace-123"
    replaced = api.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert replaced.headers["X-Request-ID"] != "bad id with spaces"


def test_request_log_line_is_json_with_the_request_id(api: Api) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("rendercost.http")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        api.client.get("/v1/jobs", headers={**api.headers(), "X-Request-ID": "req-42"})
    finally:
        logger.removeHandler(handler)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    record = next(r for r in records if r.get("request_id") == "req-42")
    assert record["route"] == "/v1/jobs" and record["status"] == 200 and record["tenant"] == "acme"
    assert record["message"] == "request" and "duration_ms" in record


def test_formatter_uses_the_context_request_id() -> None:
    token = request_id_var.set("ctx-1")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello world" and line["request_id"] == "ctx-1"


def test_metrics_after_a_render(api: Api) -> None:
    api.client.post("/v1/images/generations", json={"prompt": "m", "n": 2}, headers=api.headers())
    rendered = api.client.get("/metrics").text  # before the next job, which the worker may finish too
    assert 'rendercost_render_cost_usd_count{model="default",preset="speed"} 2.0' in rendered
    api.client.post("/v1/jobs", json={"prompt": "later", "priority": "batch"}, headers=api.headers())
    text = api.client.get("/metrics").text
    assert (
        'rendercost_http_requests_total{method="POST",route="/v1/images/generations",status="200"} 1.0'
        in text
    )
    assert "rendercost_http_request_duration_seconds_bucket" in text
    assert 'rendercost_batch_size_count{model="default"}' in text
    assert 'rendercost_stage_seconds_count{model="default",stage="denoise"}' in text
    assert 'rendercost_cost_usd_total{model="default",preset="speed",stage="denoise",tenant="acme"}' in text
    assert "rendercost_queue_depth" in text


def test_healthz_and_readyz(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


def test_readyz_names_a_failing_check(api: Api) -> None:
    def broken() -> None:
        raise RuntimeError("weights missing")

    api.server.services.readiness = {**api.server.services.readiness, "model": broken}
    response = api.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "not_ready" and "weights missing" in body["error"]["message"]
    assert body["checks"]["database"] == "ok"
