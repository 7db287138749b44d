"""Prompt rewriting with the semantic cache in front of the gateway.

``PromptRewriter.rewrite(tenant, request, ...)``: look up the semantic cache (scope: tenant + template
hash + target model + styles); a hit reuses the stored rewrite (no LLM call; the caller records a
cost-avoided line); a miss asks the gateway and stores provider answers (never builtin fallbacks:
those are free and deterministic). ``use_cache=False`` (``X-Cache: bypass``) skips the lookup and the
store; ``threshold`` overrides the cosine threshold for one lookup (``X-Cache-Threshold``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine

from rendercost.caches.semantic_cache import Embedder, SemanticCache, scope_key
from rendercost.domain.controls import CacheOutcome, RewriteRecord
from rendercost.domain.costs import Attribution, CostLine
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.ledger import Ledger
from rendercost.llm_gateway.config import build_gateway
from rendercost.llm_gateway.cost import rewrite_line
from rendercost.llm_gateway.gateway import Gateway
from rendercost.llm_gateway.providers import SYSTEM_PROMPT
from rendercost.llm_gateway.types import RewriteRequest, RewriteResult
from rendercost.settings import Settings

TEMPLATE_HASH = hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()[:16]  # a new template never reuses old


@dataclass(frozen=True)
class RewriteOutcome:
    result: RewriteResult  # the rewrite used
    cache: str  # "hit", "miss", "bypass" or "off"
    reused: bool = False  # True on a hit: ``result`` was paid for by an earlier request

    def record(self, original_prompt: str, line: CostLine | None = None) -> RewriteRecord:
        """What a rewritten request keeps: the prompt typed, the revised prompt, who wrote it, tokens,
        cache outcome, and the whole job's ``prompt_rewrite`` line (``PromptRewriter.line``)."""
        result = self.result
        return RewriteRecord(
            original_prompt=original_prompt,
            revised_prompt=result.prompt,
            provider=result.provider,
            model=result.model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            fallback=result.fallback,
            cache=CacheOutcome(self.cache),
            reused=self.reused,
            line=line,
        )


class PromptRewriter:
    def __init__(
        self,
        gateway: Gateway,
        semantic: SemanticCache | None = None,
        *,
        catalog: PriceCatalog | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.gateway = gateway
        self.semantic = semantic
        self.catalog = catalog or PriceCatalog.load()
        self._engine = engine
        for slot in gateway.chain:  # refuse at start what could not be billed later
            self.catalog.token_prices(slot.provider.model)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine,
        embedder: Embedder,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> PromptRewriter:
        """The configured chain, the semantic cache over ``engine`` (index loaded now), the catalog;
        ``on_lookup(hit)`` is called per semantic lookup (the hit-rate metric)."""
        semantic = SemanticCache(
            engine,
            embedder,
            threshold=settings.rewrite_cache_threshold,
            ttl_seconds=settings.rewrite_cache_ttl_seconds,
            on_lookup=on_lookup,
        )
        semantic.load()
        catalog = PriceCatalog.load(settings.catalog_path)
        return cls(build_gateway(settings.llm_providers), semantic, catalog=catalog, engine=engine)

    def line(self, outcome: RewriteOutcome) -> CostLine:
        """The whole job's ``prompt_rewrite`` line (tokens billed, or the cost avoided on a semantic-cache
        hit), not yet split across images nor named after a job (``ledger.pricing.split_line``)."""
        result = outcome.result
        avoided = result if outcome.reused else None
        return rewrite_line(result, self.catalog, job_id="", avoided=avoided)

    def record(self, lines: Sequence[CostLine], attribution: Attribution) -> None:
        """Write a job's ``prompt_rewrite`` lines, billed to ``attribution``, to the ledger (a repeat is
        billed once)."""
        if self._engine is None or not lines:
            return
        with self._engine.begin() as conn:
            Ledger(self._engine).insert_lines(conn, lines, attribution)

    def rewrite(
        self, tenant: str, request: RewriteRequest, *, use_cache: bool = True, threshold: float | None = None
    ) -> RewriteOutcome:
        """Blocking (LLM calls, embeddings, SQL): run it in a worker thread."""
        cache = self.semantic
        if cache is None or not cache.enabled:
            return RewriteOutcome(self.gateway.rewrite(request), "off")
        if not use_cache:
            return RewriteOutcome(self.gateway.rewrite(request), "bypass")
        scope = scope_key(TEMPLATE_HASH, request.target_model, {"styles": sorted(request.styles)})
        vector = cache.embed(request.prompt)
        hit = cache.lookup(tenant, scope, request.prompt, threshold=threshold, vector=vector)
        if hit is not None:
            return RewriteOutcome(_stored_result(hit.rewrite), "hit", reused=True)
        result = self.gateway.rewrite(request)
        if result.provider != "builtin":
            cache.put(tenant, scope, request.prompt, asdict(result), vector=vector)
        return RewriteOutcome(result, "miss")


def _stored_result(stored: dict[str, Any]) -> RewriteResult:
    """A ``RewriteResult`` back from its JSON form (``asdict``)."""
    return RewriteResult(
        prompt=str(stored["prompt"]),
        provider=str(stored["provider"]),
        model=str(stored["model"]),
        input_tokens=int(stored.get("input_tokens", 0)),
        output_tokens=int(stored.get("output_tokens", 0)),
        fallback=bool(stored.get("fallback", False)),
        errors=tuple(str(e) for e in stored.get("errors") or ()),
    )
