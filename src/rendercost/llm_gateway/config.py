"""The gateway built from ``settings.llm_providers`` (``LlmProviderConfig``, in order = the fallback
chain). Keys are named by environment variable, never written in files."""

from __future__ import annotations

from rendercost.llm_gateway.breaker import CircuitBreaker
from rendercost.llm_gateway.gateway import Gateway, ProviderSlot
from rendercost.llm_gateway.keys import KeyRing
from rendercost.llm_gateway.providers import AnthropicMessages, OpenAICompatible, Provider
from rendercost.settings import LlmProviderConfig


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
