"""The worker's ops endpoint: ``/metrics`` from a registry and ``/healthz`` from a health callable, on
a real loopback socket."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rendercost.observability.metrics import Metrics
from rendercost.observability.ops_server import Health, OpsServer, parse_bind


@pytest.fixture
def healthy() -> list[bool]:
    return [True]


@pytest.fixture
def server(healthy: list[bool]) -> Iterator[tuple[OpsServer, Metrics]]:
    metrics = Metrics(component="worker")
    ops = OpsServer("127.0.0.1:0", metrics.registry, lambda: Health(healthy[0], {"ok": healthy[0]}))
    ops.start()
    yield ops, metrics
    ops.close()


def test_metrics_and_health_are_served(server: tuple[OpsServer, Metrics], healthy: list[bool]) -> None:
    ops, metrics = server
    metrics.jobs_finished.labels("succeeded").inc()
    base = f"http://127.0.0.1:{ops.port}"
    scraped = httpx.get(f"{base}/metrics", timeout=5)
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert 'rendercost_jobs_finished_total{state="succeeded"} 1.0' in scraped.text
    assert 'component="worker"' in scraped.text
    assert "_created" not in scraped.text
    assert httpx.get(f"{base}/healthz", timeout=5).json() == {"ok": True}
    healthy[0] = False
    sick = httpx.get(f"{base}/healthz", timeout=5)
    assert sick.status_code == 503 and sick.json() == {"ok": False}
    assert httpx.get(f"{base}/other", timeout=5).status_code == 404


def test_worker_gauges_are_read_at_scrape_time() -> None:
    metrics = Metrics(component="worker")
    held = [3]
    metrics.watch_worker("w1", lambda: held[0], lambda: held[0] == 0)
    text = metrics.exposition().decode()
    assert 'rendercost_worker_held_jobs{worker="w1"} 3.0' in text
    assert 'rendercost_worker_draining{worker="w1"} 0.0' in text
    held[0] = 0
    text = metrics.exposition().decode()
    assert 'rendercost_worker_draining{worker="w1"} 1.0' in text


@pytest.mark.parametrize(
    ("bind", "expected"),
    [("127.0.0.1:9100", ("127.0.0.1", 9100)), ("[::1]:80", ("::1", 80)), ("h:0", ("h", 0))],
)
def test_bind_addresses_parse(bind: str, expected: tuple[str, int]) -> None:
    assert parse_bind(bind) == expected


@pytest.mark.parametrize("bind", ["9100", ":9100", "host:", "host:port", "host:70000"])
def test_bad_bind_addresses_are_refused(bind: str) -> None:
    with pytest.raises(ValueError, match="not HOST:PORT"):
        parse_bind(bind)
