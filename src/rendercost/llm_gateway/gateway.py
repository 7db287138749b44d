"""The gateway: rewrite a prompt with the first provider of an ordered chain that answers.

For each provider in order (skipped while its circuit breaker is open): pick a key (weighted), call
with a timeout, and retry retryable failures with tenacity — honouring Retry-After, backing off
exponentially otherwise, rotating to another key at once after a 429 (the 429'd key cools for its
Retry-After), dropping a key for good on 401/403. A provider whose attempts are spent counts one
failure on its breaker and the chain moves on. When every provider fails, the builtin rewrite answers
and the result says so (``fallback=True``, ``errors``). ``sleep`` and clocks are injectable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from rendercost.llm_gateway.breaker import CircuitBreaker
from rendercost.llm_gateway.builtin import builtin_rewrite
from rendercost.llm_gateway.keys import KeyRing
from rendercost.llm_gateway.providers import Provider
from rendercost.llm_gateway.types import Completion, ProviderFailed, RewriteRequest, RewriteResult

logger = logging.getLogger(__name__)

BUILTIN = "builtin"


@dataclass
class ProviderSlot:
    """One provider in the chain, with its keys, breaker and call policy."""

    provider: Provider
    keys: KeyRing
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    timeout_s: float = 10.0  # per call
    max_attempts: int = 3  # calls per rewrite, first included
    backoff_s: float = 0.5  # first back-off; doubles each retry
    max_wait_s: float = 30.0  # cap on one wait (a longer Retry-After moves on to the next provider)


class NoKey(ProviderFailed):
    """Every key of the provider is dead or cooling."""


class Gateway:
    """An ordered chain of providers, the builtin rewrite behind them. Thread-safe."""

    def __init__(self, chain: Sequence[ProviderSlot], *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.chain = list(chain)
        self._sleep = sleep

    def rewrite(self, request: RewriteRequest) -> RewriteResult:
        errors: list[str] = []
        for slot in self.chain:
            name = slot.provider.name
            if not slot.breaker.allow():
                errors.append(f"{name}: circuit open")
                continue
            try:
                completion = self._call(slot, request.prompt, errors)
            except ProviderFailed as exc:
                if not isinstance(exc, NoKey):
                    slot.breaker.record_failure()
                errors.append(str(exc))
                continue
            slot.breaker.record_success()
            return RewriteResult(
                prompt=completion.text,
                provider=name,
                model=slot.provider.model,
                input_tokens=completion.input_tokens,
                output_tokens=completion.output_tokens,
                errors=tuple(errors),
            )
        fallback = builtin_rewrite(request)
        if self.chain:
            logger.warning("every rewrite provider failed; using the builtin rewrite: %s", "; ".join(errors))
        return RewriteResult(
            prompt=fallback.text,
            provider=BUILTIN,
            model=BUILTIN,
            fallback=bool(self.chain),
            errors=tuple(errors),
        )

    def _call(self, slot: ProviderSlot, text: str, errors: list[str]) -> Completion:
        retrying = Retrying(
            stop=stop_after_attempt(slot.max_attempts),
            wait=partial(_wait, slot),
            retry=retry_if_exception(partial(_retryable, slot)),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(_attempt, slot, text, errors)


def _attempt(slot: ProviderSlot, text: str, errors: list[str]) -> Completion:
    """One call with one key; a 429 cools the key, a 401/403 kills it."""
    picked = slot.keys.pick()
    if picked is None:
        raise NoKey(f"{slot.provider.name}: no usable key", status=0)
    env, secret = picked
    try:
        return slot.provider.complete(text, key=secret, timeout_s=slot.timeout_s)
    except ProviderFailed as exc:
        errors.append(f"{exc} (key {env})")
        if exc.key_rejected:
            slot.keys.kill(env)
        elif exc.status == 429:
            slot.keys.cool(env, exc.retry_after if exc.retry_after is not None else slot.backoff_s)
        raise


def _wait(slot: ProviderSlot, state: RetryCallState) -> float:
    """After a key problem: until some key is ready (0 when another is); else Retry-After or back-off."""
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, ProviderFailed) and exc.status in (401, 403, 429):
        return min(slot.keys.next_ready_in() or 0.0, slot.max_wait_s)
    if isinstance(exc, ProviderFailed) and exc.retry_after is not None:
        return min(exc.retry_after, slot.max_wait_s)
    return min(slot.backoff_s * 2.0 ** (state.attempt_number - 1), slot.max_wait_s)


def _retryable(slot: ProviderSlot, exc: BaseException) -> bool:
    if isinstance(exc, NoKey) or not isinstance(exc, ProviderFailed):
        return False
    if exc.key_rejected:
        return bool(slot.keys.live())
    if exc.status == 429 and exc.retry_after is not None and exc.retry_after > slot.max_wait_s:
        return slot.keys.next_ready_in() == 0.0  # only worth it when another key is ready
    return exc.retryable
