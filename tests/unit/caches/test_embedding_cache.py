"""The text-embedding cache: the file-backed LRU, and a hit skipping the real encoders."""

from __future__ import annotations

from pathlib import Path

from rendercost.caches.embedding_cache import FileEmbeddingCache, embedding_key
from rendercost.domain.costs import Stage
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.pipeline.prompt_embeddings import CachedEncoder
from rendercost.execution.pipeline.runner import DiffusersRunner
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.pricing import price_batch
from tests.unit.execution.plans import fewer_steps, forward_batches, pixels, plan, spec


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_key_covers_what_decides_the_embeddings() -> None:
    base = embedding_key("fp", "a cat", "blurry", uses_cfg=True)
    assert base != embedding_key("fp2", "a cat", "blurry", uses_cfg=True)
    assert base != embedding_key("fp", "a cat", "ugly", uses_cfg=True)
    assert base != embedding_key("fp", "a cat", "blurry", uses_cfg=False)
    assert base != embedding_key("fp", "a cat", "blurry", uses_cfg=True, loras=[("style", 0.8)])
    # without CFG the negative prompt is never encoded, so it does not split entries
    assert embedding_key("fp", "a", "x", uses_cfg=False) == embedding_key("fp", "a", "y", uses_cfg=False)


def test_lru_file_backing_and_ttl(tmp_path: Path) -> None:
    clock = Clock()
    seen: list[bool] = []
    cache = FileEmbeddingCache(tmp_path, 100.0, max_entries=1, clock=clock, on_lookup=seen.append)
    a, b = (embedding_key("fp", p, "", uses_cfg=False) for p in ("a", "b"))
    cache.put(a, b"A")
    cache.put(b, b"B")  # evicts a from memory; its file stays
    assert cache.get(a) == b"A"
    restarted = FileEmbeddingCache(tmp_path, 100.0, clock=clock)
    assert restarted.get(b) == b"B"  # a new process starts warm
    clock.now += 100.0
    assert cache.get(a) is None and restarted.get(b) is None  # expired
    assert seen == [True, False] and cache.hit_rate() == 0.5
    off = FileEmbeddingCache(tmp_path / "off", 0)
    off.put(a, b"A")
    assert off.get(a) is None and not (tmp_path / "off").exists()


def test_hit_skips_the_encoders_and_prices_avoided_time(tiny_registry: ModelRegistry, tmp_path: Path) -> None:
    cache = FileEmbeddingCache(tmp_path / "emb", 30 * 86400.0)
    runner = DiffusersRunner(
        tiny_registry,
        tiny_registry.settings,
        preset_lookup=fewer_steps(1),
        embeddings=CachedEncoder(cache, tiny_registry.fingerprint),
    )
    the_plan = plan(spec("a lighthouse at dusk", seed=3))
    first = runner.run(the_plan)
    assert Stage.TEXT_ENCODE in first.stage_seconds and not first.skipped_stages
    encoder = tiny_registry.get("default").pipeline.text_encoder
    with forward_batches(encoder) as calls:
        second = runner.run(the_plan)
    assert calls == []  # the text encoder never ran
    assert second.skipped_stages == {Stage.TEXT_ENCODE: "embedding_cache"}
    assert Stage.TEXT_ENCODE not in second.stage_seconds
    assert (pixels(first)[0] == pixels(second)[0]).all()  # same embeddings, same image
    [lines] = price_batch(
        the_plan,
        second,
        catalog=PriceCatalog.load(),
        device_type="cpu",
        pricing_model="on_demand",
        region=tiny_registry.settings.region,
        avoided_seconds=second.avoided_seconds,
    )
    encode = next(line for line in lines if line.stage == Stage.TEXT_ENCODE)
    assert encode.device_seconds == 0 and encode.cost == 0 and encode.cost_avoided > 0
    assert (encode.details["skipped"], encode.details["cache"]) == ("embedding_cache", "embedding")
