"""How providers are configured (``settings.llm_providers``, in order = the fallback chain), and the
gateway built from that list. Keys are named by environment variable, never written in files."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from rendercost.llm_gateway.breaker import CircuitBreaker
from rendercost.llm_gateway.gateway import Gateway, ProviderSlot
from rendercost.llm_gateway.keys import KeyRing
from rendercost.llm_gateway.providers import AnthropicMessages, OpenAICompatible, Provider


class LlmProviderConfig(BaseModel):
    """One provider of the chain."""

    name: str  # unique, shown in results and errors
    kind: Literal["openai", "anthropic"]  # openai = any OpenAI-compatible API (vLLM, Ollama, ...)
    model: str  # LLM model; priced from the catalog's [llm."MODEL"]
    base_url: str | None = None  # None: the vendor's public API
    keys: dict[str, float] = Field(default_factory=dict)  # env var name -> weight, e.g. {"OPENAI_KEY_1": 2}
    timeout_s: float = 10.0  # per call
    max_attempts: int = 3  # calls per rewrite on this provider
    failure_threshold: int = 3  # consecutive failed rewrites that open the circuit
    cooldown_s: float = 30.0  # open circuit rest before a half-open probe


def _provider(config: LlmProviderConfig) -> Provider:
    if config.kind == "openai":
        return OpenAICompatible(config.name, config.model, base_url=config.base_url)
    return AnthropicMessages(
        config.name, config.model, base_url=config.base_url or "https://api.anthropic.com"
    )


def build_gateway(configs: list[LlmProviderConfig]) -> Gateway:
    """The chain in order; an empty list is the builtin rewrite alone."""
    return Gateway(
        [
            ProviderSlot(
                _provider(config),
                KeyRing(config.keys),
                CircuitBreaker(config.failure_threshold, config.cooldown_s),
                timeout_s=config.timeout_s,
                max_attempts=config.max_attempts,
            )
            for config in configs
        ]
    )
