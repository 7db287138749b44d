"""`rendercost render --rewrite` on the real tiny model: the builtin rewriter, and a loopback
OpenAI-compatible server whose tokens land on the receipts (split across the images)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rendercost.domain.money import quantize
from rendercost.ledger.catalog import PriceCatalog
from tests.unit.cli.test_render import FAST, _embedded, _json, _render
from tests.unit.llm_gateway.llm_server import INPUT_TOKENS, OUTPUT_TOKENS, LlmServer, serve

pytestmark = pytest.mark.slow

PROMPT = "white sneaker on a beach"


@pytest.fixture
def llm() -> Iterator[LlmServer]:
    yield from serve()


@pytest.fixture
def env(tiny_model_dir: Path) -> dict[str, str | None]:
    return {
        "RENDERCOST_MODELS__DEFAULT__SOURCE": str(tiny_model_dir),
        "RENDERCOST_MIN_SIDE": "64",
        "RENDERCOST_MAX_BATCH_SIZE": "2",
        "RENDERCOST_CONFIG": None,
        "RENDERCOST_DATABASE_URL": None,
        "RENDERCOST_LLM_PROVIDERS": None,
    }


@pytest.fixture
def llm_env(env: dict[str, str | None], llm: LlmServer) -> dict[str, str | None]:
    provider = {
        "name": "local",
        "kind": "openai",
        "model": "gpt-4o-mini",
        "base_url": f"{llm.url}/a",
        "keys": {"RC_TEST_LLM_KEY": 1},
        "timeout_s": 2,
        "max_attempts": 1,
    }
    return {**env, "RENDERCOST_LLM_PROVIDERS": json.dumps([provider]), "RC_TEST_LLM_KEY": "k1"}


def _rewrite_shares(document: dict[str, Any]) -> list[dict[str, Any]]:
    shares = []
    for image in document["images"]:
        first = image["receipt"]["lines"][0]
        assert first["stage"] == "prompt_rewrite"
        shares.append(first)
    return shares


def _token_cost() -> Decimal:
    prices = PriceCatalog.load().token_prices("gpt-4o-mini")
    million = Decimal(1_000_000)
    return quantize(
        INPUT_TOKENS * prices.input_per_1m / million + OUTPUT_TOKENS * prices.output_per_1m / million
    )


def test_builtin_rewrite_renders_the_revised_prompt(tmp_path: Path, env: dict[str, str | None]) -> None:
    out = tmp_path / "a.png"
    args = [PROMPT, "--rewrite", "--seed", "3", "--out", str(out), "--json", *FAST]
    document = _json(_render(tmp_path, env, *args))
    rewrite = document["rewrite"]
    assert rewrite["original_prompt"] == PROMPT and rewrite["provider"] == "builtin"
    revised = rewrite["revised_prompt"]
    assert revised.startswith(PROMPT + ", ") and document["images"][0]["prompt"] == revised
    assert _embedded(out)["prompt"] == revised  # the file says what was rendered
    [share] = _rewrite_shares(document)
    assert Decimal(share["cost_usd"]) == 0  # the builtin rewriter is free
    again = _json(_render(tmp_path, env, *args))
    assert again["rewrite"]["revised_prompt"] == revised  # deterministic for a seed
    assert again["images"][0]["cache"] == "hit"  # the result cache keys on the final prompt


def test_llm_rewrite_tokens_are_split_across_the_receipts_and_cached(
    tmp_path: Path, llm_env: dict[str, str | None], llm: LlmServer
) -> None:
    args = [PROMPT, "--rewrite", "--n", "2", "--seed", "9", "--out", str(tmp_path / "b.png"), "--json", *FAST]
    first = _json(_render(tmp_path, llm_env, *args))
    assert first["rewrite"]["provider"] == "local" and first["rewrite"]["cache"] == "miss"
    assert first["rewrite"]["revised_prompt"] == f"{PROMPT}, golden hour, 85mm"
    shares = _rewrite_shares(first)
    assert sum(Decimal(line["cost_usd"]) for line in shares) == _token_cost() > 0
    for image in first["images"]:
        receipt = image["receipt"]
        assert sum(Decimal(line["cost_usd"]) for line in receipt["lines"]) == Decimal(receipt["total_usd"])

    second = _json(_render(tmp_path, llm_env, *args))
    assert second["rewrite"]["cache"] == "hit" and len(llm.script.calls("/a")) == 1  # no second LLM call
    assert [image["cache"] for image in second["images"]] == ["hit", "hit"]
    assert Decimal(second["total_usd"]) == 0
    avoided = sum(Decimal(line["cost_avoided_usd"]) for line in _rewrite_shares(second))
    assert avoided == _token_cost()

    bypass = _json(_render(tmp_path, llm_env, *args, "--no-cache"))
    assert bypass["rewrite"]["cache"] == "bypass" and len(llm.script.calls("/a")) == 2
    assert sum(Decimal(line["cost_usd"]) for line in _rewrite_shares(bypass)) == _token_cost()


def test_every_provider_failing_falls_back_to_builtin(
    tmp_path: Path, llm_env: dict[str, str | None], llm: LlmServer
) -> None:
    llm.script.add("/a", ("500",))
    args = [
        PROMPT,
        "--rewrite",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "c.png"),
        "--json",
        "--no-cache",
        *FAST,
    ]
    document = _json(_render(tmp_path, llm_env, *args))
    assert document["rewrite"]["provider"] == "builtin" and document["rewrite"]["fallback"] is True
    assert document["images"][0]["prompt"].startswith(PROMPT + ", ")


def test_the_table_names_the_rewrite(tmp_path: Path, env: dict[str, str | None]) -> None:
    result = _render(
        tmp_path, env, PROMPT, "--rewrite", "--seed", "3", "--out", str(tmp_path / "d.png"), *FAST
    )
    assert result.exit_code == 0, result.output
    assert "prompt rewritten by builtin/builtin" in result.stdout and "prompt_rewrite" in result.stdout
