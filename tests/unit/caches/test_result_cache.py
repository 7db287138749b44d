import pytest
from sqlalchemy import Engine, func, select

from rendercost.caches.result_cache import ResultCache, result_key
from rendercost.caches.tables import result_cache
from rendercost.db.clock import ManualClock
from rendercost.domain.specs import LoraRef, OutputFormat, RenderSpec

RECEIPT = {"seed": 7, "receipt": {"total_usd": "0.0000123400", "lines": []}}


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    """A migrated SQLite file, and a fresh PostgreSQL database (integration)."""
    return migrated_engine


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(result_cache)).scalar_one())


def test_miss_then_hit(engine: Engine) -> None:
    clock = ManualClock()
    cache = ResultCache(engine, ttl_seconds=60, clock=clock)
    assert cache.get("k" * 64) is None
    stored = cache.put("k" * 64, location="ab/cd/abcd.png", media_type="image/png", receipt=RECEIPT)
    assert stored is not None
    hit = cache.get("k" * 64)
    assert hit == stored
    assert hit.receipt == RECEIPT
    assert hit.location == "ab/cd/abcd.png"
    assert hit.created_at == clock()
    assert hit.created_at.tzinfo is not None


def test_entries_expire_and_are_purged(engine: Engine) -> None:
    clock = ManualClock()
    cache = ResultCache(engine, ttl_seconds=60, clock=clock)
    cache.put("a", location="x", media_type="image/png", receipt=RECEIPT)
    clock.advance(59)
    assert cache.get("a") is not None
    clock.advance(1)
    assert cache.get("a") is None
    cache.put("b", location="y", media_type="image/png", receipt=RECEIPT)
    assert cache.purge_expired() == 1
    assert _rows(engine) == 1


def test_put_replaces_an_entry(engine: Engine) -> None:
    clock = ManualClock()
    cache = ResultCache(engine, ttl_seconds=60, clock=clock)
    cache.put("a", location="old", media_type="image/png", receipt=RECEIPT)
    clock.advance(30)
    cache.put("a", location="new", media_type="image/webp", receipt={"seed": 8})
    hit = cache.get("a")
    assert hit is not None
    assert (hit.location, hit.media_type, hit.receipt) == ("new", "image/webp", {"seed": 8})
    clock.advance(59)
    assert cache.get("a") is not None  # the replacement got a fresh ttl
    assert _rows(engine) == 1


def test_zero_ttl_stores_nothing(engine: Engine) -> None:
    cache = ResultCache(engine, ttl_seconds=0)
    assert not cache.enabled
    assert cache.put("a", location="x", media_type="image/png", receipt=RECEIPT) is None
    assert cache.get("a") is None
    assert _rows(engine) == 0


def test_forget(engine: Engine) -> None:
    cache = ResultCache(engine, ttl_seconds=60)
    cache.put("a", location="x", media_type="image/png", receipt=RECEIPT)
    cache.forget("a")
    cache.forget("never-there")
    assert cache.get("a") is None


def test_key_covers_everything_that_decides_the_bytes() -> None:
    base = RenderSpec("white sneaker on beach", negative_prompt="blur", preset="lightning", seed=7)
    key = result_key(base, "weights-1")
    assert len(key) == 64
    assert result_key(base, "weights-1") == key
    variants = [
        RenderSpec("white sneaker on sand", negative_prompt="blur", preset="lightning", seed=7),
        RenderSpec("white sneaker on beach", negative_prompt="", preset="lightning", seed=7),
        RenderSpec("white sneaker on beach", negative_prompt="blur", preset="speed", seed=7),
        RenderSpec("white sneaker on beach", negative_prompt="blur", preset="lightning", seed=8),
        RenderSpec("white sneaker on beach", negative_prompt="blur", preset="lightning", seed=7, width=512),
        RenderSpec("white sneaker on beach", negative_prompt="blur", preset="lightning", seed=7, model="m2"),
        RenderSpec(
            "white sneaker on beach",
            negative_prompt="blur",
            preset="lightning",
            seed=7,
            loras=(LoraRef("ink"),),
        ),
        RenderSpec(
            "white sneaker on beach",
            negative_prompt="blur",
            preset="lightning",
            seed=7,
            output_format=OutputFormat.WEBP,
        ),
    ]
    keys = {result_key(spec, "weights-1") for spec in variants} | {result_key(base, "weights-2")}
    assert key not in keys
    assert len(keys) == len(variants) + 1
