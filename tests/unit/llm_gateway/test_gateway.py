"""The gateway against a real local HTTP server: fallback order, key rotation, breakers, builtin
fallback, and token accounting from real response bodies."""

from __future__ import annotations

import random
from decimal import Decimal

from rendercost.domain.costs import Stage
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.pricing import rewrite_line
from rendercost.llm_gateway.breaker import BreakerState, CircuitBreaker
from rendercost.llm_gateway.builtin import builtin_rewrite
from rendercost.llm_gateway.gateway import Gateway, ProviderSlot
from rendercost.llm_gateway.keys import KeyRing
from rendercost.llm_gateway.providers import AnthropicMessages, OpenAICompatible
from rendercost.llm_gateway.types import RewriteRequest
from tests.unit.llm_gateway.llm_server import INPUT_TOKENS, OUTPUT_TOKENS, LlmServer

ENV = {"KEY_A1": "a1", "KEY_A2": "a2", "KEY_B": "b", "KEY_C": "c"}
REQUEST = RewriteRequest(prompt="a white sneaker on a beach", seed=5)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def openai_slot(llm: LlmServer, prefix: str, keys: dict[str, float], **kwargs: object) -> ProviderSlot:
    provider = OpenAICompatible(prefix.strip("/"), "gpt-4o-mini", base_url=f"{llm.url}{prefix}")
    ring = KeyRing(keys, environ=ENV, rng=random.Random(0), clock=kwargs.pop("clock", Clock()))  # type: ignore[arg-type]
    options: dict[str, object] = {"timeout_s": 1.0, "backoff_s": 0.01, **kwargs}
    return ProviderSlot(provider, ring, **options)  # type: ignore[arg-type]


def test_first_provider_answers_with_usage_from_the_body(llm: LlmServer) -> None:
    result = Gateway([openai_slot(llm, "/a", {"KEY_A1": 1})]).rewrite(REQUEST)
    assert result.prompt == "a white sneaker on a beach, golden hour, 85mm"
    assert (result.provider, result.input_tokens, result.output_tokens) == ("a", INPUT_TOKENS, OUTPUT_TOKENS)
    line = rewrite_line(result, PriceCatalog.load(), job_id="job_1")
    expected = (Decimal(INPUT_TOKENS) * Decimal("0.15") + Decimal(OUTPUT_TOKENS) * Decimal("0.60")) / 10**6
    assert line.stage == Stage.PROMPT_REWRITE and line.cost == expected.quantize(line.cost)
    assert line.details["input_tokens"] == INPUT_TOKENS


def test_fallback_order_after_retries_are_spent(llm: LlmServer) -> None:
    llm.script.add("/a", ("500",), ("500",))
    sleeps: list[float] = []
    slots = [openai_slot(llm, "/a", {"KEY_A1": 1}, max_attempts=2), openai_slot(llm, "/b", {"KEY_B": 1})]
    result = Gateway(slots, sleep=sleeps.append).rewrite(REQUEST)
    assert result.provider == "b" and not result.fallback
    assert llm.script.calls("/a") == ["a1", "a1"] and llm.script.calls("/b") == ["b"]
    assert sleeps == [0.01]  # exponential back-off between the two tries of /a
    assert [e.split(" (")[0] for e in result.errors] == ["a: HTTP 500", "a: HTTP 500", "a: HTTP 500"]


def test_429_rotates_keys_and_honours_retry_after(llm: LlmServer) -> None:
    clock = Clock()
    llm.script.add("/a", ("429", 7), ("429", 3))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    slot = openai_slot(llm, "/a", {"KEY_A1": 1, "KEY_A2": 1}, clock=clock, max_attempts=3)
    result = Gateway([slot], sleep=sleep).rewrite(REQUEST)
    first, second, third = llm.script.calls("/a")
    assert first != second  # rotated to the other key at once
    assert sleeps[0] == 0.0 and sleeps[1] == 3.0  # then both cool: wait for the sooner Retry-After
    assert third == second and result.provider == "a"


def test_401_kills_the_key_for_good(llm: LlmServer) -> None:
    llm.script.add("/a", ("401",))
    slot = openai_slot(llm, "/a", {"KEY_A1": 1, "KEY_A2": 1})
    gateway = Gateway([slot], sleep=lambda _s: None)
    assert gateway.rewrite(REQUEST).provider == "a"
    dead = llm.script.calls("/a")[0]
    assert slot.keys.live() == [k for k in ("KEY_A1", "KEY_A2") if ENV[k] != dead]
    for _ in range(3):
        gateway.rewrite(REQUEST)
    assert dead not in llm.script.calls("/a")[2:]


def test_breaker_opens_then_half_open_probe_closes_it(llm: LlmServer) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=30, clock=clock)
    llm.script.add("/a", ("500",), ("500",), ("500",))
    slot = openai_slot(llm, "/a", {"KEY_A1": 1}, breaker=breaker, max_attempts=1)
    gateway = Gateway([slot, openai_slot(llm, "/b", {"KEY_B": 1})], sleep=lambda _s: None)
    gateway.rewrite(REQUEST)
    gateway.rewrite(REQUEST)
    assert breaker.state is BreakerState.OPEN and len(llm.script.calls("/a")) == 2
    assert gateway.rewrite(REQUEST).errors == ("a: circuit open",)  # /a not called while open
    assert len(llm.script.calls("/a")) == 2
    clock.now += 30
    gateway.rewrite(REQUEST)  # the half-open probe fails (third 500): open again
    assert breaker.state is BreakerState.OPEN and len(llm.script.calls("/a")) == 3
    clock.now += 30
    assert gateway.rewrite(REQUEST).provider == "a"  # probe succeeds
    assert str(breaker.state) == BreakerState.CLOSED.value


def test_hang_times_out_and_anthropic_answers(llm: LlmServer) -> None:
    llm.script.add("/a", ("hang", 2))
    anthropic = AnthropicMessages("claude", "claude-haiku-4-5", base_url=f"{llm.url}/c")
    ring = KeyRing({"KEY_C": 1}, environ=ENV)
    slots = [
        openai_slot(llm, "/a", {"KEY_A1": 1}, max_attempts=1, timeout_s=0.3),
        ProviderSlot(anthropic, ring, timeout_s=1.0),
    ]
    result = Gateway(slots, sleep=lambda _s: None).rewrite(REQUEST)
    assert result.provider == "claude" and "APITimeoutError" in result.errors[0]
    assert llm.script.calls("/c") == ["c"] and result.output_tokens == OUTPUT_TOKENS
    line = rewrite_line(result, PriceCatalog.load(), job_id="job_2")
    assert line.cost == Decimal(INPUT_TOKENS * 1 + OUTPUT_TOKENS * 5) / 10**6


def test_every_provider_failing_falls_back_to_builtin(llm: LlmServer) -> None:
    llm.script.add("/a", ("403",))
    llm.script.add("/b", ("500",), ("500",))
    slots = [openai_slot(llm, "/a", {"KEY_A1": 1}), openai_slot(llm, "/b", {"KEY_B": 1}, max_attempts=2)]
    result = Gateway(slots, sleep=lambda _s: None).rewrite(REQUEST)
    assert result.fallback and result.provider == "builtin"
    assert result.prompt == builtin_rewrite(REQUEST).text
    assert rewrite_line(result, PriceCatalog.load(), job_id="j").cost == 0
    assert KeyRing({"MISSING": 1}, environ=ENV).pick() is None  # keys come only from the environment


def test_builtin_is_deterministic_per_seed() -> None:
    styled = RewriteRequest(prompt="a fox", styles=("watercolor",), seed=1)
    assert builtin_rewrite(styled) == builtin_rewrite(styled)
    assert "watercolor painting" in builtin_rewrite(styled).text
    texts = {builtin_rewrite(RewriteRequest(prompt="a fox", seed=s)).text for s in range(8)}
    assert len(texts) > 1 and all(t.startswith("a fox, ") for t in texts)
