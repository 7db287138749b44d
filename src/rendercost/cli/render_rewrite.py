"""`rendercost render --rewrite`: the prompt rewritten before rendering, and what the rewrite cost.

The same ``PromptRewriter`` admission's rewrite step uses: the settings' provider chain
(``llm_providers``; none configured means the builtin rewriter), falling back to the builtin rewrite
when every provider fails. With the cache on, the semantic rewrite cache is read and filled under the
tenant ``cli`` (the MiniLM model loads for it); ``--no-cache`` bypasses it. The rewritten prompt is
what renders, so the exact result cache keys on it. A rewrite that no longer fits the model's text
encoder is dropped (the original prompt renders) unless ``--truncate`` asks to cut it. The rewrite's
line (tokens x the catalog's price) rides on the request's rewrite record: admission bills it once
the job exists and the worker splits it across the images' receipts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rendercost.admission.rewrite import PromptRewriter, RewriteOutcome
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.domain.controls import RewriteRecord
from rendercost.domain.costs import CostLine
from rendercost.domain.specs import RenderSpec
from rendercost.errors import PromptTooLong
from rendercost.ledger.catalog import PriceCatalog
from rendercost.llm_gateway.config import build_gateway
from rendercost.llm_gateway.types import RewriteRequest
from rendercost.settings import Settings

if TYPE_CHECKING:
    from rendercost.execution.models.registry import ModelRegistry

CLI_TENANT = "cli"  # the semantic cache's scope for rewrites asked for on the command line


@dataclass(frozen=True)
class CliRewrite:
    """What ``--rewrite`` did."""

    record: RewriteRecord  # prompt typed, revised prompt, provider, model, tokens, cache outcome, dropped
    line: CostLine  # the whole rewrite's prompt_rewrite line (not yet split across images)


def rewrite_spec(
    settings: Settings, registry: ModelRegistry, spec: RenderSpec, *, use_cache: bool, truncate: bool
) -> tuple[RenderSpec, CliRewrite]:
    """``spec`` with its prompt rewritten (checked against the model's text encoder), and the record."""
    outcome, line = _rewrite(settings, spec, use_cache=use_cache)
    record = outcome.record(spec.prompt, line)
    try:
        prompt = registry.check_prompt(spec.model, outcome.result.prompt, truncate)
    except PromptTooLong:
        dropped = replace(record, dropped="too long for the model's text encoder (--truncate cuts it)")
        return spec, CliRewrite(dropped, line)
    return replace(spec, prompt=prompt), CliRewrite(replace(record, revised_prompt=prompt), line)


def _rewrite(settings: Settings, spec: RenderSpec, *, use_cache: bool) -> tuple[RewriteOutcome, CostLine]:
    ask = RewriteRequest(prompt=spec.prompt, seed=spec.seed, target_model=spec.model)
    if not use_cache or settings.rewrite_cache_ttl_seconds <= 0:
        catalog = PriceCatalog.load(settings.catalog_path)
        rewriter = PromptRewriter(build_gateway(settings.llm_providers), catalog=catalog)
        outcome = rewriter.rewrite(CLI_TENANT, ask)
        return replace(outcome, cache="bypass" if not use_cache else "off"), rewriter.line(outcome)
    from rendercost.execution.models.sentence_embedder import MiniLmEmbedder  # imports torch

    engine = create_db_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        rewriter = PromptRewriter.from_settings(
            settings, engine, MiniLmEmbedder(torch_threads=settings.torch_threads)
        )
        outcome = rewriter.rewrite(CLI_TENANT, ask)
        return outcome, rewriter.line(outcome)
    finally:
        engine.dispose()
