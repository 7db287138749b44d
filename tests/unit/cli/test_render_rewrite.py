"""`rendercost render --rewrite` on the real tiny model: the builtin rewriter, and a loopback
OpenAI-compatible server whose tokens land on the receipts (split across the images)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli.test_render import FAST, _embedded, _json, _render, env
from tests.unit.llm_gateway.llm_server import KEY_ENV, LlmServer, provider_config, token_cost

pytestmark = pytest.mark.slow

__all__ = ["env"]  # the tiny-model environment of test_render, used as a fixture here

PROMPT = "white sneaker on a beach"


@pytest.fixture
def llm_env(env: dict[str, str | None], llm: LlmServer) -> dict[str, str | None]:
    return {**env, "RENDERCOST_LLM_PROVIDERS": json.dumps([provider_config(llm)]), KEY_ENV: "k1"}


def _rewrite_shares(document: dict[str, Any]) -> list[dict[str, Any]]:
    shares = []
    for image in document["images"]:
        first = image["receipt"]["lines"][0]
        assert first["stage"] == "prompt_rewrite"
        shares.append(first)
    return shares


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
    assert sum(Decimal(line["cost_usd"]) for line in shares) == token_cost() > 0
    for image in first["images"]:
        receipt = image["receipt"]
        assert sum(Decimal(line["cost_usd"]) for line in receipt["lines"]) == Decimal(receipt["total_usd"])

    second = _json(_render(tmp_path, llm_env, *args))
    assert second["rewrite"]["cache"] == "hit" and len(llm.script.calls("/a")) == 1  # no second LLM call
    assert [image["cache"] for image in second["images"]] == ["hit", "hit"]
    assert Decimal(second["total_usd"]) == 0
    avoided = sum(Decimal(line["cost_avoided_usd"]) for line in _rewrite_shares(second))
    assert avoided == token_cost()

    bypass = _json(_render(tmp_path, llm_env, *args, "--no-cache"))
    assert bypass["rewrite"]["cache"] == "bypass" and len(llm.script.calls("/a")) == 2
    assert sum(Decimal(line["cost_usd"]) for line in _rewrite_shares(bypass)) == token_cost()


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
