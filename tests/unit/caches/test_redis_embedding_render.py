"""The shared embedding cache under real renders (tiny model): a prompt encoded by one worker is not
encoded by another on the same Redis, and with Redis gone renders still succeed, encoding as usual."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from rendercost.domain.costs import Stage
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.pipeline.prompt_embeddings import CachedEncoder, encoder_from_settings
from rendercost.execution.pipeline.runner import DiffusersRunner
from tests.fixtures.redis import RedisServer
from tests.unit.execution.plans import fewer_steps, forward_batches, pixels, plan, spec

pytestmark = pytest.mark.integration


def _worker(registry: ModelRegistry, redis_url: str) -> tuple[DiffusersRunner, CachedEncoder]:
    """A runner as a worker builds it (``encoder_from_settings``), with its cache on ``redis_url``."""
    settings = registry.settings.model_copy(update={"redis_url": redis_url})
    encoder = encoder_from_settings(settings, registry.fingerprint)
    assert encoder is not None
    runner = DiffusersRunner(registry, settings, preset_lookup=fewer_steps(1), embeddings=encoder)
    return runner, encoder


def test_one_worker_encodes_the_other_reuses(tiny_registry: ModelRegistry, redis_url: str) -> None:
    worker_a, _ = _worker(tiny_registry, redis_url)
    worker_b, _ = _worker(tiny_registry, redis_url)
    the_plan = plan(spec("a lighthouse at dusk", seed=3), spec("a red fox", seed=4))
    first = worker_a.run(the_plan)
    assert Stage.TEXT_ENCODE in first.stage_seconds and not first.skipped_stages
    encoder = tiny_registry.get("default").pipeline.text_encoder
    with forward_batches(encoder) as calls:
        second = worker_b.run(the_plan)
    assert calls == []  # the other worker's text encoder never ran
    assert second.skipped_stages == {Stage.TEXT_ENCODE: "embedding_cache"}
    assert all((a == b).all() for a, b in zip(pixels(first), pixels(second), strict=True))


def test_renders_succeed_with_redis_stopped(
    tiny_registry: ModelRegistry, redis_factory: Callable[[], RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_factory()
    runner, _ = _worker(tiny_registry, server.url)
    the_plan = plan(spec("a quiet harbour", seed=5))
    runner.run(the_plan)  # stored in Redis
    server.stop()
    caplog.set_level(logging.WARNING, logger="rendercost.caches.outage")
    encoder = tiny_registry.get("default").pipeline.text_encoder
    with forward_batches(encoder) as calls:
        result = runner.run(the_plan)  # the cache misses: encoded again, the render succeeds
    assert calls and len(result.images) == 1 and result.images[0].data
    assert Stage.TEXT_ENCODE in result.stage_seconds and not result.skipped_stages
    runner.run(plan(spec("another harbour", seed=6)))
    [warning] = caplog.records  # one outage, one warning
    assert "redis (embedding cache) unavailable" in warning.getMessage()
