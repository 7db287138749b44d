"""The semantic rewrite cache with the real all-MiniLM-L6-v2: paraphrases hit, guarded changes miss,
tenants and scopes never share, and the index is rebuilt from the table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import torch
from sqlalchemy import Engine

from rendercost.caches.prompt_guard import guard_signature
from rendercost.caches.semantic_cache import SemanticCache, scope_key
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.execution.models.sentence_embedder import MiniLmEmbedder

SCOPE = scope_key("template-v1", "default", {"styles": []})
REWRITE = {"prompt": "a white sneaker on a sunny beach, 85mm", "provider": "openai", "input_tokens": 20}


@pytest.fixture(scope="module")
def embedder() -> MiniLmEmbedder:
    return MiniLmEmbedder()


@pytest.fixture
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('sem') / 'db.sqlite'}")
    migrate(engine)
    yield engine
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_guard_separates_colour_number_negation_and_noun() -> None:
    base = guard_signature("white sneaker on a beach")
    assert base == guard_signature("a white sneaker on the beach")
    for other in ("red sneaker on beach", "two sneakers on beach", "white sneakers on beach",
                  "white sneaker without a beach", "white boot on a beach"):  # fmt: skip
        assert guard_signature(other) != base, other


def test_guard_separates_lighting_and_material() -> None:
    base = guard_signature("a ceramic mug in a sunlit kitchen, golden hour light")
    assert base == guard_signature("ceramic mug, golden hour light, in a sunlit kitchen, product photo")
    for other in ("a ceramic mug in a sunlit kitchen, cool morning light",
                  "a ceramic mug in a sunlit kitchen, overcast daylight",
                  "a porcelain mug in a sunlit kitchen, golden hour light"):  # fmt: skip
        assert guard_signature(other) != base, other


def test_a_change_of_light_that_barely_moves_the_embedding_misses(
    engine: Engine, embedder: MiniLmEmbedder
) -> None:
    asked = "product photo of a silver ring in a sunlit kitchen, golden hour light"
    other_light = "product photo of a silver ring in a sunlit kitchen, cool morning light"
    first, second = embedder.embed([asked, other_light])
    assert float(first @ second) >= 0.94  # the threshold alone would take one for the other
    cache = SemanticCache(engine, embedder)
    cache.put("acme", SCOPE, asked, REWRITE)
    assert cache.lookup("acme", SCOPE, other_light) is None
    assert cache.lookup("acme", SCOPE, "silver ring in a sunlit kitchen, golden hour light, product photo")


def test_paraphrase_hits_and_guarded_prompts_miss(engine: Engine, embedder: MiniLmEmbedder) -> None:
    seen: list[bool] = []
    cache = SemanticCache(engine, embedder, on_lookup=seen.append)
    cache.put("acme", SCOPE, "white sneaker on a beach", REWRITE)
    hit = cache.lookup("acme", SCOPE, "a white sneaker on the beach")
    assert hit is not None and hit.rewrite == REWRITE and hit.similarity >= 0.94
    assert cache.lookup("acme", SCOPE, "red sneaker on beach") is None
    assert cache.lookup("acme", SCOPE, "two sneakers on beach") is None
    assert cache.lookup("acme", SCOPE, "a white sneaker on the beach", threshold=0.999) is None
    assert seen == [True, False, False, False]


def test_tenants_and_scopes_never_share(engine: Engine, embedder: MiniLmEmbedder) -> None:
    cache = SemanticCache(engine, embedder)
    cache.put("acme", SCOPE, "white sneaker on a beach", REWRITE)
    assert cache.lookup("globex", SCOPE, "white sneaker on a beach") is None
    other_model = scope_key("template-v1", "sdxl-turbo", {"styles": []})
    assert cache.lookup("acme", other_model, "white sneaker on a beach") is None


def test_index_rebuilt_from_the_table_and_ttl(engine: Engine, embedder: MiniLmEmbedder) -> None:
    clock = Clock()
    SemanticCache(engine, embedder, clock=clock).put("acme", SCOPE, "white sneaker on a beach", REWRITE)
    restarted = SemanticCache(engine, embedder, clock=clock)
    assert restarted.load() == 1
    assert restarted.lookup("acme", SCOPE, "a white sneaker on the beach") is not None
    clock.now += timedelta(days=7)
    assert restarted.lookup("acme", SCOPE, "a white sneaker on the beach") is None
    assert SemanticCache(engine, embedder, clock=clock).load() == 0  # expired rows are purged


def test_the_embedder_sets_the_process_torch_threads_when_it_loads() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        MiniLmEmbedder(torch_threads=1).embed(["a red fox in snow"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


class _Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: MiniLmEmbedder) -> None:
        self.inner = inner
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)


def test_embeddings_are_computed_only_where_they_decide(engine: Engine, embedder: MiniLmEmbedder) -> None:
    counting = _Counting(embedder)
    cache = SemanticCache(engine, counting)
    lamp = "a brass desk lamp on an oak table, warm evening light"
    cache.put("acme", SCOPE, lamp, REWRITE)
    cache.put("acme", SCOPE, "a white sneaker on a beach", REWRITE)
    assert counting.texts == []  # a put embeds nothing
    assert cache.lookup("acme", SCOPE, "a red fox in snow") is None  # no entry shares its guard
    again = cache.lookup("acme", SCOPE, lamp)
    assert again is not None and again.similarity == 1.0  # the same text: a hit with nothing embedded
    assert counting.texts == []
    paraphrase = "a brass desk lamp on the oak table, warm evening light"
    hit = cache.lookup("acme", SCOPE, paraphrase)
    assert hit is not None and hit.prompt == lamp and hit.similarity >= 0.94
    assert counting.texts == [paraphrase, lamp]  # the prompt and its one candidate, in one call
    assert cache.lookup("acme", SCOPE, paraphrase) is not None
    assert counting.texts == [paraphrase, lamp]  # both vectors remembered
    vector = cache.embed(lamp)
    assert not vector.flags.writeable  # shared between callers: nobody may change it
    np.testing.assert_allclose(vector, embedder.embed([lamp])[0], atol=1e-6)
    assert cache.lookup("acme", SCOPE, "a brass desk lamp on an oak table, cold morning light") is None
    assert counting.texts == [paraphrase, lamp]  # another light is another guard: nothing embedded
    assert cache.lookup("globex", SCOPE, lamp) is None  # another tenant's entries are never candidates
