"""What crosses the gateway's boundary: a rewrite request, its result, and a provider's failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RewriteRequest:
    """One prompt to rewrite."""

    prompt: str  # the customer's prompt
    styles: tuple[str, ...] = ()  # style names (see builtin.STYLES); unknown names are kept as words
    seed: int = 0  # makes the builtin rewrite deterministic
    target_model: str = "default"  # image model the prompt is for (part of the semantic-cache scope)


@dataclass(frozen=True)
class Completion:
    """A provider's answer: the text and the token usage from its response body."""

    text: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class RewriteResult:
    """The rewritten prompt and who paid what for it."""

    prompt: str  # the rewritten prompt (revised_prompt)
    provider: str  # provider name that answered ("builtin" when none did)
    model: str  # LLM model name ("builtin" for the offline expander)
    input_tokens: int = 0
    output_tokens: int = 0
    fallback: bool = False  # every configured provider failed: the builtin rewrite was used
    errors: tuple[str, ...] = ()  # one line per failed attempt, in order


class ProviderFailed(Exception):
    """A provider call failed. ``status`` is the HTTP status (0 for timeouts and connection errors)."""

    def __init__(self, message: str, *, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds, from a Retry-After header

    @property
    def retryable(self) -> bool:
        """Timeouts, connection errors, 408, 409, 429 and 5xx are worth another try."""
        return self.status in (0, 408, 409, 429) or self.status >= 500

    @property
    def key_rejected(self) -> bool:
        """401/403: the key is bad; never use it again."""
        return self.status in (401, 403)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """A Retry-After header in seconds: delay-seconds, or an HTTP date (seconds from ``now``, the current
    time by default; a past date is 0). None when absent or unreadable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
