"""The shared text-embedding cache in a real Redis: entries shared between processes' caches, exact
bytes and dtype, TTL expiry, and an outage that only misses (logged once, never a stall)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from rendercost.caches.embedding_cache import embedding_key
from rendercost.caches.outage import Outage
from rendercost.caches.redis_client import connect
from rendercost.caches.redis_embedding_cache import DEFAULT_PREFIX, RedisEmbeddingCache
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.integration

THIRTY_DAYS_S = 30 * 86400.0
OUTAGE_LOGGER = "rendercost.caches.outage"


def _blob() -> tuple[bytes, np.ndarray]:
    rows = np.arange(2 * 77 * 32, dtype=np.float16).reshape(1, 154, 32) / 7
    return save_arrays({"prompt": rows, "pooled": rows[:, 0, :].astype(np.float32)}), rows


def test_a_put_in_one_cache_is_a_hit_in_another_with_exact_bytes_and_dtype(redis_url: str) -> None:
    seen: list[bool] = []
    worker_a = RedisEmbeddingCache(connect(redis_url), THIRTY_DAYS_S)
    worker_b = RedisEmbeddingCache(connect(redis_url), THIRTY_DAYS_S, on_lookup=seen.append)
    key = embedding_key("encoder-fp", "a lighthouse at dusk", "", uses_cfg=False)
    blob, rows = _blob()

    assert worker_b.get(key) is None
    worker_a.put(key, blob)
    found = worker_b.get(key)

    assert found == blob
    arrays = load_arrays(found)
    assert arrays["prompt"].dtype == np.float16 and arrays["pooled"].dtype == np.float32
    assert arrays["prompt"].tobytes() == rows.tobytes()
    assert seen == [False, True] and worker_b.hit_rate() == 0.5
    other_model = embedding_key("other-fp", "a lighthouse at dusk", "", uses_cfg=False)
    assert worker_b.get(other_model) is None  # keys are scoped by the encoder fingerprint


def test_entries_carry_the_ttl_and_expire(redis_url: str) -> None:
    client = connect(redis_url)
    key = embedding_key("fp", "a cat", "", uses_cfg=False)
    RedisEmbeddingCache(client, THIRTY_DAYS_S).put(key, b"A")
    ttl_ms = int(client.pttl(DEFAULT_PREFIX + key))
    assert THIRTY_DAYS_S * 1000 - 60_000 < ttl_ms <= THIRTY_DAYS_S * 1000

    short = RedisEmbeddingCache(client, 0.2)
    short.put(key, b"B")
    assert short.get(key) == b"B"
    time.sleep(0.35)
    assert short.get(key) is None  # Redis expired it


def test_off_stores_nothing_and_bad_keys_are_refused(redis_url: str) -> None:
    client = connect(redis_url)
    off = RedisEmbeddingCache(client, 0)
    key = embedding_key("fp", "a", "", uses_cfg=False)
    off.put(key, b"A")
    assert off.get(key) is None and client.dbsize() == 0
    with pytest.raises(ValueError, match="not an embedding key"):
        RedisEmbeddingCache(client, 10.0).get("../../etc")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_misses_logs_once_and_recovers(
    redis_factory: Callable[[], RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_factory()
    clock = Clock()
    outage = Outage("redis (embedding cache)", cooldown_s=5.0, clock=clock)
    cache = RedisEmbeddingCache(connect(server.url), THIRTY_DAYS_S, outage=outage)
    keys = [embedding_key("fp", f"prompt {i}", "", uses_cfg=False) for i in range(20)]
    cache.put(keys[0], b"A")
    assert cache.get(keys[0]) == b"A"

    server.stop()
    caplog.set_level(logging.INFO, logger=OUTAGE_LOGGER)
    started = time.monotonic()
    for key in keys:
        assert cache.get(key) is None
        cache.put(key, b"X")  # dropped, never raised
        clock.now += 1.0  # past the cool-down every 5 calls: probes again, still down
    assert time.monotonic() - started < 2.0
    warnings = [r for r in caplog.records if r.name == OUTAGE_LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "redis (embedding cache) unavailable" in warnings[0].getMessage()
    assert outage.down and 2 <= outage.failures < len(keys)  # the cool-down skipped most calls

    server.start()  # empty again: nothing was persisted
    clock.now += 5.0
    assert cache.get(keys[0]) is None  # a real miss from the restarted server
    cache.put(keys[0], b"B")
    assert cache.get(keys[0]) == b"B" and not outage.down
    assert any("answers again" in r.getMessage() for r in caplog.records if r.name == OUTAGE_LOGGER)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port that accepts connections and never answers: a stalled Redis."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_a_stalled_server_costs_one_short_timeout(silent_server: str) -> None:
    cache = RedisEmbeddingCache(connect(silent_server, timeout_s=0.2), THIRTY_DAYS_S)
    key = embedding_key("fp", "a", "", uses_cfg=False)
    started = time.monotonic()
    assert cache.get(key) is None  # one socket timeout, no retries
    first = time.monotonic() - started
    for _ in range(10):
        assert cache.get(key) is None  # the cool-down skips Redis: no more timeouts
        cache.put(key, b"A")
    assert 0.15 < first < 1.0 and time.monotonic() - started < first + 0.1
