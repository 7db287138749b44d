"""What a render request carries besides its spec: cache policy, the prompt rewrite, who asked.

These used to travel as string keys of a free-form dict; each is a frozen record now, set once at
admission (``dataclasses.replace`` makes the changed copy) and read by views, the worker and the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rendercost.domain.costs import CostLine


class CacheMode(StrEnum):
    """What the client allows the exact-result cache to do (``Cache-Control``)."""

    DEFAULT = "default"  # read and store
    NO_CACHE = "no-cache"  # skip the read, still store the result
    NO_STORE = "no-store"  # neither read nor store (also: every request with a random seed)

    @classmethod
    def from_header(cls, cache_control: str | None) -> CacheMode:
        """``Cache-Control`` -> a mode; ``no-store`` wins over ``no-cache``; anything else is DEFAULT."""
        directives = {part.strip().lower() for part in (cache_control or "").split(",")}
        if "no-store" in directives:
            return cls.NO_STORE
        if "no-cache" in directives:
            return cls.NO_CACHE
        return cls.DEFAULT


class CacheOutcome(StrEnum):
    """What a cache lookup did for a request (``rendercost.cache.*`` in responses)."""

    HIT = "hit"  # answered from the cache
    MISS = "miss"  # looked up, not found
    BYPASS = "bypass"  # not looked up: the client or a random seed said so
    OFF = "off"  # the cache is disabled (or the request was not eligible)


@dataclass(frozen=True)
class CachePolicy:
    """The exact-result cache's view of one request."""

    mode: CacheMode = CacheMode.DEFAULT  # what the client allows
    outcome: CacheOutcome = CacheOutcome.OFF  # the lookup at admission (a queued job: miss/bypass/off)

    @property
    def stores(self) -> bool:
        """May the result be stored in the cache after rendering?"""
        return self.mode is not CacheMode.NO_STORE

    @property
    def reads(self) -> bool:
        """May an earlier result answer this request?"""
        return self.mode is CacheMode.DEFAULT

    def to_dict(self) -> dict[str, str]:
        return {"mode": str(self.mode), "outcome": str(self.outcome)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CachePolicy:
        return cls(
            mode=CacheMode(data.get("mode", CacheMode.DEFAULT)),
            outcome=CacheOutcome(data.get("outcome", CacheOutcome.OFF)),
        )


@dataclass(frozen=True)
class ClientInfo:
    """Who asked, through which door; carried for views and never used to decide pixels."""

    api: str = ""  # the front door: "openai", "jobs", "cli", "batch", ...
    user: str | None = None  # OpenAI's end-user id, when given
    response_format: str | None = None  # OpenAI's "url" or "b64_json" (the images door only)

    def to_dict(self) -> dict[str, str | None]:
        return {"api": self.api, "user": self.user, "response_format": self.response_format}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientInfo:
        user, response_format = data.get("user"), data.get("response_format")
        return cls(
            api=str(data.get("api", "")),
            user=None if user is None else str(user),
            response_format=None if response_format is None else str(response_format),
        )


@dataclass(frozen=True)
class RewriteRecord:
    """A prompt rewrite done at admission: what was typed, what renders, who wrote it, what it cost."""

    original_prompt: str  # what the client sent
    revised_prompt: str  # what the rewriter returned (renders unless ``dropped``)
    provider: str  # "builtin", "openai", "anthropic", ...
    model: str  # the LLM's model name ("" for builtin)
    input_tokens: int
    output_tokens: int
    fallback: bool  # True when every configured provider failed and the builtin rewrite ran
    cache: CacheOutcome  # the semantic rewrite cache's outcome
    reused: bool  # True on a semantic-cache hit: an earlier request paid for this rewrite
    line: CostLine | None = None  # the whole job's prompt_rewrite line (split per image by the ledger)
    dropped: str | None = None  # why the rewrite was not used (e.g. too long for the text encoder)

    @property
    def used(self) -> bool:
        """Is ``revised_prompt`` what renders?"""
        return self.dropped is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "original_prompt": self.original_prompt,
            "revised_prompt": self.revised_prompt,
            "provider": self.provider,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "fallback": self.fallback,
            "cache": str(self.cache),
            "reused": self.reused,
            "line": self.line.to_dict() if self.line is not None else None,
            "dropped": self.dropped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewriteRecord:
        line = data.get("line")
        dropped = data.get("dropped")
        return cls(
            original_prompt=str(data.get("original_prompt", "")),
            revised_prompt=str(data.get("revised_prompt", "")),
            provider=str(data.get("provider", "")),
            model=str(data.get("model", "")),
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            fallback=bool(data.get("fallback", False)),
            cache=CacheOutcome(data.get("cache", CacheOutcome.OFF)),
            reused=bool(data.get("reused", False)),
            line=CostLine.from_dict(line) if isinstance(line, dict) else None,
            dropped=None if dropped is None else str(dropped),
        )


DEFAULT_RETENTION_DAYS = 30  # what a request admitted before storage lifecycles existed is kept for


@dataclass(frozen=True)
class Retention:
    """How long a request's images are kept (and priced for): what the client asked, what admission
    granted, and whether the door left the output format to the request's class."""

    asked_days: int | None = None  # the client's ``retention_days``; None: its class's default
    days: int | None = None  # granted at admission (the ask, else the class's default); None: not yet
    format_open: bool = False  # True: no format was asked, so the class's format may apply

    @property
    def granted_days(self) -> int:
        """The days granted; ``DEFAULT_RETENTION_DAYS`` for a request admitted before lifecycles."""
        return self.days if self.days is not None else DEFAULT_RETENTION_DAYS

    def to_dict(self) -> dict[str, int | bool | None]:
        return {"asked_days": self.asked_days, "days": self.days, "format_open": self.format_open}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Retention:
        asked, days = data.get("asked_days"), data.get("days")
        return cls(
            asked_days=None if asked is None else int(asked),
            days=None if days is None else int(days),
            format_open=bool(data.get("format_open", False)),
        )
