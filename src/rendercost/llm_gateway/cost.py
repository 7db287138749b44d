"""The ``prompt_rewrite`` cost line: tokens from the provider's usage, priced from the catalog."""

from __future__ import annotations

from decimal import Decimal

from rendercost.domain.costs import CostLine, Stage
from rendercost.domain.money import ZERO, quantize
from rendercost.ledger.catalog import PriceCatalog
from rendercost.llm_gateway.types import RewriteResult

MILLION = Decimal(1_000_000)
UNIT = "1M tokens"


def rewrite_line(
    result: RewriteResult,
    catalog: PriceCatalog,
    *,
    job_id: str,
    image_index: int = 0,
    avoided: RewriteResult | None = None,
) -> CostLine:
    """The line for one rewrite. Builtin rewrites cost 0. ``avoided``: a semantic-cache hit, priced
    as the rewrite it reused (cost 0, ``cost_avoided`` what that rewrite cost)."""
    paid = avoided or result
    if paid.provider == "builtin":
        cost = ZERO
        unit_price = ZERO
    else:
        prices = catalog.token_prices(paid.model)
        cost = quantize(
            Decimal(paid.input_tokens) * prices.input_per_1m / MILLION
            + Decimal(paid.output_tokens) * prices.output_per_1m / MILLION
        )
        unit_price = prices.output_per_1m
    details = {
        "provider": paid.provider,
        "model": paid.model,
        "input_tokens": paid.input_tokens,
        "output_tokens": paid.output_tokens,
        "fallback": result.fallback,
    }
    if avoided is not None:
        details["cache"] = "rewrite"
    tokens = Decimal(paid.input_tokens + paid.output_tokens)
    return CostLine(
        job_id=job_id,
        image_index=image_index,
        stage=Stage.PROMPT_REWRITE,
        device_seconds=0.0,
        unit_price=unit_price,
        unit=UNIT,
        quantity=ZERO if avoided is not None else tokens / MILLION,
        cost=ZERO if avoided is not None else cost,
        device_type="",
        cost_avoided=cost if avoided is not None else ZERO,
        details=details,
    )
