"""LLM providers: one call with one key, translated to ``Completion`` or ``ProviderFailed``.

- ``OpenAICompatible``: any OpenAI-compatible base URL, via the ``openai`` SDK with ``max_retries=0``
  (the gateway retries, not the SDK);
- ``AnthropicMessages``: the Anthropic Messages API over ``httpx``.

Both take a timeout per call; usage comes from the response body.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from rendercost.llm_gateway.types import Completion, ProviderFailed, parse_retry_after

SYSTEM_PROMPT = (
    "Rewrite the user's text-to-image prompt into one richer prompt: keep every subject, colour, "
    "number and negation exactly; add lighting, framing, camera and composition details. "
    "Answer with the prompt only."
)
MAX_OUTPUT_TOKENS = 200
ANTHROPIC_VERSION = "2023-06-01"


class Provider(Protocol):
    """One LLM endpoint."""

    name: str  # unique in a chain, e.g. "openai", "local-vllm"
    model: str  # the LLM model asked (and priced in the catalog)

    def complete(self, user_text: str, *, key: str, timeout_s: float) -> Completion: ...


class OpenAICompatible:
    def __init__(self, name: str, model: str, base_url: str | None = None) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url

    def complete(self, user_text: str, *, key: str, timeout_s: float) -> Completion:
        import openai  # the SDK is only needed when this provider is configured

        client = openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=timeout_s)
        try:
            response = client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": user_text},
                ],
                max_tokens=MAX_OUTPUT_TOKENS,
            )
        except openai.APIStatusError as exc:
            retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
            raise ProviderFailed(
                f"{self.name}: HTTP {exc.status_code}", status=exc.status_code, retry_after=retry_after
            ) from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ProviderFailed(f"{self.name}: {type(exc).__name__}") from exc
        finally:
            client.close()
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        usage = response.usage
        if not text or usage is None:
            raise ProviderFailed(f"{self.name}: empty answer or no usage", status=502)
        return Completion(text=text, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)


class AnthropicMessages:
    def __init__(self, name: str, model: str, base_url: str = "https://api.anthropic.com") -> None:
        self.name = name
        self.model = model
        self.base_url = base_url.rstrip("/")

    def complete(self, user_text: str, *, key: str, timeout_s: float) -> Completion:
        body = {
            "model": self.model,
            "max_tokens": MAX_OUTPUT_TOKENS,
            "system": SYSTEM_PROMPT,
            "messages": [{"role": "user", "content": user_text}],
        }
        headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
        try:
            response = httpx.post(
                f"{self.base_url}/v1/messages", json=body, headers=headers, timeout=timeout_s
            )
        except httpx.HTTPError as exc:  # timeouts and connection errors
            raise ProviderFailed(f"{self.name}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise ProviderFailed(
                f"{self.name}: HTTP {response.status_code}",
                status=response.status_code,
                retry_after=retry_after,
            )
        return _anthropic_completion(self.name, response.json())


def _anthropic_completion(name: str, payload: dict[str, Any]) -> Completion:
    try:
        text = "".join(part["text"] for part in payload["content"] if part.get("type") == "text").strip()
        usage = payload["usage"]
        completion = Completion(
            text=text, input_tokens=int(usage["input_tokens"]), output_tokens=int(usage["output_tokens"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderFailed(f"{name}: malformed answer", status=502) from exc
    if not completion.text:
        raise ProviderFailed(f"{name}: empty answer", status=502)
    return completion
