"""Admission's rewrite step: prompt rewriting with the semantic cache in front of the LLM gateway.

``PromptRewriter.rewrite(tenant, request, ...)``: look up the semantic cache (scope: tenant + template
hash + target model + styles); a hit reuses the stored rewrite (no LLM call; the caller records a
cost-avoided line); a miss asks the gateway and stores provider answers (never builtin fallbacks:
those are free and deterministic). ``use_cache=False`` (``X-Cache: bypass``) skips the lookup and the
store; ``threshold`` overrides the cosine threshold for one lookup (``X-Cache-Threshold``).

``rewrite_step(rewriter, catalog, tenant, request, ask)`` is the step ``Admission`` runs: the request's
prompt rewritten and recorded as its ``rewrite`` (a rewrite that no longer fits the model's text
encoder is dropped: the original renders). Nothing here writes the ledger: admission bills the
rewrite's lines once the job exists (``Biller.record``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Engine

from rendercost.admission.catalog import ModelCatalog
from rendercost.caches.semantic_cache import Embedder, SemanticCache, scope_key
from rendercost.domain.controls import CacheOutcome, RewriteRecord
from rendercost.domain.costs import CostLine
from rendercost.domain.specs import RenderRequest
from rendercost.errors import PromptTooLong
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.pricing import rewrite_line
from rendercost.llm_gateway.builtin import REWRITE_STYLES
from rendercost.llm_gateway.config import build_gateway
from rendercost.llm_gateway.gateway import Gateway
from rendercost.llm_gateway.providers import SYSTEM_PROMPT
from rendercost.llm_gateway.types import RewriteRequest, RewriteResult
from rendercost.settings import Settings

TEMPLATE_HASH = hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()[:16]  # a new template never reuses old
DROPPED_TOO_LONG = "too long for the model's text encoder"


@dataclass(frozen=True)
class RewriteAsk:
    """What a request asked of the rewrite step: ``wanted`` (the ``rewrite`` flag; a style in
    ``REWRITE_STYLES`` asks too), ``use_cache`` (False: ``X-Cache: bypass``), ``threshold`` (this
    lookup's cosine threshold, ``X-Cache-Threshold``; None: the cache's)."""

    wanted: bool = False
    use_cache: bool = True
    threshold: float | None = None

    def applies(self, styles: tuple[str, ...]) -> bool:
        return self.wanted or any(style in REWRITE_STYLES for style in styles)


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
    ) -> None:
        self.gateway = gateway
        self.semantic = semantic
        self.catalog = catalog or PriceCatalog.load()
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
        return cls(build_gateway(settings.llm_providers), semantic, catalog=catalog)

    def line(self, outcome: RewriteOutcome) -> CostLine:
        """The whole job's ``prompt_rewrite`` line (tokens billed, or the cost avoided on a semantic-cache
        hit), not yet split across images nor named after a job (``ledger.pricing.split_line``)."""
        result = outcome.result
        avoided = result if outcome.reused else None
        return rewrite_line(result, self.catalog, job_id="", avoided=avoided)

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
        hit = cache.lookup(tenant, scope, request.prompt, threshold=threshold)
        if hit is not None:
            return RewriteOutcome(_stored_result(hit.rewrite), "hit", reused=True)
        result = self.gateway.rewrite(request)
        if not result.fallback:
            cache.put(tenant, scope, request.prompt, asdict(result))
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


def rewrite_step(
    rewriter: PromptRewriter, catalog: ModelCatalog, tenant: str, request: RenderRequest, ask: RewriteAsk
) -> RenderRequest:
    """Blocking. ``request`` with its prompt rewritten and the rewrite recorded as its ``rewrite`` (the
    record's line: the whole job's tokens, split per image by ``ledger.pricing.rewrite_lines``), or
    unchanged when no rewrite was asked for. A rewrite that no longer fits the model's text encoder is
    recorded as dropped and the original prompt renders."""
    styles = request.rewrite_styles  # a style whose template was applied is not asked again
    if not ask.applies(styles):
        return request
    spec = request.spec
    question = RewriteRequest(prompt=spec.prompt, styles=styles, seed=spec.seed, target_model=spec.model)
    outcome = rewriter.rewrite(tenant, question, use_cache=ask.use_cache, threshold=ask.threshold)
    record = outcome.record(spec.prompt, rewriter.line(outcome))
    try:
        catalog.check_prompt(spec.model, outcome.result.prompt, param="prompt")
    except PromptTooLong:
        return replace(request, rewrite=replace(record, dropped=DROPPED_TOO_LONG))
    return replace(request, spec=replace(spec, prompt=outcome.result.prompt), rewrite=record)
